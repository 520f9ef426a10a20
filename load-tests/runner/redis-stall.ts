/**
 * A stalled Redis under load (issue bar: queries keep their latency on the fallback, p99 within 2× of
 * normal, and the hub returns to Redis when it answers again). The built hub reaches Redis through a TCP
 * proxy of this process that can stall (connections stay open, no answer comes back), the way a hung or
 * paused Redis behaves, unlike one that refuses connections. Three phases at the same fixed rate:
 *   normal    Redis answers (after a 10 s warm-up)
 *   stalled   the proxy holds every answer from the phase's first request on
 *   recovered the proxy delivers again; the phase starts once readiness says `redis`
 * The bar compares p99 while Redis stalls with the better p99 of the two phases on Redis.
 * Every request that is not HTTP 200 "answered" is an error. Loopback only; it stops by itself.
 * Last line: one JSON object with the figures.
 *   npm run build && npm run load:redis-stall -- [--people 1000] [--rate 200] [--duration 15] [--connections 32] [--slow-call-ms 100]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { RedisProxy } from '../../libs/mapper/test/redis-proxy.js';
import { queryBodies, runPhase, type PhaseResult } from './drive.js';
import { settledReadiness, startLinkageNetwork, type LinkageNetwork } from './network.js';
import { cpuSeconds } from './processes.js';
import { formatTable, type CpuShare } from './report.js';

const { values } = parseArgs({
  options: {
    people: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '200' },
    duration: { type: 'string', default: '15' },
    connections: { type: 'string', default: '32' },
    'slow-call-ms': { type: 'string', default: '100' },
    timeout: { type: 'string', default: '10' },
  },
});

function positive(name: keyof typeof values, max: number): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(values[name])}`);
  return n;
}

const PEOPLE = positive('people', 100_000);
const RATE = positive('rate', 20_000);
const DURATION = positive('duration', 600);
const CONNECTIONS = positive('connections', 1024);
const SLOW_CALL_MS = positive('slow-call-ms', 10_000);
const TIMEOUT = positive('timeout', 60);
/** The bar: p99 on the fallback at most this many times p99 on Redis. */
const P99_RATIO_BAR = 2;

const log = (line: string): void => void process.stderr.write(`${line}\n`);

interface MapperState {
  readonly mode: string;
  readonly breaker?: string;
}

async function mapperState(hubUrl: string): Promise<MapperState> {
  const r = await fetch(`${hubUrl}/health/ready`);
  return ((await r.json()) as { codeMapper: MapperState }).codeMapper;
}

async function waitForMode(hubUrl: string, mode: string, timeoutMs: number): Promise<{ state: MapperState; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const state = await mapperState(hubUrl);
    if (state.mode === mode || Date.now() - started > timeoutMs) return { state, waitedMs: Date.now() - started };
    await new Promise((done) => setTimeout(done, 100));
  }
}

async function phase(network: LinkageNetwork, bodies: readonly string[], name: string): Promise<{ phase: PhaseResult; cpu: CpuShare }> {
  const pid = network.hub.child.pid;
  const nodePid = network.node.child.pid;
  const before = { hub: cpuSeconds(pid) ?? 0, node: cpuSeconds(nodePid) ?? 0, self: process.cpuUsage() };
  const started = process.hrtime.bigint();
  const result = await runPhase(network.fixture, bodies, { name, connections: CONNECTIONS, durationSeconds: DURATION, overallRate: RATE, timeoutSeconds: TIMEOUT });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const self = process.cpuUsage(before.self);
  return {
    phase: result,
    cpu: { hub: ((cpuSeconds(pid) ?? 0) - before.hub) / wall, node: ((cpuSeconds(nodePid) ?? 0) - before.node) / wall, generator: (self.user + self.system) / 1e6 / wall, wallSeconds: wall },
  };
}

