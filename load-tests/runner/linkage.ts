/**
 * The linkage load test (the bars in README, Benchmarks): the full query → provision path over HTTP, the built hub and the
 * built agency node of Muroran City each in its own process, driven with autocannon from this one.
 * (a) a max-throughput phase after a warm-up, (b) a fixed-rate phase at --rate (3,000/s). Every request
 * that is not HTTP 200 with outcome "answered" counts as an error. Loopback only; it stops by itself.
 * Last line: one JSON object with the figures.
 *   npm run build && node --conditions=source --import tsx load-tests/runner/linkage.ts
 *     [--people 2000] [--connections 64] [--warmup 3] [--duration 15] [--rate 3000] [--rate-connections 128]
 *     [--rate-duration 15] [--plaintext] [--grpc] [--write-fixture file.json [--hold seconds]] [--hub-cpu-prof dir] [--node-cpu-prof dir]
 * --hold: after writing the fixture, keep both processes up for that long (for k6) instead of driving the load.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { queryBodies, runPhase, type PhaseResult } from './drive.js';
import { settledReadiness, startLinkageNetwork, type LinkageNetwork } from './network.js';
import { cpuSeconds, type Spawned } from './processes.js';
import { formatTable, summaryLine, type CpuShare } from './report.js';

const { values } = parseArgs({
  options: {
    people: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '3' },
    duration: { type: 'string', default: '15' },
    rate: { type: 'string', default: '3000' },
    'rate-connections': { type: 'string', default: '128' },
    'rate-duration': { type: 'string', default: '15' },
    timeout: { type: 'string', default: '10' },
    plaintext: { type: 'boolean', default: false },
    grpc: { type: 'boolean', default: false },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    'write-fixture': { type: 'string' },
    'hub-cpu-prof': { type: 'string' },
    'node-cpu-prof': { type: 'string' },
    hold: { type: 'string' },
  },
});

function positive(name: string, max: number): number {
  const raw = values[name as keyof typeof values];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

const PEOPLE = positive('people', 100_000);
const CONNECTIONS = positive('connections', 1024);
const WARMUP = positive('warmup', 120);
const DURATION = positive('duration', 600);
const RATE = positive('rate', 100_000);
const RATE_CONNECTIONS = positive('rate-connections', 1024);
const RATE_DURATION = positive('rate-duration', 600);
const TIMEOUT = positive('timeout', 60);
const HOLD = values.hold === undefined ? undefined : positive('hold', 3600);
const REDIS_URL = values['redis-url']!;
if (!/^redis:\/\/127\.0\.0\.1(:\d+)?(\/\d+)?$/.test(REDIS_URL)) throw new Error('--redis-url must be a redis:// URL on 127.0.0.1 (the load test stays on loopback)');

let network: LinkageNetwork | undefined;
let hub: Spawned | undefined;
let node: Spawned | undefined;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** --cpu-prof for the hub (written when it exits); the agency node re-raises SIGTERM after its shutdown hooks, so it gets V8's tick log (--prof, read with `node --prof-process`). */
function profileFlags(dir: string | undefined, name: string, kind: 'cpu-prof' | 'prof'): string[] {
  if (dir === undefined) return [];
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true });
  if (kind === 'prof') return ['--prof', '--no-logfile-per-isolate', `--logfile=${join(abs, `${name}-${process.pid}.v8.log`)}`];
  return ['--cpu-prof', `--cpu-prof-dir=${abs}`, `--cpu-prof-name=${name}-${process.pid}.cpuprofile`];
}

/** CPU each process used during a phase, as a share of one core. */
async function withCpu<T>(seconds: () => Promise<T>): Promise<{ result: T; cpu: { hub: number; node: number; generator: number; wallSeconds: number } }> {
  const hubBefore = cpuSeconds(hub?.child.pid) ?? 0;
  const nodeBefore = cpuSeconds(node?.child.pid) ?? 0;
  const selfBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await seconds();
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const self = process.cpuUsage(selfBefore);
  return {
    result,
    cpu: {
      hub: ((cpuSeconds(hub?.child.pid) ?? 0) - hubBefore) / wall,
      node: ((cpuSeconds(node?.child.pid) ?? 0) - nodeBefore) / wall,
      generator: (self.user + self.system) / 1e6 / wall,
      wallSeconds: wall,
    },
  };
}

function cpuMs(share: number, wallSeconds: number, requests: number): number {
  return requests === 0 ? 0 : Number(((share * wallSeconds * 1000) / requests).toFixed(3));
}

