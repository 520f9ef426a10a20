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
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { queryBodies, runPhase, type PhaseResult } from './drive.js';
import { AGENCY_NODE_MAIN, HUB_MAIN, cpuSeconds, freePort, requireBuilt, runToEnd, spawnBuilt, stop, waitReady, type Spawned } from './processes.js';
import { formatTable, summaryLine, type CpuShare } from './report.js';
import { ITEMS, MURORAN_CITY, PROCEDURE, copiesFor, operatorToken, preparePeople, registerAgencies, type LinkageFixture } from './setup.js';

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
const RUN = `ll-load-${process.pid}-${randomBytes(3).toString('hex')}`;

const work = mkdtempSync(join(tmpdir(), 'linkage-load-'));
const hubDir = join(work, 'hub');
const nodeDir = join(work, 'muroran');
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

async function cleanRedis(): Promise<number> {
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => {});
  await client.connect();
  let removed = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${RUN}*`, COUNT: 1000 })) {
      if (keys.length > 0) removed += await client.unlink(keys);
    }
  } finally {
    await client.close();
  }
  return removed;
}

async function main(): Promise<void> {
  requireBuilt();
  const nodePort = await freePort();
  const nodeUrl = `http://127.0.0.1:${nodePort}`;
  // --grpc: the hub calls the node's provision endpoint over gRPC (the node's staff endpoints stay HTTP).
  const grpcPort = values.grpc ? await freePort() : undefined;
  const providerEndpoint = grpcPort === undefined ? nodeUrl : `grpc://127.0.0.1:${grpcPort}`;
  const started = Date.now();

  // The hub as `npm start` runs it, on a free port, with Redis under a prefix of this run.
  hub = spawnBuilt(
    'hub',
    HUB_MAIN,
    [],
    { HUB_DATA_DIR: hubDir, HUB_PORT: '0', HUB_HOST: '127.0.0.1', HUB_LOG_LEVEL: 'log', HUB_REDIS_URL: REDIS_URL, HUB_REDIS_PREFIX: RUN, HUB_CHECKPOINT_EVERY_MS: '10000' },
    work,
    ['--max-semi-space-size=64', ...profileFlags(values['hub-cpu-prof'], 'hub', 'cpu-prof')],
  );
  const hubUrl = await waitReady(hub);
  log(`hub ready at ${hubUrl} (data ${hubDir}, Redis prefix ${RUN})`);

  const nodeEnv = {
    AGENCY_ID: MURORAN_CITY,
    AGENCY_DATA_DIR: nodeDir,
    AGENCY_HUB_URL: hubUrl,
    AGENCY_HOST: '127.0.0.1',
    AGENCY_PORT: String(nodePort),
    AGENCY_LOG_LEVEL: 'log',
    ...(grpcPort === undefined ? {} : { AGENCY_GRPC_PORT: String(grpcPort) }),
  };
  const { answerPublicKey: muroranKey } = (await runToEnd('agency-node keys', AGENCY_NODE_MAIN, ['keys'], nodeEnv, work)) as { answerPublicKey: string };
  const operator = operatorToken(hubDir);
  const registered = await registerAgencies(hubUrl, operator, providerEndpoint, muroranKey);
  const copiesFile = join(work, 'muroran.copies.json');
  writeFileSync(copiesFile, JSON.stringify(copiesFor(PEOPLE)));
  await runToEnd('agency-node load-copies', AGENCY_NODE_MAIN, ['load-copies', copiesFile], nodeEnv, work);
  const tokenFile = join(work, 'muroran.token');
  writeFileSync(tokenFile, registered.muroranToken, { mode: 0o600 });
  node = spawnBuilt('agency node', AGENCY_NODE_MAIN, ['serve'], { ...nodeEnv, AGENCY_TOKEN_FILE: tokenFile }, work, profileFlags(values['node-cpu-prof'], 'agency-node', 'prof'));
  await waitReady(node);
  log(`agency node (${MURORAN_CITY}) ready at ${nodeUrl}${grpcPort === undefined ? '' : `; the hub calls it at ${providerEndpoint}`}`);

  const setupStarted = Date.now();
  const codes = await preparePeople({
    hubUrl,
    nodeUrl,
    operatorToken: operator,
    pensionToken: registered.pensionToken,
    people: PEOPLE,
    concurrency: 16,
    onProgress: (n) => (n % 500 === 0 || n === PEOPLE ? log(`  prepared ${n}/${PEOPLE} people`) : undefined),
  });
  log(`setup: ${PEOPLE} people issued with both agencies' codes in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`);

  const fixture: LinkageFixture = {
    hubUrl,
    requesterToken: registered.pensionToken,
    providerAgencyId: MURORAN_CITY,
    procedureCode: PROCEDURE,
    itemCodes: ITEMS,
    ...(values.plaintext ? {} : { answerPublicKey: registered.pensionKeys.publicKey }),
    codes,
  };
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
  process.stdout.write(`${JSON.stringify(summaryLine(max.result, rate.result, RATE, { people: PEOPLE, encrypted: !values.plaintext, provider_transport: grpcPort === undefined ? 'http' : 'grpc', hub_cpu_ms_per_query: cpuMs(rate.cpu.hub, rate.cpu.wallSeconds, rate.result.requests), node_cpu_ms_per_query: cpuMs(rate.cpu.node, rate.cpu.wallSeconds, rate.result.requests), load_avg_1m: Number(loadavg()[0]!.toFixed(2)) }))}\n`);
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

/** /health/ready once no serial is open (or after `timeoutMs`, as it is then). */
async function settledReadiness(hubUrl: string, timeoutMs: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(`${hubUrl}/health/ready`);
    const ready = { status: r.status, body: (await r.json()) as Record<string, unknown> };
    if (ready.body['openSerials'] === 0 || Date.now() > deadline) return ready;
    await new Promise((done) => setTimeout(done, 250));
  }
}

async function cleanUp(): Promise<void> {
  await stop(node);
  await stop(hub);
  const removed = await cleanRedis().catch((error: unknown) => {
    log(`could not clean Redis keys ${RUN}*: ${error instanceof Error ? error.message : String(error)}`);
    return 0;
  });
  log(`stopped the hub and the agency node; removed ${removed} Redis keys under ${RUN}; removed ${work}`);
  rmSync(work, { recursive: true, force: true });
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  log(`linkage load test failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  if (hub) log(`--- hub output (tail) ---\n${hub.output().slice(-4000)}`);
  if (node) log(`--- agency node output (tail) ---\n${node.output().slice(-4000)}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);