async function main(proxy: RedisProxy): Promise<boolean> {
  await proxy.start();
  log(`Redis proxy on 127.0.0.1:${proxy.port} (in front of 127.0.0.1:6379)`);
  const network = await startLinkageNetwork({
    people: PEOPLE,
    redisUrl: `redis://127.0.0.1:${proxy.port}`,
    cleanupRedisUrl: 'redis://127.0.0.1:6379',
    hubEnv: { HUB_REDIS_SLOW_MS: String(SLOW_CALL_MS) },
    log,
  });
  try {
    const bodies = queryBodies(network.fixture);
    const atStart = await waitForMode(network.hubUrl, 'redis', 10_000);
    if (atStart.state.mode !== 'redis') throw new Error(`the hub does not use Redis before the load: ${JSON.stringify(atStart.state)}`);
    log(`warm-up and normal phase: ${RATE}/s for ${DURATION} s on Redis`);
    await runPhase(network.fixture, bodies, { name: 'warm-up', connections: CONNECTIONS, durationSeconds: 10, overallRate: RATE, timeoutSeconds: TIMEOUT });
    const normal = await phase(network, bodies, 'normal (Redis)');
    const beforeStall = await mapperState(network.hubUrl);

    log(`stalled phase: Redis holds every answer from now on`);
    proxy.stall();
    const stalled = await phase(network, bodies, 'stalled (store)');
    const duringStall = await mapperState(network.hubUrl);

    log('Redis answers again: waiting for the hub to return to it');
    proxy.resume();
    const back = await waitForMode(network.hubUrl, 'redis', 15_000);
    const recovered = await phase(network, bodies, 'recovered (Redis)');
    const afterRecovery = await mapperState(network.hubUrl);
    const ready = await settledReadiness(network.hubUrl, 30_000);

    const rows = [normal, stalled, recovered];
    process.stdout.write(`${formatTable(rows)}\n`);
    // Against the better of the two phases on Redis, one before and one after the stall: the stricter
    // comparison, and one that a warming-up or briefly busy machine in one of them does not flatter.
    const onRedis = Math.min(normal.phase.latencyMs.p99, recovered.phase.latencyMs.p99);
    const ratio = stalled.phase.latencyMs.p99 / Math.max(1, onRedis);
    const errors = rows.reduce((n, r) => n + r.phase.errors, 0);
    const bars = {
      p99_within_2x: ratio <= P99_RATIO_BAR,
      no_errors: errors === 0,
      breaker_opened: duringStall.mode === 'degraded',
      back_to_redis: back.state.mode === 'redis' && afterRecovery.mode === 'redis',
      no_open_serials: ready.body['openSerials'] === 0,
    };
    const tick = (ok: boolean): string => (ok ? '✓' : '✗');
    process.stdout.write(
      [
        `mapper before the stall: ${JSON.stringify(beforeStall)}; during: ${JSON.stringify(duringStall)}; after: ${JSON.stringify(afterRecovery)} (back on Redis ${back.waitedMs} ms after it answered)`,
        `${tick(bars.p99_within_2x)} p99 while Redis stalls ${stalled.phase.latencyMs.p99} ms = ${ratio.toFixed(2)} × p99 on Redis ${onRedis} ms, the better of before (${normal.phase.latencyMs.p99} ms) and after (${recovered.phase.latencyMs.p99} ms) (bar ≤ ${P99_RATIO_BAR}×)`,
        `${tick(bars.no_errors)} errors: ${errors}`,
        `${tick(bars.breaker_opened)} the breaker opened while Redis stalled`,
        `${tick(bars.back_to_redis)} the hub returned to Redis when it answered again`,
        `${tick(bars.no_open_serials)} no serial left open`,
        `load average (1 min) ${loadavg()[0]!.toFixed(2)}`,
      ].join('\n') + '\n',
    );
    process.stdout.write(
      `${JSON.stringify({
        bench: 'redis-stall',
        people: PEOPLE,
        rate: RATE,
        duration_s: DURATION,
        slow_call_ms: SLOW_CALL_MS,
        p99_ms_normal: normal.phase.latencyMs.p99,
        p99_ms_stalled: stalled.phase.latencyMs.p99,
        p99_ms_recovered: recovered.phase.latencyMs.p99,
        max_ms_stalled: stalled.phase.latencyMs.max,
        p99_ratio: Number(ratio.toFixed(3)),
        errors,
        back_to_redis_ms: back.waitedMs,
        bars,
        load_avg_1m: Number(loadavg()[0]!.toFixed(2)),
      })}\n`,
    );
    return Object.values(bars).every(Boolean);
  } finally {
    proxy.resume();
    await network.close();
  }
}

const proxy = new RedisProxy();
let passed = false;
try {
  passed = await main(proxy);
} catch (error) {
  log(`Redis stall load test failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await proxy.stop().catch(() => {});
}
process.exit(passed ? 0 : 1);
