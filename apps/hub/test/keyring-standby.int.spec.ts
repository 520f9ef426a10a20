import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamDeletedError } from '@kurrent/kurrentdb-client';
import { KurrentKeyring, type Keyring } from '#sealing';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { KEYRING } from '../src/sealing/sealing.providers.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, operatorToken, registerAgency, type Agency } from './support/linkage-fixture.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

// Two hubs on one KurrentDB log with SEPARATE data dirs: only the keys (keys/) are copied, each hub has its
// own keyring.sqlite, and the person and year keys are shared through KurrentDB (one stream per key).
announceServer();

const ENV = { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_CHECKPOINT_EVERY_EVENTS: '20' };
const log = new SharedLog();
const provider = new FakeProvider();
const dirs: string[] = [];
let a: KurrentTestHub;
let b: KurrentTestHub;
let c: KurrentTestHub | undefined;
let pension: Agency;
let muroran: Agency;
type Person = { individualNumber: string; citizenSecret: string; code: string };
const people: Person[] = [];

/** A data dir of its own, with a copy of the first hub's keys and nothing else. */
function dataDirWithKeysOf(hub?: KurrentTestHub): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-kdb-own-'));
  dirs.push(dir);
  if (hub !== undefined) cpSync(join(hub.dataDir, 'keys'), join(dir, 'keys'), { recursive: true });
  return dir;
}

const ringOf = (hub: KurrentTestHub): KurrentKeyring => {
  const ring = hub.app.get<Keyring>(KEYRING);
  expect(ring).toBeInstanceOf(KurrentKeyring);
  return ring as KurrentKeyring;
};

/** The key streams of this log in KurrentDB: name → events (or 'deleted'). */
async function keyStreams(): Promise<Map<string, number | 'deleted'>> {
  const client = (await log.client()) as unknown as { readAll(o: object): AsyncIterable<{ event?: { streamId: string; type: string } }>; readStream(s: string, o: object): AsyncIterable<unknown> };
  const { streamNameFilter } = await import('@kurrent/kurrentdb-client');
  const names = new Set<string>();
  for await (const e of client.readAll({ fromPosition: 'start', filter: streamNameFilter({ prefixes: [`${log.logStream}-key-`, `${log.logStream}-epoch-`] }) })) if (e.event) names.add(e.event.streamId);
  const out = new Map<string, number | 'deleted'>();
  for (const name of names) {
    try {
      let n = 0;
      for await (const x of client.readStream(name, { fromRevision: 'start', maxCount: 100n })) if (x !== undefined) n++;
      out.set(name, n);
    } catch (error) {
      if (!(error instanceof StreamDeletedError)) throw error;
      out.set(name, 'deleted');
    }
  }
  return out;
}

const query = (hub: KurrentTestHub, p: Person) =>
  hub.post('/v1/queries', { code: p.code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));

/** The person's provision records as the citizen reads them on `hub` (their credential and records folded there). */
async function recordsOn(hub: KurrentTestHub, p: Person): Promise<string[] | undefined> {
  const res = await hub.get('/v1/citizens/me/provision-records', bearer(p.citizenSecret));
  return res.statusCode === 200 ? res.json<{ records: { serial: string }[] }>().records.map((r) => r.serial) : undefined;
}

const unsealFailures = (hub: KurrentTestHub) => hub.logger.lines.filter((l) => /UNSEAL_FAILED|not in the key ring|do not open/.test(l.message));

