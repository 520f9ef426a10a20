import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pushHubEnv, pushStatuses, reportUpdate, seedPushFanout, startPushHub, writePushTable } from '../../../bench/support/push-fanout.js';
import { startPushReceiver, type PushReceiverProcess } from '../../../bench/support/push-receiver.js';
import type { Spawned } from '../../../load-tests/runner/processes.js';

/** Subscribers of the one update: several chunks of issued pushes, many rounds of deliveries. */
const SUBSCRIBERS = 1500;
const CONCURRENCY = 32;

async function until(check: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface LogEvent {
  type: string;
  serial: string;
  streamId: string;
  terminal?: string;
  data: Record<string, unknown>;
}

async function logEvents(url: string, dataDir: string): Promise<LogEvent[]> {
  const auditor = (JSON.parse(readFileSync(join(dataDir, 'keys', 'auditor.token.json'), 'utf8')) as { token: string }).token;
  const events: LogEvent[] = [];
  for (let from = 0; ; ) {
    const page = (await (await fetch(`${url}/v1/events?from=${from}&limit=1000`, { headers: { authorization: `Bearer ${auditor}` } })).json()) as { events: LogEvent[]; nextPosition: number; head: number };
    events.push(...page.events);
    if (page.nextPosition >= page.head || page.events.length === 0) return events;
    from = page.nextPosition;
  }
}

describe('pushes across kill -9 of the hub in the middle of a fan-out', () => {
  const dir = mkdtempSync(join(tmpdir(), 's2-push-kill-'));
  const dataDir = join(dir, 'hub');
  let receiver: PushReceiverProcess | undefined;
  const hubs: { spawned: Spawned }[] = [];

  afterAll(async () => {
    for (const h of hubs) if (h.spawned.child.exitCode === null && h.spawned.child.signalCode === null) h.spawned.child.kill('SIGKILL');
    await receiver?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('killed at its first pushes issued and again while delivering, the hub restarts and delivers every push: none lost, each PushDelivered once, the receiver has every pushId (repeats only of deliveries cut by the kill)', async () => {
    const env = pushHubEnv(dataDir, writePushTable(dir), { HUB_PUSH_CONCURRENCY: String(CONCURRENCY), HUB_PUSH_RETRY_BASE_MS: '100', HUB_PUSH_RETRY_MAX_MS: '400' });
    const start = async () => {
      const hub = await startPushHub(env, dir);
      hubs.push(hub);
      return hub;
    };
    const kill = async (hub: Awaited<ReturnType<typeof start>>) => {
      hub.spawned.child.kill('SIGKILL');
      expect(await hub.spawned.exited).toEqual({ code: null, signal: 'SIGKILL' });
    };

    let hub = await start();
    const hubKey = ((await (await fetch(`${hub.url}/v1/hub/keys`)).json()) as { provisionSigningKey: string }).provisionSigningKey;
    // A receiver that takes a few ms per push, so the kills fall in the middle of the deliveries.
    receiver = await startPushReceiver({ hubKey, delayMs: 5 });
    const world = await seedPushFanout(hub.url, dataDir, SUBSCRIBERS, receiver.endpoint);

    // Kill 1: while the report's request is still issuing pushes (a fifth of them in the log).
    const head = async () => ((await (await fetch(`${hub.url}/health/ready`)).json()) as { head: number }).head;
    const before = await head();
    const report = reportUpdate(hub.url, world).then(
      (r) => r,
      () => undefined,
    );
    // Killed at the first pushes seen in the log: on a quiet machine the whole fan-out takes well under a second.
    await until(async () => (await head()) >= before + 2, 'the first pushes issued', 60_000);
    await kill(hub);
    // Unanswered unless the fan-out outran the kill (then only the deliveries are cut, and nothing is resumed).
    const cutWhileIssuing = (await report) === undefined;
    const afterFirst = await receiver.stats();
    expect(afterFirst.distinct).toBeLessThan(SUBSCRIBERS);

    // Kill 2: after the restart, in the middle of the deliveries.
    hub = await start();
    await until(async () => (await receiver!.stats()).distinct >= afterFirst.distinct + SUBSCRIBERS / 4, 'a quarter more deliveries', 60_000);
    // When the first kill cut the fan-out, this run issued the rest.
    if (cutWhileIssuing) expect(hub.spawned.output()).toMatch(/resumed the fan-out of update [0-9a-f-]{36}: \d+ push\(es\) issued after a restart/);
    await kill(hub);
    const afterSecond = await receiver.stats();
    expect(afterSecond.distinct).toBeLessThan(SUBSCRIBERS);

    hub = await start();
    await until(async () => (await receiver!.stats()).distinct === SUBSCRIBERS && (await pushStatuses(hub.url, world))['delivered'] === SUBSCRIBERS, 'every delivery', 120_000);

    const events = await logEvents(hub.url, dataDir);
    const copy = events.filter((e) => e.type === 'CopyUpdated');
    expect(copy).toHaveLength(1);
    expect(copy[0]!.data['pushes']).toBe(SUBSCRIBERS);
    const issued = events.filter((e) => e.type === 'PushIssued').map((e) => String(e.data['pushId']));
    const delivered = events.filter((e) => e.type === 'PushDelivered').map((e) => String(e.data['pushId']));
    // Every push issued once, delivered once; nothing abandoned; no step of a push left open and voided.
    expect(new Set(issued).size).toBe(SUBSCRIBERS);
    expect(issued).toHaveLength(SUBSCRIBERS);
    expect(delivered).toHaveLength(SUBSCRIBERS);
    expect(new Set(delivered)).toEqual(new Set(issued));
    expect(events.filter((e) => e.type === 'PushAbandoned')).toHaveLength(0);
    const pushSerials = new Set(events.filter((e) => ['CopyUpdated', 'PushIssued', 'PushDelivered'].includes(e.type)).map((e) => e.serial));
    expect(events.filter((e) => e.type === 'SerialVoided' && pushSerials.has(String(e.data['serial'])))).toHaveLength(0);
    expect(((await (await fetch(`${hub.url}/health/ready`)).json()) as { openSerials: number }).openSerials).toBe(0);

    // The receiver: every pushId issued, no other; repeats only of deliveries in flight at a kill.
    const stats = await receiver.stats();
    expect(stats.badSignatures).toBe(0);
    expect(new Set(await receiver.pushIds())).toEqual(new Set(issued));
    expect(stats.duplicates).toBeLessThanOrEqual(2 * CONCURRENCY);
    expect(stats.received - stats.duplicates).toBe(SUBSCRIBERS);
  });
});
