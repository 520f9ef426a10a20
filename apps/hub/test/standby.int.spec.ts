import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTree, leafHash, parseVerifierKey, toHex, verifyCheckpoint } from '#audit-log';
import type { Response } from 'light-my-request';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { FakeProvider, PENSION, acquire, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

// Two hubs on one KurrentDB log (the wire-level stand-in, or the server at KURRENTDB_URL): one leads, the other stands
// by, serving reads and refusing commands; the leader dies under load and the standby takes over.
announceServer();

// The default lease timings (renewal every second, taken over after 4 s unrenewed).
const ENV = { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_CHECKPOINT_EVERY_EVENTS: '25', HUB_PROVIDER_TIMEOUT_MS: '60000', HUB_LEADERSHIP_RENEW_MS: '1000', HUB_LEADERSHIP_LEASE_MS: '4000' };
const log = new SharedLog();
const provider = new FakeProvider();
let a: KurrentTestHub;
let b: KurrentTestHub;
let pension: Agency;

interface Stored {
  readonly position: number;
  readonly serial: string;
  readonly type: string;
  readonly terminal?: string;
  readonly metadata: { actor: string; correlationId: string };
}
const parsed = async (): Promise<Stored[]> => (await log.texts()).map((t) => JSON.parse(t) as Stored);
const designate = (hub: KurrentTestHub, i: number): Promise<Response> =>
  hub.post('/v1/corporate-numbers', { name: `株式会社スタンバイ${i}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, hub.operator);

beforeAll(async () => {
  a = await startKurrentHub(log, { instanceId: 'hub-a', env: ENV });
  await provider.start(a);
  pension = await registerAgency(a, PENSION, 'pension-service', 'http://127.0.0.1:9');
  b = await startKurrentHub(log, { instanceId: 'hub-b', env: ENV });
});

let c: KurrentTestHub | undefined;

afterAll(async () => {
  await provider.stop();
  await a?.close();
  await b?.close();
  await c?.close();
  await log.dispose();
});

describe('a leader and a standby on one KurrentDB log', () => {
  it('the standby says so, refuses commands naming the leader (nothing recorded), and serves reads of what the leader writes', async () => {
    expect((await a.get('/health/ready')).json()).toMatchObject({ role: 'leader', leader: { instanceId: 'hub-a' } });
    expect((await b.get('/health/ready')).json()).toMatchObject({ status: 'ready', role: 'standby', leader: { instanceId: 'hub-a' } });
    const designated = await designate(a, 0);
    expect(designated.statusCode, designated.body).toBe(201);
    const { serial, corporateNumber } = designated.json<{ serial: string; corporateNumber: string }>();
    const before = (await log.texts()).length;

    const refused = expectProblem(await designate(b, 1), 503, 'NOT_LEADER');
    expect(refused['reason']).toBeUndefined();
    expect(refused).toMatchObject({ instanceId: 'hub-b', leader: { instanceId: 'hub-a', url: expect.stringMatching(/^http:\/\//) } });
    expect(refused['detail']).toMatch(/standby.*hub-a/);
    expect((await log.texts()).length).toBe(before);

    // Reads follow the log: the registry projection, proofs of the leader's serial, the raw entries.
    const shown = await eventually('the standby shows the designation', async () => {
      const res = await b.get(`/v1/corporate-numbers/${corporateNumber}`);
      return res.statusCode === 200 ? res.json<{ name: string }>() : undefined;
    });
    expect(shown.name).toBe('株式会社スタンバイ0');
    const proof = await eventually('the standby proves the serial', async () => {
      const res = await b.get(`/v1/audit/proofs/inclusion?serial=${serial}&size=${before}`);
      return res.statusCode === 200 ? res.json<{ proofs: { position: number }[] }>() : undefined;
    });
    expect(proof.proofs.length).toBeGreaterThan(0);
    expect((await b.get(`/v1/audit/entries?from=0&limit=${before}`, b.auditor)).json<{ entries: string[] }>().entries).toEqual(await log.texts());
  });

  it('the leader dies under load: the standby takes over within seconds, nothing acknowledged is lost, no serial twice, the open one voided, the tree verifies, the old leader is fenced', async () => {
    // A query left hanging at the provider: its serial is open in the log when the leader dies.
    const person = await issuePerson(a);
    const code = await acquire(a, pension, person.individualNumber);
    const muroran = await registerAgency(a, 'sapporo-city', 'municipality', provider.endpoint);
    provider.behaviours.set(await acquire(a, muroran, person.individualNumber), { hang: true });
    const hanging = a.post('/v1/queries', { providerAgencyId: 'sapporo-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], code }, bearer(pension.token));
    void hanging.catch(() => undefined);
    const openSerial = await eventually('a serial open at the leader', async () => (await a.leadership.store.openSerials())[0]);

    // Load: eight clients send commands to whichever hub they believe leads; on 503 they turn to the other.
    const acked: { serial: string; by: string }[] = [];
    const refusedStatuses: number[] = [];
    let dead = false;
    let stop = false;
    let sent = 0;
    const client = async (id: number) => {
      let target = a;
      while (!stop) {
        if (dead && target === a) target = b;
        const res = await designate(target, 1000 * id + sent++);
        if (res.statusCode === 201) acked.push({ serial: res.json<{ serial: string }>().serial, by: target.leadership.instanceId });
        else {
          refusedStatuses.push(res.statusCode);
          expect(res.statusCode, res.body).toBe(503);
          target = target === a ? b : a;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const clients = Array.from({ length: 8 }, (_, i) => client(i + 1));
    await eventually('load on the leader', async () => acked.length >= 40);

    // Death: no more lease renewals, no more requests (no clean shutdown: its store stays writable).
    const killedAt = Date.now();
    a.leadership.halt();
    dead = true;
    await eventually('the standby leads', async () => (await b.get('/health/ready')).json<{ role: string }>().role === 'leader', 10_000);
    const takeoverMs = Date.now() - killedAt;
    console.warn(`standby took over ${takeoverMs} ms after the leader died (lease ${b.config.leadership.leaseMs} ms, renewal ${b.config.leadership.renewMs} ms)`);
    expect(takeoverMs).toBeLessThan(10_000);
    const ackedByA = acked.filter((x) => x.by === 'hub-a').length;
    await eventually('load on the new leader', async () => acked.filter((x) => x.by === 'hub-b').length >= 40);
    stop = true;
    await Promise.all(clients);

    // The zombie wakes up and appends: fenced by the log's expected revision, nothing interleaves.
    const length = (await log.texts()).length;
    // Its commands in flight together (one batch, then the ones queued behind it): all fail, none acknowledged.
    const inFlight = await Promise.all(Array.from({ length: 5 }, (_, i) => designate(a, 9_000_000 + i)));
    for (const res of inFlight) expectProblem(res, 503, 'NOT_LEADER');
    await expect(
      a.leadership.store.append({ streamId: 'zombie', expectedRevision: 'any', serial: { allocate: true }, events: [{ type: 'Zombie', data: {}, terminal: 'completed' }], metadata: { actor: 'system:test', correlationId: 'zombie' } }),
    ).rejects.toMatchObject({ code: 'NOT_WRITER' });
    expect(a.leadership.role).toBe('standby');
    // Nothing of the zombie's is in the log; what came after is the new leader's own checkpointing.
    const after = (await log.texts()).slice(length);
    for (const text of after) expect((JSON.parse(text) as Stored).metadata.actor).toBe('system:checkpoint-signer');
    expect((await log.texts()).some((t) => t.includes('スタンバイ900000') || t.includes('"type":"Zombie"'))).toBe(false);

    const events = await parsed();
    const bySerial = new Map<string, Stored[]>();
    for (const e of events) bySerial.set(e.serial, [...(bySerial.get(e.serial) ?? []), e]);
    // Every command acknowledged by either hub is in the log, under its serial.
    expect(ackedByA).toBeGreaterThanOrEqual(40);
    for (const { serial } of acked) expect(bySerial.get(serial)?.map((e) => e.type), serial).toEqual(['CorporateNumberDesignated']);
    expect(new Set(acked.map((x) => x.serial)).size).toBe(acked.length);
    // No serial was allocated twice: each ends in exactly one terminal event, its events are one command's.
    for (const [serial, list] of bySerial) {
      expect(list.filter((e) => e.terminal !== undefined), serial).toHaveLength(1);
      expect(new Set(list.filter((e) => e.type !== 'SerialVoided').map((e) => e.metadata.correlationId)).size, serial).toBe(1);
    }
    // The serial the dead leader left open was voided by the new leader's recovery.
    expect(bySerial.get(openSerial)!.map((e) => [e.type, e.terminal ?? null])).toEqual([
      ['QueryAccepted', null],
      ['ProvisionRequested', null],
      ['SerialVoided', 'voided'],
    ]);
    expect(bySerial.get(openSerial)!.at(-1)!.metadata.actor).toBe('system:recovery');
    expect(await b.leadership.store.openSerials()).toEqual([]);

    // The new leader's checkpoints verify against the raw log with the auditor's library.
    const key = parseVerifierKey((await b.get('/v1/audit/verifier-key')).body.trim());
    const texts = await log.texts();
    const checkpoints = events.filter((e) => e.type === 'CheckpointSigned').map((e) => (JSON.parse(texts[e.position]!) as { data: { note: string; size: number } }).data);
    let previous = 0;
    for (const c of checkpoints) {
      const cp = verifyCheckpoint(c.note, key, key.name);
      expect(cp.size).toBeGreaterThan(previous);
      previous = cp.size;
      expect(toHex(new MemoryTree(texts.slice(0, cp.size).map((t) => leafHash(t))).root()), `checkpoint ${cp.size}`).toBe(toHex(cp.root));
    }
    // One of them is the takeover's, over the log as the new leader found it (the fence).
    const voidedAt = bySerial.get(openSerial)!.at(-1)!.position;
    const fence = events.find((e) => e.type === 'CheckpointSigned' && e.position > voidedAt);
    expect(fence?.metadata.actor).toBe('system:checkpoint-signer');
    // And the auditor's own verification of the raw log stream (leaves, checkpoints, positions, serials) passes.
    const audit = await verifyLog({ source: { kind: 'kurrentdb', url: await log.url(), stream: log.logStream }, verifierKey: (await b.get('/v1/audit/verifier-key')).body.trim(), threads: 2 });
    expect(audit).toMatchObject({ ok: true, findingCount: 0, events: texts.length });
    expect(audit.checkpoints.verified).toBe(checkpoints.length);
    const latest = (await b.get('/v1/audit/checkpoint?format=json')).json<{ size: number; note: string }>();
    expect(verifyCheckpoint(latest.note, key, key.name).size).toBe(latest.size);
    expect((await b.get('/health/ready')).json()).toMatchObject({ role: 'leader', leader: { instanceId: 'hub-b' }, openSerials: 0 });
    expect(refusedStatuses.every((s) => s === 503)).toBe(true);
  });

  it('a leader that stops cleanly releases its lease: a standby takes over at its next look, and serials go on from the log', async () => {
    c = await startKurrentHub(log, { instanceId: 'hub-c', env: ENV });
    expect((await c.get('/health/ready')).json()).toMatchObject({ role: 'standby', leader: { instanceId: 'hub-b' } });
    const last = (await designate(b, 500_000)).json<{ serial: string }>().serial;
    const stoppedAt = Date.now();
    await b.close();
    await eventually('hub-c leads', async () => (await c!.get('/health/ready')).json<{ role: string }>().role === 'leader', 10_000);
    const handoverMs = Date.now() - stoppedAt;
    console.warn(`a clean stop handed over in ${handoverMs} ms`);
    // At its next look (every renewal interval), not after the lease ran out.
    expect(handoverMs).toBeLessThan(c.config.leadership.leaseMs);
    const next = await designate(c, 500_001);
    expect(next.statusCode, next.body).toBe(201);
    expect(BigInt(next.json<{ serial: string }>().serial)).toBeGreaterThan(BigInt(last));
    const events = await parsed();
    const terminals = events.filter((e) => e.terminal !== undefined).map((e) => e.serial);
    expect(new Set(terminals).size).toBe(terminals.length);
    expect(await c.leadership.store.openSerials()).toEqual([]);
  });
});