beforeAll(async () => {
  a = await startKurrentHub(log, { instanceId: 'kr-a', dataDir: dataDirWithKeysOf(), env: ENV });
  await provider.start(a);
  pension = await registerAgency(a, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(a, MURORAN_CITY, 'municipality', provider.endpoint);
  b = await startKurrentHub(log, { instanceId: 'kr-b', dataDir: dataDirWithKeysOf(a), env: ENV });
});

afterAll(async () => {
  await provider.stop();
  await a?.close();
  await b?.close();
  await c?.close();
  await log.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the key ring shared through KurrentDB (hubs with separate data dirs)', () => {
  it('the leader numbers people and runs queries; the standby opens every sealed field it folds and answers for those people', async () => {
    expect((await b.get('/health/ready')).json()).toMatchObject({ role: 'standby' });
    const serials: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await issuePerson(a);
      const code = await acquire(a, pension, p.individualNumber);
      await acquire(a, muroran, p.individualNumber);
      const person = { ...p, code };
      people.push(person);
      const res = await query(a, person);
      // Answered or refused by the provider (NO_RECORD): a recorded query either way.
      expect([200, 201], res.body).toContain(res.statusCode);
      serials.push(res.json<{ serial: string }>().serial);
    }
    // Each person's key, and the year's, is one stream in KurrentDB with one event.
    const streams = await keyStreams();
    expect([...streams.values()].every((n) => n === 1)).toBe(true);
    expect([...streams.keys()].filter((s) => s.includes('-key-')).length).toBeGreaterThanOrEqual(people.length);
    // The standby's own ring (its own keyring.sqlite) has them, and its views answer for every person.
    for (const [i, p] of people.entries()) {
      const records = await eventually(`the standby shows person ${i}'s records`, async () => {
        const r = await recordsOn(b, p);
        return r?.includes(serials[i]!) ? r : undefined;
      });
      expect(records).toContain(serials[i]);
    }
    const ringB = ringOf(b);
    for (const name of streams.keys()) {
      if (!name.includes('-key-')) continue;
      const kid = Buffer.from(name.slice(name.lastIndexOf('-') + 1), 'hex');
      expect(Buffer.isBuffer(ringB.local.keyById(kid)), name).toBe(true);
    }
    expect(unsealFailures(b)).toEqual([]);
  });

  it('the leader dies: the new leader opens the dead leader\'s fields and makes no second key for a person who had one', async () => {
    const before = await keyStreams();
    a.leadership.halt();
    await eventually('the standby leads', async () => (await b.get('/health/ready')).json<{ role: string }>().role === 'leader', 15_000);
    // Commands about people the dead leader keyed: new codes, queries, their records.
    for (const p of people) {
      await acquire(b, pension, p.individualNumber);
      const res = await query(b, p);
      expect([200, 201], res.body).toContain(res.statusCode);
      expect(await recordsOn(b, p)).toContain(res.json<{ serial: string }>().serial);
    }
    const after = await keyStreams();
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    expect([...after.values()].every((n) => n === 1)).toBe(true);
    // A person numbered now gets one new key.
    const fresh = await issuePerson(b);
    await acquire(b, pension, fresh.individualNumber);
    const withFresh = await keyStreams();
    expect([...withFresh.keys()].filter((k) => !after.has(k) && k.includes('-key-'))).toHaveLength(1);
    expect(unsealFailures(b)).toEqual([]);
  });

  it('an erasure on one hub deletes the key\'s stream in KurrentDB and the key in every other hub\'s ring; every proof still verifies', async () => {
    c = await startKurrentHub(log, { instanceId: 'kr-c', dataDir: dataDirWithKeysOf(b), env: ENV });
    expect((await c.get('/health/ready')).json()).toMatchObject({ role: 'standby' });
    const target = people[0]!;
    await eventually('the new standby shows the records', async () => (await recordsOn(c!, target))?.length);
    const before = await keyStreams();
    const erased = await b.post('/v1/erasures', { individualNumber: target.individualNumber, reason: 'erasure ordered, ref. K-1' }, bearer(operatorToken(b)));
    expect(erased.statusCode, erased.body).toBe(201);
    await ringOf(b).settled();
    const after = await keyStreams();
    const deleted = [...after].filter(([, n]) => n === 'deleted').map(([name]) => name);
    expect(deleted).toHaveLength(1);
    expect(before.get(deleted[0]!)).toBe(1);
    const kid = Buffer.from(deleted[0]!.slice(deleted[0]!.lastIndexOf('-') + 1), 'hex');
    expect(ringOf(b).local.keyById(kid)).toBe('shredded');
    // The other hubs' copies go too: the standby's, and the dead leader's.
    await eventually('the standby forgets the key', async () => ringOf(c!).local.keyById(kid) === 'shredded');
    await eventually('the old leader forgets the key', async () => ringOf(a).local.keyById(kid) === 'shredded');
    // Everybody else's fields still open on the standby.
    expect(await recordsOn(c, people[1]!)).toBeDefined();
    if (log.fake !== undefined) {
      log.fake.scavenge();
      expect(log.fake.all.some((e) => e.streamName === deleted[0] && e.event.type !== '$streamDeleted')).toBe(false);
    }
    // The log, its tree and every checkpoint verify (the auditor's own verification of the raw stream).
    await b.post('/v1/audit/checkpoints', {}, bearer(operatorToken(b)));
    const audit = await verifyLog({ source: { kind: 'kurrentdb', url: await log.url(), stream: log.logStream }, verifierKey: (await b.get('/v1/audit/verifier-key')).body.trim(), threads: 2 });
    expect(audit).toMatchObject({ ok: true, findingCount: 0 });
    expect(audit.checkpoints.verified).toBeGreaterThan(0);
    expect(unsealFailures(c)).toEqual([]);
  });
});
