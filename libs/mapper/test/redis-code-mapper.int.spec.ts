import { SealedEventStore, inMemorySealer } from '#sealing';
import { randomBytes } from 'node:crypto';
import { RESP_TYPES } from 'redis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InMemoryEventStore } from '#ledger';
import { individualNumberFromRandomBase, personNumberingDecider } from '#numbering';
import { CodeLocator, RedisCodeMapper, catchUp, createMapperRedisClient, follow, newCodeKey, rebuildFrom, type RedisCodeMapperOptions, type RedisLike } from '#mapper';
import { agencyCodeFromRandomBytes } from '#linkage';
import { codeMapperContract } from './code-mapper.contract.js';
import { MURORAN, PENSION, acquireInStore, asEvents, freshSubject, population } from './fixtures.js';

// Real Redis at 127.0.0.1:6379 (.ci/run starts one). Every test works under its own key prefix and
// deletes it afterwards; the shared server is never flushed, stopped or reconfigured.
const REDIS_URL = 'redis://127.0.0.1:6379';
const client = createMapperRedisClient({ url: REDIS_URL });
const RUN = `lmt-${process.pid}-${randomBytes(3).toString('hex')}`;
let counter = 0;
const prefix = (): string => `${RUN}-${counter++}`;
const SMALL: RedisCodeMapperOptions = { codeBucketBits: 8, subjectBucketBits: 8, slotGroupBits: 3 };

async function keysOfRun(): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = (await client.sendCommand(['SCAN', cursor, 'MATCH', `${RUN}-*`, 'COUNT', '10000'])) as [string, string[]];
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

async function open(options: RedisCodeMapperOptions = {}): Promise<RedisCodeMapper> {
  return RedisCodeMapper.open(client, { ...SMALL, prefix: prefix(), ...options });
}

beforeAll(async () => {
  await client.connect();
});
afterAll(async () => {
  // Nothing of this run may stay behind.
  expect(await keysOfRun()).toEqual([]);
  await client.close();
});

codeMapperContract('redis', async () => {
  const mapper = await open();
  return { mapper, cleanup: () => mapper.drop() };
}, { propertyRuns: 25 });

// A 64-valued subject tag puts every person under one of 64 tags: every lookup walks the
// multi-subject records, the path a real tag collision takes.
codeMapperContract('redis, forced subject tag collisions', async () => {
  const mapper = await open({ subjectTag: (subject, length) => Buffer.alloc(length, subject[15]! & 63) });
  return { mapper, cleanup: () => mapper.drop() };
}, { propertyRuns: 10 });

// Codes minted as the hub mints them: the locator sealed in each code names its subject bucket.
const LOCATOR = new CodeLocator(newCodeKey());
codeMapperContract('redis, codes minted with sealed locators', async () => {
  const mapper = await open({ locator: LOCATOR });
  return { mapper, cleanup: () => mapper.drop() };
}, { propertyRuns: 25, mint: (s) => LOCATOR.mint(s) });

const weakTag = (subject: Buffer, length: number): Buffer => Buffer.alloc(length, subject[15]! & 63);
const WEAK_LOCATOR = new CodeLocator(newCodeKey(), weakTag);
codeMapperContract('redis, minted codes and forced subject tag collisions', async () => {
  const mapper = await open({ locator: WEAK_LOCATOR, subjectTag: weakTag });
  return { mapper, cleanup: () => mapper.drop() };
}, { propertyRuns: 10, mint: (s) => WEAK_LOCATOR.mint(s) });

/** The client, counting the MGETs sent through it (each is one read of one round). */
function countingMgets(): { readonly redis: RedisLike; count: () => number } {
  let mgets = 0;
  return {
    redis: { sendCommand: (args, options) => ((mgets += args[0] === 'MGET' ? 1 : 0), client.sendCommand(args, options)) },
    count: () => mgets,
  };
}

