import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AUTHORIZATION_TABLE_STREAM, SELF_DISCLOSURE_TABLE_STREAM } from '#linkage';
import { DEFAULT_RELAY_TOPIC } from '#relay';
import { startMockBroker, topicSize } from '../../../libs/relay/test/mock-broker.js';
import { Refusals } from '../src/refusals/refusals.service.js';
import { EventRelay } from '../src/relay/event-relay.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

// What only the leader of two hubs on one KurrentDB log does: publishing the tables, relaying to Kafka,
// recording the refusals of callers it could not identify. Against the stand-in, or the server at KURRENTDB_URL.
announceServer();

const ROOT = join(import.meta.dirname, '../../..');
const TABLES = [
  { variable: 'HUB_AUTHORIZATION_TABLE_FILE', stream: AUTHORIZATION_TABLE_STREAM, file: join(ROOT, 'schemas/authorization/authorization-table.v1.json'), actor: 'system:authorization-table' },
  { variable: 'HUB_SELF_DISCLOSURE_TABLE_FILE', stream: SELF_DISCLOSURE_TABLE_STREAM, file: join(ROOT, 'schemas/authorization/self-disclosure-table.v1.json'), actor: 'system:self-disclosure-table' },
];

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function twoHubsOn(log: SharedLog): { start: (instanceId: string, env: Record<string, string>) => Promise<KurrentTestHub> } {
  cleanups.push(() => log.dispose());
  return {
    start: async (instanceId, env) => {
      const hub = await startKurrentHub(log, { instanceId, env });
      cleanups.push(() => hub.close());
      return hub;
    },
  };
}

interface Stored {
  readonly type: string;
  readonly streamId: string;
  readonly data: { version?: number };
  readonly metadata: { actor: string };
}
const stored = async (log: SharedLog): Promise<Stored[]> => (await log.texts()).map((t) => JSON.parse(t) as Stored);
const versionsIn = async (log: SharedLog, stream: string): Promise<number[]> => (await stored(log)).filter((e) => e.streamId === stream).map((e) => e.data.version ?? -1);

