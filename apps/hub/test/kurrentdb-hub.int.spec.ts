import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTree, hashFromHex, leafHash, parseVerifierKey, toHex, verifyCheckpoint, verifyInclusion } from '#audit-log';
import { TreeFollower } from '../src/audit/tree-follower.service.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import { leaseStreamOf } from '../src/hub-core.module.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

// The hub with its log on KurrentDB (HUB_EVENT_STORE=kurrentdb://…): the core flows through the event-store
// port, with the Merkle tree in its own file under the data dir. Against the real server when KURRENTDB_URL
// is set, else against the wire-level stand-in (libs/ledger/test/fixtures/kurrentdb-wire-server.ts), both through
// the real @kurrent/kurrentdb-client.
announceServer();

const PROCEDURE = 'pension-award-claim';
const LOCAL_TAX = { 'local-tax': { fiscalYear: 2026, taxableIncome: 3_120_000, municipalTax: 187_200 } };

const log = new SharedLog();
const provider = new FakeProvider();
let hub: KurrentTestHub;
let pension: Agency;
let muroran: Agency;

beforeAll(async () => {
  hub = await startKurrentHub(log, { instanceId: 'hub-a', env: { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_CHECKPOINT_EVERY_EVENTS: '5' } });
  await provider.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
});

afterAll(async () => {
  await provider.stop();
  await hub?.close();
  await log.dispose();
});

