import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTree, leafHash, parseVerifierKey, toHex, verifyCheckpoint } from '#audit-log';
import { readLogTexts } from '#ledger/kurrentdb-event-store';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { announceKurrentServer, startKurrentTestServer, type KurrentTestServer } from '../../../libs/ledger/test/fixtures/kurrentdb-test-server.js';
import { FakeProvider, PENSION, acquire, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { runHub } from './support/spawned-hub.js';
import type { TestHub } from './support/test-hub.js';

/**
 * Two hub PROCESSES (the built hub, `npm run build` first) on one KurrentDB server: the wire-level stand-in
 * in this test process (libs/ledger/test/fixtures/kurrentdb-wire-server.ts), or the real server at
 * KURRENTDB_URL. They share the keys dir. Under a load of commands the leader is killed with SIGKILL; the
 * standby must lead within the lease, every acknowledged command must be in the log, no serial twice, the
 * serial the dead leader left open voided, and the checkpoints must verify against the raw log.
 */
announceKurrentServer('The two-process standby test');

const RENEW_MS = 500;
const LEASE_MS = 2000;

interface Run {
  readonly instanceId: string;
  readonly url: string;
  readonly child: ReturnType<typeof runHub>['child'];
  output(): string;
  readonly exited: ReturnType<typeof runHub>['exited'];
}

interface Stored {
  readonly position: number;
  readonly serial: string;
  readonly type: string;
  readonly terminal?: string;
  readonly metadata: { actor: string; correlationId: string };
}

let server: KurrentTestServer;
const logStream = `linkage-ledger-e2e-${randomUUID()}`;
const root = mkdtempSync(join(tmpdir(), 'hub-standby-processes-'));
const sharedKeys = join(root, 'keys');
const runs: Run[] = [];
const provider = new FakeProvider();

async function startHubProcess(instanceId: string): Promise<Run> {
  const dataDir = join(root, instanceId);
  mkdirSync(dataDir, { recursive: true });
  symlinkSync(sharedKeys, join(dataDir, 'keys'));
  const { child, output, exited } = runHub(
    {
      HUB_DATA_DIR: dataDir,
      HUB_PORT: '0',
      HUB_HOST: '127.0.0.1',
      HUB_LOG_LEVEL: 'log',
      HUB_REDIS_URL: 'off',
      HUB_EVENT_STORE: server.url,
      HUB_KURRENTDB_LOG_STREAM: logStream,
      HUB_INSTANCE_ID: instanceId,
      HUB_LEADERSHIP_RENEW_MS: String(RENEW_MS),
      HUB_LEADERSHIP_LEASE_MS: String(LEASE_MS),
      HUB_CHECKPOINT_EVERY_EVENTS: '25',
      HUB_PROVIDER_TIMEOUT_MS: '60000',
    },
    dataDir,
  );
  let ended = false;
  void exited.then(() => (ended = true));
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline && !ended) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output());
    if (match) {
      const ready = await fetch(`${match[1]}/health/ready`).catch(() => undefined);
      if (ready?.status === 200) {
        const run = { instanceId, url: match[1]!, child, output, exited };
        runs.push(run);
        return run;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`hub ${instanceId} did not become ready:\n${output()}`);
}

/** What a response of the hub process looks like to the linkage fixture (a light-my-request Response's shape). */
interface Answer {
  readonly statusCode: number;
  readonly body: string;
  json<T>(): T;
}

async function call(run: Run, method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${run.url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { statusCode: res.status, body: text, json: <T>() => JSON.parse(text) as T };
}

/** The hub process seen through the TestHub members the linkage fixture uses (post, get, operator, config.keysDir). */
function remote(run: Run): TestHub {
  const operator = { authorization: `Bearer ${(JSON.parse(readFileSync(join(sharedKeys, 'operator.token.json'), 'utf8')) as { token: string }).token}` };
  return {
    config: { keysDir: sharedKeys },
    operator,
    post: (url: string, body: unknown, headers: Record<string, string> = {}) => call(run, 'POST', url, body, headers),
    get: (url: string, headers: Record<string, string> = {}) => call(run, 'GET', url, undefined, headers),
  } as unknown as TestHub;
}

const role = async (run: Run): Promise<string | undefined> => {
  const res = await call(run, 'GET', '/health/ready').catch(() => undefined);
  return res?.statusCode === 200 ? res.json<{ role: string }>().role : undefined;
};

async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  server = await startKurrentTestServer();
  mkdirSync(sharedKeys, { recursive: true, mode: 0o700 });
});