async function main(): Promise<void> {
  const started = Date.now();
  network = await startLinkageNetwork({
    people: PEOPLE,
    redisUrl: REDIS_URL,
    grpc: values.grpc,
    plaintext: values.plaintext,
    hubNodeFlags: profileFlags(values['hub-cpu-prof'], 'hub', 'cpu-prof'),
    nodeNodeFlags: profileFlags(values['node-cpu-prof'], 'agency-node', 'prof'),
    log,
  });
  hub = network.hub;
  node = network.node;
  const { fixture, hubUrl } = network;
  if (values['write-fixture'] !== undefined) {
    writeFileSync(values['write-fixture'], `${JSON.stringify(fixture, null, 2)}\n`, { mode: 0o600 });
    log(`fixture written to ${values['write-fixture']} (valid while this hub runs)`);
  }
  if (HOLD !== undefined) return hold(hubUrl, HOLD);
  const bodies = queryBodies(fixture);
  const loadBefore = loadavg()[0]!;

  log(`warm-up: ${WARMUP} s, ${CONNECTIONS} connections`);
  await runPhase(fixture, bodies, { name: 'warm-up', connections: CONNECTIONS, durationSeconds: WARMUP, timeoutSeconds: TIMEOUT });
  log(`max throughput: ${DURATION} s, ${CONNECTIONS} connections`);
  const max = await withCpu(() => runPhase(fixture, bodies, { name: 'max', connections: CONNECTIONS, durationSeconds: DURATION, timeoutSeconds: TIMEOUT }));
  log(`fixed rate: ${RATE}/s for ${RATE_DURATION} s, ${RATE_CONNECTIONS} connections`);
  const rate = await withCpu(() =>
    runPhase(fixture, bodies, { name: `rate ${RATE}/s`, connections: RATE_CONNECTIONS, durationSeconds: RATE_DURATION, overallRate: RATE, timeoutSeconds: TIMEOUT }),
  );

  // Autocannon stops with requests still in flight; the hub ends their serials once the provider answers.
  const ready = await settledReadiness(hubUrl, 30_000);
  const phases: { phase: PhaseResult; cpu: CpuShare }[] = [
    { phase: max.result, cpu: max.cpu },
    { phase: rate.result, cpu: rate.cpu },
  ];
  process.stdout.write(`${formatTable(phases)}\n`);
  process.stdout.write(`hub /health/ready (HTTP ${ready.status}): ${JSON.stringify(ready.body)}\n`);
  if (ready.body['openSerials'] !== 0) process.stdout.write(`WARNING: ${String(ready.body['openSerials'])} serials are still open after the load\n`);
  // Other work on the machine competes for the same 2 cores: say how busy it was.
  process.stdout.write(`load average (1 min) before the load ${loadBefore.toFixed(2)}, after ${loadavg()[0]!.toFixed(2)}\n`);
  process.stdout.write(`total time ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${JSON.stringify(summaryLine(max.result, rate.result, RATE, { people: PEOPLE, encrypted: !values.plaintext, provider_transport: values.grpc ? 'grpc' : 'http', hub_cpu_ms_per_query: cpuMs(rate.cpu.hub, rate.cpu.wallSeconds, rate.result.requests), node_cpu_ms_per_query: cpuMs(rate.cpu.node, rate.cpu.wallSeconds, rate.result.requests), load_avg_1m: Number(loadavg()[0]!.toFixed(2)) }))}\n`);
}

/** Keeps the hub and the node up for another load generator (k6 with the fixture file) for `seconds`, or until SIGINT. */
async function hold(hubUrl: string, seconds: number): Promise<void> {
  log(`holding the hub (${hubUrl}) and the agency node for ${seconds} s; Ctrl-C ends it`);
  await new Promise<void>((done) => {
    const timer = setTimeout(done, seconds * 1000);
    process.once('SIGINT', () => {
      clearTimeout(timer);
      done();
    });
  });
  const ready = await settledReadiness(hubUrl, 30_000);
  process.stdout.write(`hub /health/ready (HTTP ${ready.status}): ${JSON.stringify(ready.body)}\n`);
}

async function cleanUp(): Promise<void> {
  await network?.close();
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  log(`linkage load test failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  if (network) log(`--- hub output (tail) ---\n${network.hub.output().slice(-4000)}\n--- agency node output (tail) ---\n${network.node.output().slice(-4000)}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);
