import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StreamDeletedError } from '@kurrent/kurrentdb-client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { InMemoryEventStore } from '#ledger';
import {
  EventSealer,
  KurrentKeyring,
  SealedEventStore,
  SealingError,
  SqliteKeyring,
  generateSealingKeysFile,
  parseSealingKeys,
  periodKeyStream,
  personKeyStream,
  personKid,
  type KurrentKeyClient,
} from '#sealing';
import type { FakeKurrentDb } from '../../ledger/test/fixtures/fake-kurrentdb.js';
import { announceKurrentServer, startKurrentTestServer } from '../../ledger/test/fixtures/kurrentdb-test-server.js';

// The key ring the hubs of one KurrentDB log share, through the real @kurrent/kurrentdb-client: against the
// server at KURRENTDB_URL, else the wire-level stand-in (its storage, FakeKurrentDb, is inspected and given
// faults here; the client sees them only as the server's answers).
announceKurrentServer('KurrentDB key ring tests');

const keys = parseSealingKeys(generateSealingKeysFile(new Date('2026-12-05T00:00:00Z')));
const AT = '2026-12-05T00:00:00.000Z';
const dirs: string[] = [];
const rings: KurrentKeyring[] = [];
let server: { client: KurrentKeyClient; fake: FakeKurrentDb | undefined; dispose(): Promise<void> } | undefined;

async function kurrent(): Promise<{ client: KurrentKeyClient; fake: FakeKurrentDb | undefined }> {
  if (server !== undefined) return server;
  const started = await startKurrentTestServer();
  server = { client: started.connect(), fake: started.db, dispose: () => started.dispose() };
  return server;
}

/** A hub's ring: its own data dir (its own keyring.sqlite), the shared KurrentDB, the same sealing keys. */
async function ring(logStream: string, dir = mkdtempSync(join(tmpdir(), 'kdb-keyring-'))): Promise<KurrentKeyring> {
  if (!dirs.includes(dir)) dirs.push(dir);
  const r = new KurrentKeyring({ client: (await kurrent()).client, local: new SqliteKeyring({ path: join(dir, 'keyring.sqlite'), keys }), keys, logStream });
  rings.push(r);
  return r;
}

async function streamState(stream: string): Promise<'deleted' | 'missing' | number> {
  const { client } = await kurrent();
  try {
    let n = 0;
    for await (const e of client.readStream(stream, { fromRevision: 'start', maxCount: 100n })) if (e.event !== undefined) n++;
    return n;
  } catch (error) {
    if (error instanceof StreamDeletedError) return 'deleted';
    if ((error as Error).constructor.name === 'StreamNotFoundError') return 'missing';
    throw error;
  }
}

const subject = () => randomUUID();
const kidOf = (s: string) => personKid(keys, s);