afterAll(async () => {
  for (const run of runs) run.child.kill('SIGKILL');
  await Promise.all(runs.map((r) => r.exited));
  await provider.stop();
  await server?.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('two hub processes on one KurrentDB server', () => {
  it('the leader is killed (SIGKILL) under load: the standby leads within the lease, nothing acknowledged is lost, no serial twice, the open one voided, checkpoints verify', async () => {
    // The first hub makes the shared keys; the second starts once they exist and stands by.
    const a = await startHubProcess('hub-a');
    expect(await role(a)).toBe('leader');
    const b = await startHubProcess('hub-b');
    expect(await role(b)).toBe('standby');
    const hubA = remote(a);

    // A query left hanging at the provider: its serial is open in the log when the leader dies.
    await provider.start(hubA);
    const pension: Agency = await registerAgency(hubA, PENSION, 'pension-service', 'http://127.0.0.1:9');
    const person = await issuePerson(hubA);
    const code = await acquire(hubA, pension, person.individualNumber);
    const sapporo = await registerAgency(hubA, 'sapporo-city', 'municipality', provider.endpoint);
    provider.behaviours.set(await acquire(hubA, sapporo, person.individualNumber), { hang: true });
    void hubA.post('/v1/queries', { providerAgencyId: 'sapporo-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], code }, bearer(pension.token)).catch(() => undefined);
    await eventually('the provider is asked (the query serial is open)', async () => provider.calls.length > 0);

    // Load: eight clients send designations to the hub they believe leads; on 503 or a dead socket they turn to the other.
    const acked: { serial: string; by: string }[] = [];
    const refused: number[] = [];
    let stop = false;
    let sent = 0;
    const designate = (run: Run, i: number) => call(run, 'POST', '/v1/corporate-numbers', { name: `株式会社プロセス${i}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, hubA.operator);
    const client = async (id: number) => {
      let target = a;
      while (!stop) {
        const res = await designate(target, 1000 * id + sent++).catch(() => undefined);
        if (res?.statusCode === 201) acked.push({ serial: res.json<{ serial: string }>().serial, by: target.instanceId });
        else {
          if (res !== undefined) {
            refused.push(res.statusCode);
            expect(res.statusCode, res.body).toBe(503);
          }
          target = target === a ? b : a;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const clients = Array.from({ length: 8 }, (_, i) => client(i + 1));
    await eventually('load on the leader', async () => acked.length >= 60);

    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    expect((await a.exited).signal).toBe('SIGKILL');
    await eventually('the standby leads', async () => (await role(b)) === 'leader', 20_000);
    const takeoverMs = Date.now() - killedAt;
    console.warn(`standby process took over ${takeoverMs} ms after the leader was killed (lease ${LEASE_MS} ms, renewal ${RENEW_MS} ms)`);
    // Within the lease (counted on the standby's clock from the last renewal it saw), its takeover and one look.
    expect(takeoverMs).toBeLessThan(LEASE_MS + 3 * RENEW_MS + 3000);
    const ackedByA = acked.filter((x) => x.by === 'hub-a').length;
    await eventually('load on the new leader', async () => acked.filter((x) => x.by === 'hub-b').length >= 40);
    stop = true;
    await Promise.all(clients);
    expect(refused.every((s) => s === 503)).toBe(true);

    const texts = await readLogTexts(server.connect(), logStream, 0, 1_000_000_000);
    const events = texts.map((t) => JSON.parse(t) as Stored);
    events.forEach((e, i) => expect(e.position).toBe(i));
    const bySerial = new Map<string, Stored[]>();
    for (const e of events) bySerial.set(e.serial, [...(bySerial.get(e.serial) ?? []), e]);
    // Every command acknowledged by either process is in the log, under its own serial.
    expect(ackedByA).toBeGreaterThanOrEqual(60);
    for (const { serial } of acked) expect(bySerial.get(serial)?.map((e) => e.type), serial).toEqual(['CorporateNumberDesignated']);
    expect(new Set(acked.map((x) => x.serial)).size).toBe(acked.length);
    // No serial twice: each ends in exactly one terminal event, and its events are one command's.
    for (const [serial, list] of bySerial) {
      expect(list.filter((e) => e.terminal !== undefined), serial).toHaveLength(1);
      expect(new Set(list.filter((e) => e.type !== 'SerialVoided').map((e) => e.metadata.correlationId)).size, serial).toBe(1);
    }
    // The query the dead leader left open was voided by the new leader's recovery.
    const query = [...bySerial.values()].find((list) => list[0]!.type === 'QueryAccepted');
    expect(query?.map((e) => [e.type, e.terminal ?? null])).toEqual([
      ['QueryAccepted', null],
      ['ProvisionRequested', null],
      ['SerialVoided', 'voided'],
    ]);
    expect(query!.at(-1)!.metadata.actor).toBe('system:recovery');
    expect((await call(b, 'GET', '/health/ready')).json()).toMatchObject({ role: 'leader', leader: { instanceId: 'hub-b' }, openSerials: 0 });

    // The checkpoints verify against the raw log: each one's root over its prefix, and the auditor's own verification.
    const verifierKey = (await call(b, 'GET', '/v1/audit/verifier-key')).body.trim();
    const key = parseVerifierKey(verifierKey);
    const checkpoints = events.filter((e) => e.type === 'CheckpointSigned').map((e) => (JSON.parse(texts[e.position]!) as { data: { note: string } }).data);
    expect(checkpoints.length).toBeGreaterThan(1);
    let previous = 0;
    for (const c of checkpoints) {
      const cp = verifyCheckpoint(c.note, key, key.name);
      expect(cp.size).toBeGreaterThan(previous);
      previous = cp.size;
      expect(toHex(new MemoryTree(texts.slice(0, cp.size).map((t) => leafHash(t))).root()), `checkpoint ${cp.size}`).toBe(toHex(cp.root));
    }
    const audit = await verifyLog({ source: { kind: 'kurrentdb', url: server.url, stream: logStream }, verifierKey, threads: 2 });
    expect(audit).toMatchObject({ ok: true, findingCount: 0, events: texts.length });
    expect(audit.checkpoints.verified).toBe(checkpoints.length);
    expect(b.output()).toMatch(/has not renewed the lease for 2000 ms: taking over/);
  });
});
