import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamDeletedError } from '@kurrent/kurrentdb-client';
import { KEY_REWRAPPED, KurrentKeyring, PERSON_KEY_MADE, currentKekId, type Keyring } from '#sealing';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { KekRotations, type KekRotation } from '../src/keys/kek-rotation.js';
import { KEYRING } from '../src/sealing/sealing.providers.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, operatorToken, registerAgency, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

// A leader and a standby on one KurrentDB log, each with its own data dir (its own keyring.sqlite) and one
// keys dir they share: the leader rotates the sealing KEK, the standby follows the re-wraps and the new KEK.
announceServer();

const ENV = { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_CHECKPOINT_EVERY_EVENTS: '20' };
const ROTATE = '/v1/key-rotations/key-encryption';
const log = new SharedLog();
const provider = new FakeProvider();
const dirs: string[] = [];
let a: KurrentTestHub;
let b: KurrentTestHub;
let pension: Agency;
let muroran: Agency;
type Person = { individualNumber: string; citizenSecret: string; code: string };
const people: Person[] = [];
let rotation: KekRotation;

function dataDir(sharedKeysOf?: KurrentTestHub): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-kek-'));
  dirs.push(dir);
  if (sharedKeysOf !== undefined) symlinkSync(join(sharedKeysOf.dataDir, 'keys'), join(dir, 'keys'), 'dir');
  else mkdirSync(join(dir, 'keys'), { mode: 0o700 });
  return dir;
}

const ringOf = (hub: KurrentTestHub): KurrentKeyring => {
  const ring = hub.app.get<Keyring>(KEYRING);
  expect(ring).toBeInstanceOf(KurrentKeyring);
  return ring as KurrentKeyring;
};

type StreamEvents = { type: string; kek?: string }[] | 'deleted';

/** The key streams of this log in KurrentDB: name → their events' types and KEKs (or 'deleted'). */
async function keyStreams(): Promise<Map<string, StreamEvents>> {
  const client = (await log.client()) as unknown as {
    readAll(o: object): AsyncIterable<{ event?: { streamId: string } }>;
    readStream(s: string, o: object): AsyncIterable<{ event?: { type: string; data: unknown } }>;
  };
  const { streamNameFilter } = await import('@kurrent/kurrentdb-client');
  const names = new Set<string>();
  for await (const e of client.readAll({ fromPosition: 'start', filter: streamNameFilter({ prefixes: [`${log.logStream}-key-`, `${log.logStream}-epoch-`] }) })) if (e.event) names.add(e.event.streamId);
  const out = new Map<string, StreamEvents>();
  for (const name of names) {
    try {
      const events: { type: string; kek?: string }[] = [];
      for await (const x of client.readStream(name, { fromRevision: 'start', maxCount: 100n })) {
        const data = (x.event?.data instanceof Uint8Array ? JSON.parse(Buffer.from(x.event.data).toString('utf8')) : x.event?.data) as { kek?: string };
        events.push({ type: x.event!.type, ...(data.kek === undefined ? {} : { kek: data.kek }) });
      }
      out.set(name, events);
    } catch (error) {
      if (!(error instanceof StreamDeletedError)) throw error;
      out.set(name, 'deleted');
    }
  }
  return out;
}

const query = (hub: KurrentTestHub, p: Person) =>
  hub.post('/v1/queries', { code: p.code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));

async function recordsOn(hub: KurrentTestHub, p: Person): Promise<string[] | undefined> {
  const res = await hub.get('/v1/citizens/me/provision-records', bearer(p.citizenSecret));
  return res.statusCode === 200 ? res.json<{ records: { serial: string }[] }>().records.map((r) => r.serial) : undefined;
}

const unsealFailures = (hub: KurrentTestHub) => hub.logger.lines.filter((l) => /UNSEAL_FAILED|INVALID_KEYS|not in the key ring|do not open/.test(l.message));

async function person(hub: KurrentTestHub): Promise<Person> {
  const p = await issuePerson(hub);
  const made = { ...p, code: await acquire(hub, pension, p.individualNumber) };
  await acquire(hub, muroran, p.individualNumber);
  people.push(made);
  return made;
}