afterEach(() => {
  for (const r of rings.splice(0)) r.close();
});
afterAll(async () => {
  await server?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('KurrentKeyring: a key ring shared through KurrentDB', () => {
  it('makes a person key durable in KurrentDB, wrapped (never in clear), and another hub reads the same key', async () => {
    const log = `keyring-test-${randomUUID()}`;
    const a = await ring(log);
    const b = await ring(log);
    const s = subject();
    // Nothing is sealed under a key that is not ready: synchronous creation is refused.
    expect(() => a.subjectKey(s, true)).toThrow(SealingError);
    expect(() => a.subjectKey(s, true)).toThrow(/not made ready/);
    await a.prepareSeal([s], [2026]);
    const made = a.subjectKey(s, true) as { kid: Buffer; key: Buffer };
    expect(made.kid).toEqual(kidOf(s));
    expect(await streamState(personKeyStream(log, made.kid))).toBe(1);
    expect(await streamState(periodKeyStream(log, 2026))).toBe(1);
    // The other hub does not have it until it reads it: then the same key.
    expect(b.local.keyById(made.kid)).toBeUndefined();
    await b.prepareOpen([made.kid], [2026]);
    expect(b.keyById(made.kid)).toEqual(made.key);
    expect(b.epochKey(2026, false)).toEqual(a.epochKey(2026, false));
    // KurrentDB holds the key wrapped: no stored byte sequence equals the key.
    const { fake } = await kurrent();
    if (fake !== undefined) {
      for (const entry of fake.all) {
        const bytes = Buffer.from(JSON.stringify(entry.event.data instanceof Uint8Array ? Buffer.from(entry.event.data).toString('utf8') : entry.event.data));
        expect(bytes.includes(made.key.toString('base64url'))).toBe(false);
        expect(Buffer.from(entry.event.data as Uint8Array).includes(made.key)).toBe(false);
      }
    }
  });

  it('two hubs making one person\'s key at once end with one key: KurrentDB refuses the second ("no stream"), which takes the first', async () => {
    const log = `keyring-test-${randomUUID()}`;
    const a = await ring(log);
    const b = await ring(log);
    const people = Array.from({ length: 20 }, subject);
    await Promise.all([a.prepareSeal(people, [2025, 2026]), b.prepareSeal([...people].reverse(), [2026, 2025])]);
    for (const s of people) {
      const ka = a.subjectKey(s, false) as { key: Buffer };
      const kb = b.subjectKey(s, false) as { key: Buffer };
      expect(kb.key).toEqual(ka.key);
      expect(await streamState(personKeyStream(log, kidOf(s)))).toBe(1);
    }
    expect(b.epochKey(2025, false)).toEqual(a.epochKey(2025, false));
    expect(b.epochKey(2026, false)).toEqual(a.epochKey(2026, false));
    // A hub that made it already does not make it again.
    await a.prepareSeal(people, []);
    expect(await streamState(personKeyStream(log, kidOf(people[0]!)))).toBe(1);
  });

  it('a follower keeps its copy in step with the key streams, from where it stopped (kept across restarts)', async () => {
    const log = `keyring-test-${randomUUID()}`;
    const a = await ring(log);
    const bDir = mkdtempSync(join(tmpdir(), 'kdb-keyring-'));
    const b = await ring(log, bDir);
    const people = Array.from({ length: 5 }, subject);
    await a.prepareSeal(people.slice(0, 3), [2026]);
    await b.follow();
    for (const s of people.slice(0, 3)) expect(b.local.keyById(kidOf(s))).toEqual((a.subjectKey(s, false) as { key: Buffer }).key);
    expect(b.local.epochKey(2026, false)).toEqual(a.epochKey(2026, false));
    expect(b.local.keyById(kidOf(people[3]!))).toBeUndefined();
    b.close();
    await a.prepareSeal(people.slice(3), []);
    const again = await ring(log, bDir);
    await again.follow();
    for (const s of people) expect(again.local.keyById(kidOf(s))).toEqual((a.subjectKey(s, false) as { key: Buffer }).key);
    expect(again.local.meta('kurrentdb-followed-position')).toMatch(/^\d+\/\d+$/);
  });

  it('shredding deletes the key\'s stream (a tombstone: never written again, its data gone after a scavenge) and every hub\'s copy', async () => {
    const log = `keyring-test-${randomUUID()}`;
    const a = await ring(log);
    const b = await ring(log);
    const gone = subject();
    const kept = subject();
    await a.prepareSeal([gone, kept], [2017, 2018, 2019]);
    await b.follow();
    const goneKid = kidOf(gone);
    const wrapped = a.local.keyById(goneKid) as Buffer;
    expect(b.local.keyById(goneKid)).toEqual(wrapped);

    expect(a.shredSubject(gone, AT)).toBe(true);
    await a.settled();
    expect(a.pendingDeletions).toBe(0);
    expect(a.subjectKey(gone, false)).toBe('shredded');
    expect(await streamState(personKeyStream(log, goneKid))).toBe('deleted');
    // The other hub's copy goes at its next follow (the tombstone is in $all).
    await b.follow();
    expect(b.isShredded(goneKid)).toBe(true);
    expect(b.keyById(goneKid)).toBe('shredded');
    expect(b.keyById(kidOf(kept))).toEqual(a.keyById(kidOf(kept)));
    // Never keyed anew: not by the hub that shredded, not by one that never saw the key.
    await a.prepareSeal([gone], []);
    expect(a.subjectKey(gone, false)).toBe('shredded');
    const c = await ring(log);
    await c.prepareSeal([gone], []);
    expect(c.subjectKey(gone, false)).toBe('shredded');
    expect(await streamState(personKeyStream(log, goneKid))).toBe('deleted');

    // Years: the period keys through 2018 go, 2019 stays.
    expect(a.shredEpochsThrough(2018, AT)).toEqual([2017, 2018]);
    await a.settled();
    expect(await streamState(periodKeyStream(log, 2017))).toBe('deleted');
    expect(await streamState(periodKeyStream(log, 2018))).toBe('deleted');
    expect(await streamState(periodKeyStream(log, 2019))).toBe(1);
    await b.follow();
    expect([b.isEpochShredded(2017), b.isEpochShredded(2018), b.isEpochShredded(2019)]).toEqual([true, true, false]);
    expect(b.liveEpochs()).toEqual([2019]);

    // After a scavenge nothing of the shredded key is left anywhere in KurrentDB.
    const { fake } = await kurrent();
    if (fake !== undefined) {
      fake.scavenge();
      expect(fake.all.some((e) => e.streamName === personKeyStream(log, goneKid) && e.event.type !== '$streamDeleted')).toBe(false);
      expect(fake.all.some((e) => e.streamName === personKeyStream(log, kidOf(kept)))).toBe(true);
    }
  });

  it('a deletion KurrentDB did not confirm is kept and retried at the next follow', async () => {
    const { fake } = await kurrent();
    if (fake === undefined) return;
    const log = `keyring-test-${randomUUID()}`;
    const a = await ring(log);
    const s = subject();
    await a.prepareSeal([s], []);
    const original = fake.tombstoneStream.bind(fake);
    fake.tombstoneStream = () => Promise.reject(new Error('14 UNAVAILABLE: connection reset'));
    a.shredSubject(s, AT);
    await a.settled();
    expect(a.subjectKey(s, false)).toBe('shredded');
    expect(a.pendingDeletions).toBe(1);
    expect(await streamState(personKeyStream(log, kidOf(s)))).toBe(1);
    fake.tombstoneStream = original;
    await a.follow();
    await a.settled();
    expect(a.pendingDeletions).toBe(0);
    expect(await streamState(personKeyStream(log, kidOf(s)))).toBe('deleted');
  });

  it('a ring that was a hub\'s own file puts its keys into KurrentDB once (publish), its shredded ones deleted there', async () => {
    const log = `keyring-test-${randomUUID()}`;
    const dir = mkdtempSync(join(tmpdir(), 'kdb-keyring-'));
    dirs.push(dir);
    const own = new SqliteKeyring({ path: join(dir, 'keyring.sqlite'), keys });
    const [s1, s2, s3] = [subject(), subject(), subject()];
    own.ensureSubjectKeys([s1, s2, s3]);
    own.epochKey(2019, true);
    own.epochKey(2026, true);
    own.shredSubject(s3, AT);
    own.shredEpochsThrough(2019, AT);
    own.close();
    const a = await ring(log, dir);
    expect(await a.publish()).toEqual({ keys: 3, shredded: 2 });
    expect(await a.publish()).toEqual({ keys: 0, shredded: 0 });
    expect(await streamState(personKeyStream(log, kidOf(s1)))).toBe(1);
    expect(await streamState(personKeyStream(log, kidOf(s3)))).toBe('deleted');
    expect(await streamState(periodKeyStream(log, 2019))).toBe('deleted');
    const b = await ring(log);
    await b.follow();
    expect(b.keyById(kidOf(s2))).toEqual(a.keyById(kidOf(s2)));
    expect(b.epochKey(2026, false)).toEqual(a.epochKey(2026, false));
    expect(b.isShredded(kidOf(s3))).toBe(true);
    expect(b.isEpochShredded(2019)).toBe(true);
    // A ring made apart for the same log (other keys for the same people) is refused, not mixed in.
    const apart = mkdtempSync(join(tmpdir(), 'kdb-keyring-'));
    dirs.push(apart);
    const other = new SqliteKeyring({ path: join(apart, 'keyring.sqlite'), keys });
    other.ensureSubjectKeys([s1]);
    other.close();
    await expect((await ring(log, apart)).publish()).rejects.toThrow(/another key/);
  });

  it('the sealer on a shared ring: an append makes its keys durable first; another hub opens what it sealed', async () => {
    const log = `keyring-test-${randomUUID()}`;
    const a = await ring(log);
    const b = await ring(log);
    const sealerA = new EventSealer(keys, a);
    const sealerB = new EventSealer(keys, b);
    const store = new InMemoryEventStore({ nodeId: 1 });
    const ledger = new SealedEventStore(store, sealerA);
    const s = subject();
    const notice = { noticeId: randomUUID(), senderAgencyId: 'muroran-city', subjectId: s, title: '住民税のお知らせ', body: '課税証明書', sentAt: '2026-12-05T01:00:00.000Z' };
    await ledger.append({ streamId: 'notices', expectedRevision: 'any', serial: { allocate: true }, events: [{ type: 'NoticeSent', data: notice, terminal: 'completed' }], metadata: { actor: 'system:test', correlationId: 'c' } });
    expect(await streamState(personKeyStream(log, kidOf(s)))).toBe(1);
    const [stored] = await store.readAll();
    // Hub b has never seen the key: the sealed view of its ledger fetches it before opening.
    expect(b.local.keyById(kidOf(s))).toBeUndefined();
    const opened = await new SealedEventStore(store, sealerB).readAll();
    expect(opened[0]!.data).toMatchObject({ subjectId: s, title: '住民税のお知らせ' });
    expect(sealerB.open(stored!).state).toBe('opened');

    // A shred recorded in the log (sealed under the hub's own key) is carried out by a hub that reads it,
    // before its ring follows the deleted stream.
    await ledger.append({ streamId: 'keys-shredded', expectedRevision: 'any', serial: { allocate: true }, events: [{ type: 'KeysShredded', data: { shredId: randomUUID(), scope: 'erasure', subject: s, reason: 'ref. K-2', shreddedAt: AT }, terminal: 'completed' }], metadata: { actor: 'system:test', correlationId: 'k' } });
    expect(b.isShredded(kidOf(s))).toBe(false);
    const after = await new SealedEventStore(store, sealerB).readAll();
    expect(b.isShredded(kidOf(s))).toBe(true);
    expect(after[0]!.data).toMatchObject({ sealed: 'shredded' });
  });
});