describe('the tables are published by the leader only', () => {
  it('a standby started with newer table files starts, serves the tables in force from the log, and publishes its own at takeover', async () => {
    const log = new SharedLog();
    const hubs = twoHubsOn(log);
    const dir = mkdtempSync(join(tmpdir(), 'standby-tables-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const v2 = (file: string) => {
      const path = join(dir, `v2-${file.split('/').at(-1)}`);
      writeFileSync(path, JSON.stringify({ ...(JSON.parse(readFileSync(file, 'utf8')) as object), version: 2, effectiveFrom: '2030-01-01T00:00:00+09:00' }));
      return path;
    };
    const a = await hubs.start('hub-a', Object.fromEntries(TABLES.map((t) => [t.variable, t.file])));
    for (const t of TABLES) expect(await versionsIn(log, t.stream)).toEqual([1]);

    const b = await hubs.start('hub-b', Object.fromEntries(TABLES.map((t) => [t.variable, v2(t.file)])));
    expect(b.leadership.role).toBe('standby');
    expect((await b.get('/health/ready')).json()).toMatchObject({ status: 'ready', role: 'standby' });
    for (const t of TABLES) {
      expect(await versionsIn(log, t.stream)).toEqual([1]);
      // The table in force on the standby is the log's.
      expect((await b.ledger.readStream(t.stream)).map((e) => (e.data as { version: number }).version)).toEqual([1]);
    }

    // The leader stops cleanly; the standby takes over and publishes its newer tables before it takes a command.
    await a.close();
    await eventually('hub-b leads', async () => b.leadership.role === 'leader');
    for (const t of TABLES) {
      expect(await versionsIn(log, t.stream)).toEqual([1, 2]);
      expect((await stored(log)).filter((e) => e.streamId === t.stream).at(-1)?.metadata.actor).toBe(t.actor);
    }
  });

  it('a standby whose file changes a published version is refused at start, as a leader is', async () => {
    const log = new SharedLog();
    const hubs = twoHubsOn(log);
    const dir = mkdtempSync(join(tmpdir(), 'standby-tables-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const table = TABLES[0]!;
    await hubs.start('hub-a', { [table.variable]: table.file });
    const changed = join(dir, 'changed.json');
    writeFileSync(changed, JSON.stringify({ ...(JSON.parse(readFileSync(table.file, 'utf8')) as object), effectiveFrom: '2030-01-01T00:00:00+09:00' }));
    await expect(hubs.start('hub-b', { [table.variable]: changed })).rejects.toThrow(/authorization table version 1 with content other than the published version 1/);
  });
});

describe('the Kafka relay runs on the leader only', () => {
  let registry = 530_002_000_000;
  const designate = async (hub: KurrentTestHub, count: number) => {
    for (let i = 0; i < count; i++) {
      const body = { registryNumber: String(++registry), name: `株式会社リレー${registry}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' };
      const res = await hub.post('/v1/corporate-numbers', body, hub.operator);
      expect(res.statusCode, res.body).toBe(201);
    }
  };

  it('the standby relays nothing; at takeover it resumes where the old leader was acknowledged: every event once in the topic', async () => {
    const mock = await startMockBroker([`${DEFAULT_RELAY_TOPIC}:3`]);
    cleanups.push(() => mock.stop());
    const log = new SharedLog();
    const hubs = twoHubsOn(log);
    const env = { HUB_KAFKA_BROKERS: mock.brokers.join(',') };
    const a = await hubs.start('hub-a', env);
    const b = await hubs.start('hub-b', env);
    const relayA = a.app.get(EventRelay);
    const relayB = b.app.get(EventRelay);
    expect(relayA.running).toBe(true);
    expect(relayB.running).toBe(false);

    await designate(a, 4);
    const head1 = await a.head();
    await eventually('the leader relayed its log', async () => (await relayA.checkpoint()) === head1 - 1, 20_000);
    // Give a relay on the standby (there must be none) time to send its copies.
    await new Promise((r) => setTimeout(r, 300));
    expect(await topicSize(mock.brokers, DEFAULT_RELAY_TOPIC)).toBe(head1);
    expect(relayB.running).toBe(false);
    expect(await relayB.checkpoint()).toBeUndefined();

    // A clean stop: the leader's relay stops after its last acknowledged batch; hub-b takes over and relays the rest.
    await a.close();
    await eventually('hub-b leads', async () => b.leadership.role === 'leader');
    expect(relayB.running).toBe(true);
    await designate(b, 3);
    const head2 = await b.head();
    await eventually('the new leader relayed the rest', async () => (await relayB.checkpoint()) === head2 - 1, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(await topicSize(mock.brokers, DEFAULT_RELAY_TOPIC)).toBe(head2);
  });
});

describe('refusals of unidentified callers on a standby', () => {
  it('are counted and held (bounded, no error per interval) and recorded by the standby when it leads', async () => {
    const log = new SharedLog();
    const hubs = twoHubsOn(log);
    const env = { HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000', HUB_UNIDENTIFIED_REFUSALS_MAX_SOURCES: '2' };
    const a = await hubs.start('hub-a', env);
    const b = await hubs.start('hub-b', env);
    const refusals = b.app.get(Refusals);
    const errors = vi.spyOn(Logger.prototype, 'error');
    cleanups.push(() => errors.mockRestore());
    const refuse = async (source: string, times: number) => {
      for (let i = 0; i < times; i++) {
        const res = await b.inject({ method: 'POST', url: '/v1/queries', headers: { 'content-type': 'application/json' }, payload: '{}', remoteAddress: source });
        expectProblem(res, 401, 'UNAUTHENTICATED');
      }
    };
    const recorded = async () => (await stored(log)).filter((e) => e.type === 'UnauthenticatedRequestsRecorded');

    // Two intervals on the standby: nothing appended, nothing logged as an error, the counts held.
    await refuse('198.51.100.1', 3);
    await refusals.flush();
    await refuse('198.51.100.2', 2);
    await refuse('198.51.100.3', 1);
    await refuse('198.51.100.4', 1);
    await refusals.flush();
    expect(await recorded()).toEqual([]);
    expect(errors.mock.calls.filter((c) => String(c[0]).includes('refusals'))).toEqual([]);
    expect(refusals.heldUnidentified).toBe(7);

    // A caller it can identify (the operator, with a malformed query): answered, not recorded, not logged as an error.
    expectProblem(await b.post('/v1/queries', { providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], code: 'x' }, b.operator), 400, 'VALIDATION_FAILED');
    expect(refusals.unrecordedIdentified).toBe(1);
    expect(errors.mock.calls.filter((c) => String(c[0]).includes('could not be recorded'))).toEqual([]);

    // The leader stops; the standby leads and records what it held: two sources one by one, the other two summed.
    await a.close();
    await eventually('hub-b leads', async () => b.leadership.role === 'leader');
    await eventually('the held counts taken up', async () => refusals.heldUnidentified === 0);
    // Queued behind the flush that records them: once it resolves, they are in the log.
    await refusals.flush();
    const events = await recorded();
    const data = events.map((e) => e.data as unknown as { count: number; sources: number; source?: string; intervalStart: string; intervalEnd: string });
    expect(data.map((d) => [d.count, d.sources])).toEqual([
      [3, 1],
      [2, 1],
      [2, 2],
    ]);
    expect(new Set(data.map((d) => d.intervalStart)).size).toBe(1);
    expect(errors.mock.calls.filter((c) => String(c[0]).includes('refusals'))).toEqual([]);
  });
});