beforeAll(async () => {
  a = await startKurrentHub(log, { instanceId: 'kek-a', dataDir: dataDir(), env: ENV });
  await provider.start(a);
  pension = await registerAgency(a, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(a, MURORAN_CITY, 'municipality', provider.endpoint);
  b = await startKurrentHub(log, { instanceId: 'kek-b', dataDir: dataDir(a), env: ENV });
});

afterAll(async () => {
  await provider.stop();
  await a?.close();
  await b?.close();
  await log.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('rotation of the sealing KEK on KurrentDB (a leader and a standby sharing keys/)', () => {
  it('the standby refuses the command (503 NOT_LEADER, nothing written); the leader rotates under load: every key stream gets a KeyRewrapped event, the standby follows it and its new KEK, and opens every field', async () => {
    expect((await b.get('/health/ready')).json()).toMatchObject({ role: 'standby' });
    const serials: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await person(a);
      const res = await query(a, p);
      expect([200, 201], res.body).toContain(res.statusCode);
      serials.push(res.json<{ serial: string }>().serial);
    }
    for (const [i, p] of people.entries()) await eventually(`the standby shows person ${i}'s records`, async () => (await recordsOn(b, p))?.includes(serials[i]!));
    const firstKid = currentKekId(ringOf(a).keys);
    const files = readdirSync(join(a.dataDir, 'keys')).sort();

    // The standby: 503, and no key file written.
    expectProblem(await b.post(ROTATE, { kek: 'sealing' }, bearer(operatorToken(b))), 503, 'NOT_LEADER');
    expect(readdirSync(join(a.dataDir, 'keys')).sort()).toEqual(files);

    // The leader, while queries and numbering go on.
    const rotations = a.app.get(KekRotations);
    rotations.pageSize = 1;
    rotations.pagePauseMs = 40;
    let stop = false;
    const load = (async () => {
      let n = 0;
      while (!stop) {
        const p = n % 3 === 0 ? await person(a) : people[n % people.length]!;
        const res = await query(a, p);
        expect([200, 201], res.body).toContain(res.statusCode);
        n++;
      }
      return n;
    })();
    const head = await a.head();
    const res = await a.post(ROTATE, { kek: 'sealing' }, bearer(operatorToken(a)));
    stop = true;
    expect(await load).toBeGreaterThan(0);
    expect(res.statusCode, res.body).toBe(201);
    rotation = res.json<KekRotation>();
    expect(rotation.position - head).toBeGreaterThanOrEqual(3);
    expect(rotation).toMatchObject({ kek: 'sealing', previousKekIds: [firstKid], retiredKekIds: [firstKid], keptKekIds: [] });
    expect(rotation.rewrappedPersonKeys).toBeGreaterThanOrEqual(4);

    // KurrentDB: every live key stream's last event holds a wrap under the new KEK; the earlier ones got a KeyRewrapped.
    const streams = await keyStreams();
    for (const [name, events] of streams) {
      expect(events, name).not.toBe('deleted');
      const list = events as { type: string; kek?: string }[];
      expect(list.at(-1)!.kek, name).toBe(rotation.kekId);
      expect(list[0]!.type).toMatch(/^(PersonKeyMade|PeriodKeyMade)$/);
      if (list.length > 1) expect(list.slice(1).map((e) => e.type)).toEqual([KEY_REWRAPPED]);
    }
    const rewrapped = [...streams.values()].filter((e) => e !== 'deleted' && e.length === 2).length;
    expect(rewrapped).toBe(rotation.rewrappedPersonKeys + rotation.rewrappedPeriodKeys);

    // The leader's copy, and the standby's once it has followed: no wrap under the old KEK; the standby wraps under the new one too.
    expect(Object.keys(ringOf(a).local.wrapCounts().personKeys)).toEqual([rotation.kekId]);
    await eventually('the standby\'s copy is re-wrapped', async () => {
      const counts = ringOf(b).local.wrapCounts();
      return Object.keys(counts.personKeys).join() === rotation.kekId && Object.keys(counts.periodKeys).join() === rotation.kekId;
    });
    expect(currentKekId(ringOf(b).keys)).toBe(rotation.kekId);
    expect(existsSync(join(a.dataDir, 'keys', `sealing-kek.${rotation.kekId}.key.json`))).toBe(true);
    // Every person's records, before and after, on the standby.
    for (const p of people) await eventually('the standby shows the records', async () => (await recordsOn(b, p))?.length);
    expect(unsealFailures(b)).toEqual([]);
    expect(unsealFailures(a)).toEqual([]);
  });

  it('an erasure after the rotation deletes the key\'s stream with both its wraps; after a takeover the new leader keys new people under the new KEK; the auditor\'s verification passes', async () => {
    const target = people[0]!;
    const before = await keyStreams();
    const erased = await a.post('/v1/erasures', { individualNumber: target.individualNumber, reason: 'erasure ordered, ref. KEK-1' }, bearer(operatorToken(a)));
    expect(erased.statusCode, erased.body).toBe(201);
    await ringOf(a).settled();
    const after = await keyStreams();
    const deleted = [...after].filter(([, e]) => e === 'deleted').map(([name]) => name);
    expect(deleted).toHaveLength(1);
    expect((before.get(deleted[0]!) as { type: string }[]).map((e) => e.type)).toEqual([PERSON_KEY_MADE, KEY_REWRAPPED]);
    if (log.fake !== undefined) {
      log.fake.scavenge();
      expect(log.fake.all.some((e) => e.streamName === deleted[0] && e.event.type !== '$streamDeleted')).toBe(false);
    }
    const kid = Buffer.from(deleted[0]!.slice(deleted[0]!.lastIndexOf('-') + 1), 'hex');
    await eventually('the standby forgets the key', async () => ringOf(b).local.keyById(kid) === 'shredded');

    a.leadership.halt();
    await eventually('the standby leads', async () => (await b.get('/health/ready')).json<{ role: string }>().role === 'leader', 15_000);
    const fresh = await person(b);
    const res = await query(b, fresh);
    expect([200, 201], res.body).toContain(res.statusCode);
    const made = [...(await keyStreams())].filter(([name]) => !after.has(name));
    expect(made.length).toBeGreaterThanOrEqual(1);
    for (const [, events] of made) expect(events).toEqual([{ type: PERSON_KEY_MADE, kek: rotation.kekId }]);
    for (const p of people.slice(1)) expect(await recordsOn(b, p), p.individualNumber).toBeDefined();
    expect(unsealFailures(b)).toEqual([]);

    await b.post('/v1/audit/checkpoints', {}, bearer(operatorToken(b)));
    const audit = await verifyLog({ source: { kind: 'kurrentdb', url: await log.url(), stream: log.logStream }, verifierKey: (await b.get('/v1/audit/verifier-key')).body.trim(), threads: 2 });
    expect(audit).toMatchObject({ ok: true, findingCount: 0 });
  });
});