describe('the hub on KurrentDB', () => {
  it('leads alone, says so in readiness, and writes its log into the KurrentDB stream', async () => {
    const ready = await hub.get('/health/ready');
    expect(ready.statusCode, ready.body).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', role: 'leader', leader: { instanceId: 'hub-a' }, selfCheck: { status: 'passed' } });
    const texts = await log.texts();
    expect(texts.length).toBe(await hub.head());
    expect(texts.map((t) => (JSON.parse(t) as { position: number }).position)).toEqual([...texts.keys()]);
  });

  it('numbers a person and answers a linkage query through the provider, under one serial', async () => {
    const person = await issuePerson(hub);
    const codeA = await acquire(hub, pension, person.individualNumber);
    const codeB = await acquire(hub, muroran, person.individualNumber);
    provider.behaviours.set(codeB, { answer: LOCAL_TAX });
    const res = await hub.post('/v1/queries', { providerAgencyId: MURORAN_CITY, procedureCode: PROCEDURE, itemCodes: ['local-tax'], code: codeA }, bearer(pension.token));
    expect(res.statusCode, res.body).toBe(200);
    const { serial } = res.json<{ serial: string }>();
    expect((await hub.store.readSerial(serial as never)).map((e) => [e.type, e.terminal ?? null])).toEqual([
      ['QueryAccepted', null],
      ['ProvisionRequested', null],
      ['ProvisionAnswered', null],
      ['QueryCompleted', 'completed'],
    ]);
    // The serials of the log are gap-free and each ends once.
    const texts = await log.texts();
    const serials = new Set(texts.map((t) => (JSON.parse(t) as { serial: string }).serial));
    expect(texts.filter((t) => (JSON.parse(t) as { terminal?: string }).terminal !== undefined).length).toBe(serials.size);
  });

  it('counts the append batches it commits to KurrentDB in its metrics, as the SQLite hub does', async () => {
    const batches = async (): Promise<number> => {
      const res = await hub.get('/metrics');
      expect(res.statusCode, res.body).toBe(200);
      return Number(/^linkage_ledger_batch_events_count (\S+)$/m.exec(res.body)?.[1] ?? 'NaN');
    };
    const before = await batches();
    expect(before).toBeGreaterThan(0);
    await issuePerson(hub);
    expect(await batches()).toBeGreaterThan(before);
  });

  it('signs checkpoints of the log and proves a serial in, as the auditor library checks them against the raw stream', async () => {
    const keyText = (await hub.get('/v1/audit/verifier-key')).body.trim();
    const key = parseVerifierKey(keyText);
    // A checkpoint over the events of the tests before (signed every 5 events), not the one signed at
    // takeover over the nearly empty log: the proof below names the serial of the log's second event.
    const checkpoint = await eventually('a checkpoint over at least 3 events', async () => {
      const res = await hub.get('/v1/audit/checkpoint?format=json');
      const cp = res.statusCode === 200 ? res.json<{ size: number; rootHex: string; note: string }>() : undefined;
      return cp !== undefined && cp.size >= 3 ? cp : undefined;
    });
    const cp = verifyCheckpoint(checkpoint.note, key, key.name);
    const texts = (await log.texts()).slice(0, cp.size);
    const reference = new MemoryTree(texts.map((t) => leafHash(t)));
    expect(toHex(reference.root())).toBe(toHex(cp.root));
    const serial = (JSON.parse(texts[1]!) as { serial: string }).serial;
    const proof = (await hub.get(`/v1/audit/proofs/inclusion?serial=${serial}&size=${cp.size}`)).json<{ rootHex: string; proofs: { position: number; envelope: string; proof: string[] }[] }>();
    expect(proof.rootHex).toBe(toHex(cp.root));
    for (const p of proof.proofs) {
      expect(p.envelope).toBe(texts[p.position]);
      verifyInclusion(p.position, cp.size, leafHash(p.envelope), p.proof.map((h) => hashFromHex(h)), cp.root);
    }
    const entries = (await hub.get('/v1/audit/entries?from=0&limit=3', hub.auditor)).json<{ entries: string[] }>();
    expect(entries.entries).toEqual(texts.slice(0, 3));
  });

  it('runs the reduced self-check through the port, and says what it covers', async () => {
    const res = await hub.post('/v1/audit/self-checks', {}, hub.operator);
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json<{ id: string }>().id;
    const run = await eventually('the requested run', async () => {
      const r = (await hub.get(`/v1/audit/self-checks/${id}`, hub.operator)).json<{ status: string; scope?: string; note?: string; checked: number; checkpoints: number }>();
      return r.status === 'running' ? undefined : r;
    });
    expect(run).toMatchObject({ status: 'passed', scope: 'checkpoints-through-port' });
    // The whole log as it was when the run began (a checkpoint may have been appended since).
    expect(run.checked).toBeGreaterThan(10);
    expect(run.checked).toBeLessThanOrEqual(await hub.head());
    expect(run.checkpoints).toBeGreaterThan(0);
    expect(run.note).toMatch(/reduced self-check/);
  });

  it('restarts on the same log and data dir: leads again at once, its tree resumes from its file, serials continue', async () => {
    const before = await hub.head();
    const dataDir = hub.dataDir;
    await hub.close();
    hub = await startKurrentHub(log, { instanceId: 'hub-a', dataDir, env: { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_CHECKPOINT_EVERY_EVENTS: '5' } });
    expect((await hub.get('/health/ready')).json()).toMatchObject({ role: 'leader' });
    // Taking over at start signed a checkpoint over the log as found (the fence), one more event.
    await hub.app.get(TreeFollower).catchUp();
    const tree = hub.app.get(TreeFollower).projection;
    expect(tree.size).toBe(await hub.head());
    expect(tree.latestCheckpoint()?.size).toBe(before);
    expect(tree.size).toBeGreaterThanOrEqual(before);
    expect(tree.latestCheckpoint()?.size).toBeGreaterThan(0);
    const person = await issuePerson(hub);
    expect(person.individualNumber).toMatch(/^\d{12}$/);
    const texts = await log.texts();
    const serials = texts.map((t) => (JSON.parse(t) as { serial: string }).serial);
    // A serial is never allocated twice: each one's events are one command's (and end once).
    const terminals = texts.filter((t) => (JSON.parse(t) as { terminal?: string }).terminal !== undefined).map((t) => (JSON.parse(t) as { serial: string }).serial);
    expect(new Set(terminals).size).toBe(terminals.length);
    expect(new Set(serials).size).toBe(terminals.length);
  });
});