describe('Redis code mapper with a code locator', () => {
  test('minted codes are found in one read and keep no code bucket; random codes and codes of another key take the long way', async () => {
    const { redis, count } = countingMgets();
    const mapper = await RedisCodeMapper.open(redis, { ...SMALL, slotGroupBits: 0, prefix: prefix(), locator: LOCATOR });
    const minted = population(40, [PENSION, MURORAN], (s) => LOCATOR.mint(s));
    await mapper.apply(asEvents(minted));
    expect((await mapper.dump()).filter(([k]) => k.startsWith(':c{'))).toEqual([]);

    const pension = minted.filter((p) => p.agencyId === PENSION);
    const muroranOf = new Map(minted.filter((p) => p.agencyId === MURORAN).map((p) => [p.subjectId, p.code]));
    const before = count();
    expect(await mapper.translateMany(PENSION, pension.map((p) => p.code), MURORAN)).toEqual(pension.map((p) => ({ status: 'translated', subjectId: p.subjectId, code: muroranOf.get(p.subjectId) })));
    expect(count() - before).toBe(1);

    const other = new CodeLocator(newCodeKey());
    const foreign = [...population(5, [PENSION, MURORAN]), ...population(5, [PENSION, MURORAN], (s) => other.mint(s))];
    await mapper.apply(asEvents(foreign, minted.length));
    expect((await mapper.dump()).filter(([k]) => k.startsWith(':c{')).length).toBeGreaterThan(0);
    const sources = [...pension.slice(0, 3), ...foreign.filter((p) => p.agencyId === PENSION)];
    const target = new Map([...minted, ...foreign].filter((p) => p.agencyId === MURORAN).map((p) => [p.subjectId, p.code]));
    const unknown = LOCATOR.mint(pension[0]!.subjectId); // names Aoyama-san's bucket but was never issued
    expect(await mapper.translateMany(PENSION, [...sources.map((p) => p.code), unknown], MURORAN)).toEqual([
      ...sources.map((p) => ({ status: 'translated', subjectId: p.subjectId, code: target.get(p.subjectId) })),
      { status: 'unknown-code' },
    ]);
    await mapper.drop();
  });

  test('a minted code is 16 pseudorandom bytes: two agencies\' codes for one person share no locator in the clear', () => {
    const subject = freshSubject();
    const codes = Array.from({ length: 200 }, () => Buffer.from(LOCATOR.mint(subject), 'base64url'));
    // Without the key the first 7 bytes differ from code to code; with it, they are the person's locator.
    expect(new Set(codes.map((c) => c.subarray(0, 7).toString('hex'))).size).toBe(200);
    const tag = LOCATOR.tagOf(Buffer.from(subject.replaceAll('-', ''), 'hex'));
    for (const c of codes) expect(LOCATOR.locates(c, tag)).toBe(true);
    expect(codes.every((c) => new CodeLocator(newCodeKey()).locates(c, tag))).toBe(false);
    expect(() => new CodeLocator(Buffer.alloc(15))).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    expect(() => LOCATOR.mint('not-a-subject')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  test('data written under another code key is refused (LAYOUT_MISMATCH), or reset for a rebuild from the log when asked', async () => {
    const mapper = await open({ locator: LOCATOR });
    const people = population(10, [PENSION, MURORAN], (s) => LOCATOR.mint(s));
    await mapper.apply(asEvents(people));
    const options = { ...SMALL, prefix: mapper.layout.prefix };
    await expect(RedisCodeMapper.open(client, { ...options, locator: new CodeLocator(newCodeKey()) })).rejects.toMatchObject({ code: 'LAYOUT_MISMATCH' });
    await expect(RedisCodeMapper.open(client, options)).rejects.toMatchObject({ code: 'LAYOUT_MISMATCH' });
    expect(await mapper.entries()).toHaveLength(20);

    const other = new CodeLocator(newCodeKey());
    const reopened = await RedisCodeMapper.open(client, { ...options, locator: other, onLayoutMismatch: 'reset' });
    expect(await reopened.checkpoint()).toBe(-1);
    expect(await reopened.entries()).toEqual([]);
    await reopened.apply(asEvents(people));
    expect(await reopened.translate(PENSION, people[0]!.code, MURORAN)).toEqual({ status: 'translated', subjectId: people[0]!.subjectId, code: people[1]!.code });
    await reopened.drop();
  });
});

describe('Redis code mapper across code key rotations', () => {
  test('codes minted before and after two rotations are each found in one read, with no code bucket record, in one keyspace', async () => {
    const { redis, count } = countingMgets();
    const ring = new CodeLocator(newCodeKey());
    const mapper = await RedisCodeMapper.open(redis, { ...SMALL, slotGroupBits: 0, prefix: prefix(), locator: ring });
    const before = population(20, [PENSION, MURORAN], (s) => ring.mint(s));
    await mapper.apply(asEvents(before));
    ring.add({ generation: 1, key: newCodeKey() });
    const middle = population(20, [PENSION, MURORAN], (s) => ring.mint(s));
    ring.add({ generation: 2, key: newCodeKey() });
    const after = population(20, [PENSION, MURORAN], (s) => ring.mint(s));
    await mapper.apply(asEvents([...middle, ...after], before.length));
    expect((await mapper.dump()).filter(([k]) => k.startsWith(':c{'))).toEqual([]);
    // The layout meta names the first key: a rotation resets nothing.
    expect(ring.fingerprint).toBe(ring.keys[0]!.keyId);

    const everyone = [...before, ...middle, ...after];
    const muroranOf = new Map(everyone.filter((p) => p.agencyId === MURORAN).map((p) => [p.subjectId, p.code]));
    const pension = everyone.filter((p) => p.agencyId === PENSION);
    const start = count();
    expect(await mapper.translateMany(PENSION, pension.map((p) => p.code), MURORAN)).toEqual(pension.map((p) => ({ status: 'translated', subjectId: p.subjectId, code: muroranOf.get(p.subjectId) })));
    expect(count() - start).toBe(1);
    // One code of each generation, alone: one read each.
    for (const p of [before[0]!, middle[0]!, after[0]!]) {
      const at = count();
      expect(await mapper.translate(PENSION, p.code, MURORAN)).toMatchObject({ status: 'translated', subjectId: p.subjectId });
      expect(count() - at).toBe(1);
    }
    // A rebuild into a new keyspace with the same ring answers the same.
    const rebuilt = await RedisCodeMapper.open(client, { ...SMALL, slotGroupBits: 0, prefix: prefix(), locator: ring });
    await rebuilt.apply(asEvents(everyone));
    expect(await rebuilt.dump()).toEqual(await mapper.dump());
    await rebuilt.drop();
    await mapper.drop();
  });

  test('a code of the first key that carries a newer key\'s mark by chance is still found (one more round), and a mapper whose ring lacks the new key finds new codes the long way', async () => {
    const { redis, count } = countingMgets();
    const first = newCodeKey();
    const second = newCodeKey();
    const ring = new CodeLocator(first);
    ring.add({ generation: 1, key: second });
    // Draw codes of the first key until one opens under the second with the second's mark (1 in 65,536).
    const old = new CodeLocator(first);
    const subject = freshSubject();
    let unlucky: string | undefined;
    for (let round = 0; unlucky === undefined && round < 64; round++) {
      const codes = Array.from({ length: 16384 }, () => old.mint(subject));
      const opened = ring.openUnderEach(Buffer.concat(codes.map((c) => Buffer.from(c, 'base64url'))))[1]!;
      const k = codes.findIndex((_, i) => opened[i * 16 + 7] === 0 && opened[i * 16 + 8] === 1);
      if (k >= 0) unlucky = codes[k];
    }
    expect(unlucky).toBeDefined();
    const tag = ring.tagOf(Buffer.from(subject.replaceAll('-', ''), 'hex'));
    expect(ring.open(Buffer.from(unlucky!, 'base64url')).subarray(0, 7).equals(tag)).toBe(false);
    expect(ring.locates(Buffer.from(unlucky!, 'base64url'), tag)).toBe(true);

    const mapper = await RedisCodeMapper.open(redis, { ...SMALL, slotGroupBits: 0, prefix: prefix(), locator: ring });
    const theirs = ring.mint(subject);
    await mapper.apply(asEvents([{ subjectId: subject, agencyId: PENSION, code: unlucky as never }, { subjectId: subject, agencyId: MURORAN, code: theirs }]));
    const at = count();
    expect(await mapper.translate(PENSION, unlucky!, MURORAN)).toEqual({ status: 'translated', subjectId: subject, code: theirs });
    expect(count() - at).toBe(2);
    // An unknown code, with two keys: nothing found.
    expect(await mapper.translate(PENSION, ring.mint(subject), MURORAN)).toEqual({ status: 'unknown-code' });
    await mapper.drop();

    // A writer that does not hold the new key (a hub that has not read the rotation yet) files new codes by code bucket: still found.
    const behind = await RedisCodeMapper.open(client, { ...SMALL, prefix: prefix(), locator: new CodeLocator(first) });
    const people = population(5, [PENSION, MURORAN], (s) => ring.mint(s));
    await behind.apply(asEvents(people));
    expect((await behind.dump()).filter(([k]) => k.startsWith(':c{')).length).toBeGreaterThan(0);
    expect(await behind.translate(PENSION, people[0]!.code, MURORAN)).toEqual({ status: 'translated', subjectId: people[0]!.subjectId, code: people[1]!.code });
    await behind.drop();
  });

  test('the ring: marks, generations and ids', () => {
    const ring = new CodeLocator(newCodeKey());
    const subject = freshSubject();
    expect([ring.generation, ring.keyId]).toEqual([0, ring.fingerprint]);
    expect(() => ring.add({ generation: 0, key: newCodeKey() })).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    const key = newCodeKey();
    ring.add({ generation: 3, key });
    ring.add({ generation: 3, key }); // the same key again: nothing changes
    expect(() => ring.add({ generation: 3, key: newCodeKey() })).toThrow(/already/);
    expect(() => ring.add({ generation: 2, key: newCodeKey() })).toThrow(/above 3/);
    expect(() => ring.add({ generation: 70000, key: newCodeKey() })).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    expect(ring.keys.map((k) => k.generation)).toEqual([0, 3]);
    expect(ring.generation).toBe(3);
    // The newest key's codes carry its mark inside the block (bytes 7–8), invisible without the key.
    const code = Buffer.from(ring.mint(subject), 'base64url');
    expect([...ring.open(code).subarray(7, 9)]).toEqual([0, 3]);
    expect(() => ring.mint(subject, Buffer.alloc(9))).toThrow(/7 random bytes/);
    const codes = Array.from({ length: 200 }, () => Buffer.from(ring.mint(subject), 'base64url'));
    expect(new Set(codes.map((c) => c.subarray(0, 9).toString('hex'))).size).toBe(200);
  });
});

describe('Redis code mapper', () => {
  test('codes that share bucket and filter bytes are told apart by the full code', async () => {
    const mapper = await open();
    const shared = randomBytes(6);
    const code = (): ReturnType<typeof agencyCodeFromRandomBytes> => agencyCodeFromRandomBytes(Buffer.concat([shared, randomBytes(10)]));
    const [s1, s2] = [freshSubject(), freshSubject()];
    const people = [
      { subjectId: s1, agencyId: PENSION, code: code() },
      { subjectId: s2, agencyId: PENSION, code: code() },
      { subjectId: s1, agencyId: MURORAN, code: code() },
      { subjectId: s2, agencyId: MURORAN, code: code() },
    ];
    await mapper.apply(asEvents(people));
    expect(await mapper.translateMany(PENSION, [people[0]!.code, people[1]!.code, code()], MURORAN)).toEqual([
      { status: 'translated', subjectId: s1, code: people[2]!.code },
      { status: 'translated', subjectId: s2, code: people[3]!.code },
      { status: 'unknown-code' },
    ]);
    await mapper.drop();
  });

  test('I8: rebuilt from the log, the mapper equals the live one, byte for byte', async () => {
    const store = new InMemoryEventStore();
    const live = await open();
    const controller = new AbortController();
    const following = follow(store, live, { signal: controller.signal, maxBatch: 50 });
    for (let i = 0; i < 4; i++) await acquireInStore(store, population(40));
    const head = (await store.head()) - 1;
    for (let i = 0; i < 200 && (await live.checkpoint()) < head; i++) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await following;
    expect(await live.checkpoint()).toBe(head);

    const rebuilt = await open();
    await rebuildFrom(store, rebuilt, { pageSize: 333 });
    expect(await rebuilt.checkpoint()).toBe(head);
    expect(await rebuilt.entries()).toEqual(await live.entries());
    expect(await rebuilt.entries()).toHaveLength(640);
    expect(await rebuilt.dump()).toEqual(await live.dump());
    await Promise.all([live.drop(), rebuilt.drop(), store.close()]);
  });

  test('I4: no My Number or resident record code reaches Redis (raw DUMP of every key searched)', async () => {
    const store = new InMemoryEventStore();
    const sealed = new SealedEventStore(store, inMemorySealer());
    const identifiers: string[] = [];
    const people = population(20, [PENSION, MURORAN]);
    for (const subjectId of new Set(people.map((p) => p.subjectId))) {
      const resident = String(10_000_000_000 + Math.floor(Math.random() * 89_999_999_999));
      const number = individualNumberFromRandomBase(resident.slice(0, 11));
      identifiers.push(resident, number);
      const events = personNumberingDecider.decide(
        {
          type: 'IssueIndividualNumber',
          data: { subjectId, municipalityCode: '012050', municipalityKnown: true, number, numberDigest: randomBytes(32).toString('hex'), residentDigest: randomBytes(32).toString('hex'), identifiers: { individualNumber: number, residentRecordCode: resident }, issuedAt: '2026-04-01T09:00:00.000Z' },
        },
        personNumberingDecider.initialState(),
      );
      // Appended as the hub appends them: identifiers sealed (I10).
      await sealed.append({ streamId: `person-numbering-${subjectId}`, expectedRevision: 'no_stream', serial: { allocate: true }, events, metadata: { actor: 'system:test', correlationId: subjectId } });
    }
    await acquireInStore(store, people);
    const mapper = await open();
    await catchUp(store, mapper);
    expect(await mapper.entries()).toHaveLength(people.length);
    let searched = 0;
    for (const [key] of await mapper.dump()) {
      const raw = (await client.sendCommand(['DUMP', `${mapper.layout.prefix}${key}`], { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } })) as Buffer;
      const text = Buffer.concat([Buffer.from(key), raw]).toString('latin1');
      for (const id of identifiers) expect(text.includes(id), `${key} holds an identifier`).toBe(false);
      searched++;
    }
    expect(searched).toBeGreaterThan(5);
    await Promise.all([mapper.drop(), store.close()]);
  });

  test('refuses data laid out differently: LAYOUT_MISMATCH', async () => {
    const mapper = await open();
    await expect(RedisCodeMapper.open(client, { ...SMALL, prefix: mapper.layout.prefix, codeBucketBits: 9 })).rejects.toMatchObject({ code: 'LAYOUT_MISMATCH' });
    await expect(RedisCodeMapper.open(client, { prefix: 'bad prefix*' })).rejects.toMatchObject({ code: 'LAYOUT_MISMATCH' });
    await mapper.drop();
  });

  test('keys carry the slot group as a cluster hash tag; buckets are plain strings of records', async () => {
    const mapper = await open();
    await mapper.apply(asEvents(population(50)));
    const dump = await mapper.dump();
    const buckets = dump.map(([k]) => k).filter((k) => /^:[cs]\{/.test(k));
    expect(buckets.length).toBeGreaterThan(10);
    for (const k of buckets) expect(k).toMatch(/^:[cs]\{[0-9a-z]+\}[0-9a-z]+$/);
    const sample = `${mapper.layout.prefix}${buckets[0]}`;
    expect(String(await client.sendCommand(['TYPE', sample]))).toBe('string');
    await mapper.drop();
  });
});