describe('the hub when its KurrentDB server restarts (the wire-level stand-in only)', () => {
  it('refuses commands with 503 while the server is away, steps down as it cannot renew, and leads again once the server is back; nothing acknowledged is lost', async () => {
    const away = new SharedLog();
    if (away.fake === undefined) return; // a real server is not restarted from a test
    const solo = await startKurrentHub(away, { instanceId: 'hub-solo', env: { HUB_CHECKPOINT_EVERY_EVENTS: '5' } });
    try {
      const designate = (i: number) => solo.post('/v1/corporate-numbers', { name: `株式会社再起動${i}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, solo.operator);
      const acked: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await designate(i);
        expect(res.statusCode, res.body).toBe(201);
        acked.push(res.json<{ serial: string }>().serial);
      }
      const restart = away.restartServer(2500);
      await new Promise((r) => setTimeout(r, 100));
      const during = await designate(100);
      // The leader has not stepped down yet (it may miss renewals for leaseMs - renewMs): KurrentDB did not answer.
      const refused = expectProblem(during, 503, 'LOG_UNAVAILABLE');
      expect(refused['detail']).not.toMatch(/127\.0\.0\.1|linkage-ledger-test/);
      expect(solo.logger.lines.some((l) => l.level === 'warn' && l.message.includes('KurrentDB did not confirm the append'))).toBe(true);
      await eventually('the hub steps down (it cannot renew its lease)', async () => (await solo.get('/health/ready')).json<{ role?: string }>().role === 'standby', 5_000);
      expectProblem(await designate(101), 503, 'NOT_LEADER');
      await restart;
      await eventually('the hub leads again', async () => (await solo.get('/health/ready')).json<{ role?: string }>().role === 'leader', 10_000);
      // The outage is logged once (named by the client's error class), not at every renewal interval.
      const leaseErrors = solo.logger.lines.filter((l) => l.level === 'error' && l.message.startsWith('lease:'));
      expect(leaseErrors.length, JSON.stringify(leaseErrors)).toBe(1);
      expect(leaseErrors[0]!.message).toMatch(/^lease: \w+Error/);
      expect(solo.logger.lines.some((l) => l.message === 'the lease stream answers again')).toBe(true);
      for (let i = 200; i < 203; i++) {
        const res = await designate(i);
        expect(res.statusCode, res.body).toBe(201);
        acked.push(res.json<{ serial: string }>().serial);
      }
      const events = (await away.texts()).map((t) => JSON.parse(t) as { position: number; serial: string; type: string; terminal?: string });
      expect(events.map((e) => e.position)).toEqual([...events.keys()]);
      for (const serial of acked) expect(events.filter((e) => e.serial === serial).map((e) => e.type)).toEqual(['CorporateNumberDesignated']);
      const terminals = events.filter((e) => e.terminal !== undefined).map((e) => e.serial);
      expect(new Set(terminals).size).toBe(terminals.length);
      expect((await solo.get('/health/ready')).json()).toMatchObject({ role: 'leader', openSerials: 0 });
    } finally {
      await solo.close();
      await away.dispose();
    }
  });
});

describe('the leader when the answer to a lease renewal is lost (the wire-level stand-in only)', () => {
  it('goes on leading from its own renewal instead of stepping down as if another hub had claimed the lease', async () => {
    const lossy = new SharedLog();
    if (lossy.fake === undefined) return; // faults are injected into the stand-in only
    const solo = await startKurrentHub(lossy, { instanceId: 'hub-lossy' });
    try {
      expect(solo.leadership.role).toBe('leader');
      const renewals = () => lossy.fake!.streams.get(leaseStreamOf(lossy.logStream))?.length ?? 0;
      const before = renewals();
      expect(before).toBeGreaterThan(0);
      // Idle hub: the next append is a renewal; KurrentDB writes it and the answer is lost.
      lossy.fake.failNextAppend('after');
      await eventually('the lost renewal and the ones after it', async () => renewals() >= before + 4);
      expect(solo.logger.lines.some((l) => l.message.includes('a lease renewal was written but its answer was lost'))).toBe(true);
      expect(solo.logger.lines.some((l) => l.message.includes('stepped down'))).toBe(false);
      expect(solo.leadership.role).toBe('leader');
      expect(solo.leadership.takeoverCount).toBe(1);
      const res = await solo.post('/v1/corporate-numbers', { name: '株式会社応答喪失', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, solo.operator);
      expect(res.statusCode, res.body).toBe(201);
    } finally {
      await solo.close();
      await lossy.dispose();
    }
  });
});
