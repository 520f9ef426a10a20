/**
 * Population scale (I11): a hub's start time, memory and linkage rate over a log of N numbered people
 * (default 10,000,000), against the same measurement over a 2,000-person log in the same run.
 *
 * For each log (under .bench/population-<N>/, a hub data directory):
 *  1. the hub is started once on the empty directory (its keys made as at any first start, the
 *     authorization table published), the Japan Pension Service and Muroran City are registered through
 *     its API, and it is stopped;
 *  2. the people are appended through the ledger in bulk (bench/support/population-log.ts: each an
 *     IndividualNumberIssued and two AgencyCodeIssued, decided, sealed and appended as the hub appends
 *     them), and their codes loaded into the hub's Redis mapper as the hub's projection writes them
 *     (pipelined, under the hub's prefix, checkpoint at the last code) on a redis-server this bench starts
 *     on a free loopback port: Redis bytes per code = (used_memory after − before) / codes; the hub's
 *     look-ups file (lookups.db) and the files of the projections it follows (provision records, pushes,
 *     notices, …) are folded as the groups become durable, as a live hub keeps them while it appends
 *     (--hub-builds-lookups leaves them to the hub's first start: a rebuild from the whole log);
 *  3. the hub is started on it untimed (its persisted projections catch up) and left until its CPU
 *     settles; then started again, timed from spawn to /health/ready 200 (start_s), and the Japan Pension
 *     Service asks Muroran City for local tax information of people drawn at random among the N through
 *     POST /v1/queries, driven by autocannon as the load test drives it (load-tests/runner/drive.ts), Muroran's
 *     intermediate server a stand-in in its own process (bench/support/population-provider.ts). The hub's
 *     VmRSS is sampled throughout (rss_mib: the largest). Both hubs stay up and the linkage rounds
 *     alternate between them (big, small, big, small, …); the ratio is the median of the rounds' ratios.
 * Bars: start ≤ 10 s, RSS ≤ 512 MiB, linkage rate ≥ 0.8 × the small log's. Exit 1 when one fails.
 * Last line: one JSON object.
 *   npm run bench:population [-- --people 10000000 --small 2000 --keep --duration 10 --rounds 3 --source --seal-threads 0 --write-nice 10 --semi-space 64 --hub-builds-lookups --hub-cpu-prof dir]
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { generateAnswerKeyPair } from '#sealed-answer';
import { loadOrCreateCodeLocator } from '../apps/hub/src/linkage/hub-secrets.js';
import { queryBodies, runPhase } from '../load-tests/runner/drive.js';
import { REPO_ROOT, cpuSeconds } from '../load-tests/runner/processes.js';
import { ITEMS, PROCEDURE, operatorToken, post, registerAgencies, type LinkageFixture } from '../load-tests/runner/setup.js';
import { HUB_SEMI_SPACE_MIB, benchChildren, newerSourceThanBuild, requireHub, settle, startHub, tracked, type HubRun } from './support/population-hub.js';
import { MURORAN_CITY, PENSION, Population, writePeople } from './support/population-log.js';
import { BenchRedis } from './support/population-redis.js';

const { values } = parseArgs({
  options: {
    people: { type: 'string', default: '10000000' },
    small: { type: 'string', default: '2000' },
    keep: { type: 'boolean', default: false },
    dir: { type: 'string', default: '.bench' },
    source: { type: 'boolean', default: false },
    connections: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    sample: { type: 'string', default: '20000' },
    'seal-threads': { type: 'string', default: '0' },
    'write-nice': { type: 'string' },
    'semi-space': { type: 'string', default: String(HUB_SEMI_SPACE_MIB) },
    'hub-builds-lookups': { type: 'boolean', default: false },
    'hub-cpu-prof': { type: 'string' },
    'ready-timeout': { type: 'string', default: '1800' },
    'settle-timeout': { type: 'string', default: '600' },
  },
});

function integer(name: keyof typeof values, min: number, max: number): number {
  const raw = values[name];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

const PEOPLE = integer('people', 1, 200_000_000);
const SMALL = integer('small', 1, 1_000_000);
const CONNECTIONS = integer('connections', 1, 1024);
const WARMUP = integer('warmup', 1, 600);
const DURATION = integer('duration', 1, 3600);
const ROUNDS = integer('rounds', 1, 100);
const SAMPLE = integer('sample', 1, 1_000_000);
const SEAL_THREADS = integer('seal-threads', 0, 16);
/** Niceness of the write phase only (its threads); the hubs measured after it run at the bench's own. */
const WRITE_NICE = values['write-nice'] === undefined ? undefined : integer('write-nice', 0, 19);
const SEMI_SPACE_MIB = integer('semi-space', 1, 1024);
/** Leave lookups.db to the hub's first start (a rebuild from the whole log) instead of folding it as the log is written. */
const HUB_BUILDS_LOOKUPS = values['hub-builds-lookups']!;
const HUB_CPU_PROF = values['hub-cpu-prof'] === undefined ? undefined : resolve(values['hub-cpu-prof']);
const READY_TIMEOUT_MS = integer('ready-timeout', 1, 86_400) * 1000;
const SETTLE_TIMEOUT_MS = integer('settle-timeout', 0, 86_400) * 1000;
const KEEP = values.keep!;
const SOURCE = values.source!;
const BENCH_DIR = resolve(REPO_ROOT, values.dir!);
const NODE_ID = 1;
const META_FILE = 'population.json';

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** What a generated log's directory keeps about it (next to the hub's own keys; never in the repository). */
interface LogMeta {
  readonly people: number;
  readonly events: number;
  readonly seed: string;
  readonly pensionToken: string;
  readonly pensionAnswerKey: string;
  /** Muroran City's endpoint as last registered (the stand-in's port changes from run to run). */
  muroranEndpoint: string;
  readonly redisPrefix: string;
  readonly writeSeconds: number;
  /** CPU seconds the writer used (all its threads); absent for a log written before it was measured. */
  readonly writeCpuSeconds?: number;
  /** Whether the writer folded the hub's look-ups file as it wrote (else the hub's first start built it). */
  readonly lookupsFolded?: boolean;
  readonly redis: { readonly before: number; readonly after: number; readonly codes: number; readonly bytesPerCode: number; readonly loadSeconds: number };
  readonly writtenAt: string;
}

interface PreparedLog {
  readonly dir: string;
  readonly meta: LogMeta;
  readonly redis: BenchRedis;
  readonly reused: boolean;
}

/** The stand-in intermediate server of Muroran City, in its own process. */
async function startProvider(): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = tracked(spawn(process.execPath, ['--conditions=source', '--import', 'tsx', join(REPO_ROOT, 'bench/support/population-provider.ts')], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 60_000;
  while (!/listening on (http:\/\/127\.0\.0\.1:\d+)/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the stand-in intermediate server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      const answered = /answered \d+ provision requests/.exec(out)?.[0];
      if (answered) log(`stand-in intermediate server: ${answered}`);
    },
  };
}

/**
 * The authorization table every hub of the bench publishes: version 1 (pension-award-claim × local-tax),
 * the one its logs were first written with. A hub whose default is a later version with an earlier
 * effectiveFrom refuses to start on a log that already holds version 1, which a kept log does.
 */
const AUTHORIZATION_TABLE = join(REPO_ROOT, 'schemas/authorization/authorization-table.v1.json');

function hubEnv(redis: BenchRedis | undefined, prefix: string): Record<string, string> {
  // A checkpoint per minute: the bench measures the linkage path, not the signer. Plain HTTP, as the
  // figures so far were taken (the stand-in and the load test's client speak HTTP).
  return {
    HUB_LOG_LEVEL: 'log',
    HUB_TLS: 'off',
    HUB_CHECKPOINT_EVERY_MS: '60000',
    HUB_AUTHORIZATION_TABLE_FILE: AUTHORIZATION_TABLE,
    ...(redis === undefined ? { HUB_REDIS_URL: 'off' } : { HUB_REDIS_URL: redis.url, HUB_REDIS_PREFIX: prefix }),
  };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en');
}

/** Writes (or, with --keep and a complete one there, reuses) the log of `people` and loads its codes into Redis. */
async function prepareLog(people: number, providerUrl: string, options: { name: string; reuse: boolean }): Promise<PreparedLog> {
  const dir = join(BENCH_DIR, options.name);
  const metaPath = join(dir, META_FILE);
  const rdb = KEEP ? join(dir, 'redis.rdb') : undefined;
  if (options.reuse && existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as LogMeta;
    if (meta.people === people && rdb !== undefined && existsSync(rdb)) {
      log(`reusing the ${fmt(meta.people)}-person log in ${relative(REPO_ROOT, dir)} (written ${meta.writtenAt}, ${fmt(meta.events)} events); loading its Redis data set`);
      const redis = await BenchRedis.start(rdb);
      const mapper = await redis.openMapper(meta.redisPrefix, loadOrCreateCodeLocator(join(dir, 'keys')));
      log(`  Redis: ${fmt(await redis.usedMemory())} bytes used, mapper checkpoint ${await mapper.checkpoint()}`);
      return { dir, meta, redis, reused: true };
    }
    log(`${relative(REPO_ROOT, dir)} holds no complete log of ${fmt(people)} people: writing it again`);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  // 1. The hub's first start on the empty directory: its keys, the authorization table; the two agencies registered.
  const redisPrefix = `lp${randomBytes(3).toString('hex')}`;
  log(`${relative(REPO_ROOT, dir)}: first start of the hub on the empty data directory`);
  const setupHub = await startHub({ dataDir: dir, env: hubEnv(undefined, redisPrefix), source: SOURCE, readyTimeoutMs: READY_TIMEOUT_MS, cwd: REPO_ROOT });
  let pensionToken: string;
  let pensionAnswerKey: string;
  try {
    const muroranKeys = await generateAnswerKeyPair();
    const registered = await registerAgencies(setupHub.url, operatorToken(dir), providerUrl, muroranKeys.publicKey);
    pensionToken = registered.pensionToken;
    pensionAnswerKey = registered.pensionKeys.publicKey;
  } finally {
    await setupHub.stop();
  }

  // 2. The people through the ledger, their codes into Redis as the hub's projection writes them.
  const seed = randomBytes(32).toString('hex');
  const redis = await BenchRedis.start(rdb);
  try {
    return await writeAndLoad(people, dir, redis, { seed, redisPrefix, pensionToken, pensionAnswerKey, providerUrl });
  } catch (error) {
    await redis.stop(false);
    throw error;
  }
}

async function writeAndLoad(people: number, dir: string, redis: BenchRedis, given: { seed: string; redisPrefix: string; pensionToken: string; pensionAnswerKey: string; providerUrl: string }): Promise<PreparedLog> {
  const { seed, redisPrefix, pensionToken, pensionAnswerKey, providerUrl } = given;
  const before = await redis.usedMemory();
  const mapper = await redis.openMapper(redisPrefix, loadOrCreateCodeLocator(join(dir, 'keys')));
  let redisSeconds = 0;
  let codes = 0;
  const bar = new cliProgress.SingleBar(
    { format: `write ${fmt(people)} people [{bar}] {percentage}% | {value}/{total} people | {events} events | {rate} events/s | ETA {eta_formatted}`, hideCursor: true, etaBuffer: 50, noTTYOutput: true, notTTYSchedule: 10_000, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(people, 0, { events: 0, rate: 0 });
  const written = await writePeople({
    dataDir: dir,
    nodeId: NODE_ID,
    people,
    seedHex: seed,
    sealThreads: SEAL_THREADS,
    ...(WRITE_NICE === undefined ? {} : { nice: WRITE_NICE }),
    lookups: !HUB_BUILDS_LOOKUPS,
    onGroup: async (g) => {
      const t0 = process.hrtime.bigint();
      await mapper.apply(g.codes);
      redisSeconds += Number(process.hrtime.bigint() - t0) / 1e9;
      codes += g.codes.length;
      bar.update(g.people, { events: fmt(g.events), rate: fmt(g.events / Math.max(0.001, (Date.now() - started) / 1000)) });
    },
  });
  bar.stop();
  const after = await redis.usedMemory();
  const meta: LogMeta = {
    people,
    events: written.lastPosition + 1,
    seed,
    pensionToken,
    pensionAnswerKey,
    muroranEndpoint: providerUrl,
    redisPrefix,
    writeSeconds: Number(written.seconds.toFixed(1)),
    ...(written.cpuSeconds === undefined ? {} : { writeCpuSeconds: Number(written.cpuSeconds.toFixed(1)) }),
    lookupsFolded: !HUB_BUILDS_LOOKUPS,
    redis: { before, after, codes, bytesPerCode: Number(((after - before) / codes).toFixed(2)), loadSeconds: Number(redisSeconds.toFixed(1)) },
    writtenAt: new Date().toISOString(),
  };
  log(
    `wrote ${fmt(people)} people (${fmt(written.events)} events, positions ${written.firstPosition}–${written.lastPosition}) in ${written.seconds.toFixed(1)} s: ${fmt(written.events / written.seconds)} events/s, ` +
      `${(((written.cpuSeconds ?? 0) * 1e6) / written.events).toFixed(0)} µs of CPU per event${HUB_BUILDS_LOOKUPS ? '' : ', look-ups folded'}` +
      `${written.phases === undefined ? '' : ` (main thread busy ${(written.phases.mainBusy * 100).toFixed(0)} %, the ledger's writer thread ${(written.phases.writerBusy * 100).toFixed(0)} %)`}; ` +
      `Redis: ${fmt(codes)} codes, ${fmt(after - before)} bytes, ${meta.redis.bytesPerCode} bytes per code (${redisSeconds.toFixed(1)} s of the run in Redis writes)`,
  );
  // Kept: the Redis data set beside the log at once, so that an interrupted measurement still leaves both.
  await redis.save();
  writeFileSync(join(dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  return { dir, meta, redis, reused: false };
}

/** A log's hub after its timed start, still running, ready to be queried. */
interface Started {
  readonly people: number;
  readonly hub: HubRun;
  readonly fixture: LinkageFixture;
  readonly bodies: readonly string[];
  readonly firstStartSeconds: number;
  readonly catchUpSeconds: number;
  readonly startSeconds: number;
  readonly rssReadyMiB: number;
  readonly settleSeconds: number;
  /** Seconds from ready until the self-check's scrub after the start ended. */
  readonly scrubSeconds: number;
  /** The largest VmRSS from ready until the scrub ended and the hub's CPU settled (MiB). */
  readonly rssScrubMiB: number;
  /** Seconds the first query after the start took (answered). */
  readonly firstQuerySeconds: number;
  readonly mapperMode: string;
  /** Events in the log when the timed start was ready (a kept log also holds the queries of earlier runs). */
  readonly head: number;
  readonly rounds: { perSecond: number; requests: number; errors: number; p99: number; cpuMs: number; statuses: Readonly<Record<string, number>> }[];
}

async function readiness(url: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${url}/health/ready`)).json()) as Record<string, unknown>;
}

/** Waits until /health/ready no longer reports a self-check `running` (the scrub after a start), or `timeoutMs`. */
async function selfCheckDone(url: string, timeoutMs: number): Promise<{ status: string; seconds: number }> {
  const started = Date.now();
  for (;;) {
    const status = String((((await readiness(url))['selfCheck'] ?? {}) as Record<string, unknown>)['status']);
    if (status !== 'running' || Date.now() - started > timeoutMs) return { status, seconds: (Date.now() - started) / 1000 };
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The code mapper's mode in /health/ready once it is `redis`, or as it is after `timeoutMs`. */
async function redisMode(url: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mode = String((((await readiness(url))['codeMapper'] ?? {}) as Record<string, unknown>)['mode']);
    if (mode === 'redis' || Date.now() > deadline) return mode;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Untimed start (its state catches up), then the timed start; the hub is left running for the linkage rounds. */
async function startMeasured(prepared: PreparedLog, providerUrl: string): Promise<Started> {
  const { dir, meta, redis } = prepared;
  const env = hubEnv(redis, meta.redisPrefix);
  const name = `${fmt(meta.people)}-person log`;
  log(`${name}: untimed start (the hub's persisted state catches up with the log)`);
  const profile = (stage: string) => (HUB_CPU_PROF === undefined ? {} : { cpuProfileDir: HUB_CPU_PROF, name: `hub-${meta.people}-${stage}` });
  let hub: HubRun | undefined = await startHub({ dataDir: dir, env, source: SOURCE, readyTimeoutMs: READY_TIMEOUT_MS, cwd: REPO_ROOT, semiSpaceMiB: SEMI_SPACE_MIB, ...profile('first') });
  const firstStartSeconds = hub.readySeconds;
  let catchUp: { seconds: number; settled: boolean };
  try {
    log(`  ready in ${firstStartSeconds.toFixed(2)} s (RSS so far ${hub.maxRssMiB().toFixed(0)} MiB); waiting for its CPU to settle`);
    if (meta.muroranEndpoint !== providerUrl) {
      const res = await fetch(`${hub.url}/v1/agencies/${MURORAN_CITY}`, { method: 'PATCH', headers: { 'content-type': 'application/json', authorization: `Bearer ${operatorToken(dir)}` }, body: JSON.stringify({ endpoint: providerUrl }) });
      if (res.status !== 200) throw new Error(`updating Muroran City's endpoint: HTTP ${res.status} ${await res.text()}`);
      meta.muroranEndpoint = providerUrl;
      writeFileSync(join(dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    }
    catchUp = await settle(hub.spawned.child.pid, { timeoutMs: SETTLE_TIMEOUT_MS, windowMs: 5000, onWait: (s, share) => log(`    ${s.toFixed(0)} s: hub CPU ${(share * 100).toFixed(0)} % of a core, RSS ${hub!.maxRssMiB().toFixed(0)} MiB max`) });
    log(`  ${catchUp.settled ? 'settled' : 'still busy'} after ${catchUp.seconds.toFixed(0)} s; stopping it`);
  } finally {
    const stopped = await hub.stop();
    log(
      stopped.clean
        ? `  stopped in ${stopped.seconds.toFixed(1)} s (exit ${stopped.exitCode ?? stopped.signal})`
        : `  killed after ${stopped.seconds.toFixed(1)} s without closing: it saved nothing at close (the ledger's filters among it), so the timed start rebuilds them and its time counts that`,
    );
  }

  log(`${name}: timed start`);
  hub = await startHub({ dataDir: dir, env, source: SOURCE, readyTimeoutMs: READY_TIMEOUT_MS, cwd: REPO_ROOT, semiSpaceMiB: SEMI_SPACE_MIB, ...profile('timed') });
  try {
    const startSeconds = hub.readySeconds;
    const rssReadyMiB = hub.maxRssMiB();
    // Memory while the self-check's scrub below its mark runs (right after ready), apart from the start's.
    hub.startWindow();
    log(`  ready in ${startSeconds.toFixed(2)} s, RSS ${rssReadyMiB.toFixed(0)} MiB`);
    const ready = await readiness(hub.url);
    log(`  /health/ready: ${JSON.stringify(ready)}`);
    // Translations from Redis, as a hub in service makes them (the store answers until its mapper is open).
    const mapperMode = await redisMode(hub.url, 60_000);
    log(`  code mapper: ${mapperMode}`);
    // Background work after ready is not the linkage path: the self-check's scrub below its mark (a
    // worker thread in the hub's process, counted in its CPU) and the projections; let them end first.
    const scrub = await selfCheckDone(hub.url, SETTLE_TIMEOUT_MS);
    log(`  self-check ${scrub.status} after ${scrub.seconds.toFixed(0)} s more`);
    const settled = await settle(hub.spawned.child.pid, { timeoutMs: SETTLE_TIMEOUT_MS, windowMs: 3000 });
    const rssScrubMiB = hub.windowMaxRssMiB();
    log(`  hub CPU ${settled.settled ? 'settled' : 'still busy'} after ${settled.seconds.toFixed(0)} s; RSS during the scrub ${rssScrubMiB.toFixed(0)} MiB at most`);

    // People drawn at random among all of them; the pension service's codes named again from the seed.
    const population = new Population(meta.seed, loadOrCreateCodeLocator(join(dir, 'keys')));
    const sample = Math.min(SAMPLE, meta.people);
    const codes = Array.from({ length: sample }, () => population.code(meta.people === 1 ? 0 : randomInt(meta.people), PENSION));
    const fixture: LinkageFixture = { hubUrl: hub.url, requesterToken: meta.pensionToken, providerAgencyId: MURORAN_CITY, procedureCode: PROCEDURE, itemCodes: ITEMS, answerPublicKey: meta.pensionAnswerKey, codes };
    const bodies = queryBodies(fixture);
    // One query first, checked: a generated person is found and answered.
    const firstStarted = process.hrtime.bigint();
    const first = await post(`${hub.url}/v1/queries`, JSON.parse(bodies[0]!), { authorization: `Bearer ${meta.pensionToken}` });
    const firstQuerySeconds = Number(process.hrtime.bigint() - firstStarted) / 1e9;
    if (first.status !== 200 || !first.text.includes('"outcome":"answered"')) throw new Error(`a linkage query for a generated person was not answered: HTTP ${first.status} ${first.text.slice(0, 500)}`);
    log(`  a query for a generated person: HTTP 200, answered in ${firstQuerySeconds.toFixed(3)} s (serial ${String((first.body as Record<string, unknown>)['serial'])}); RSS ${hub.maxRssMiB().toFixed(0)} MiB max`);
    await runPhase(fixture, bodies, { name: 'warm-up', connections: CONNECTIONS, durationSeconds: WARMUP, timeoutSeconds: 10 });
    return { people: meta.people, hub, fixture, bodies, firstStartSeconds, catchUpSeconds: catchUp.seconds, startSeconds, rssReadyMiB, settleSeconds: settled.seconds, scrubSeconds: scrub.seconds, rssScrubMiB, firstQuerySeconds, mapperMode, head: Number(ready['head']), rounds: [] };
  } catch (error) {
    log(`--- hub output (tail) ---\n${hub.spawned.output().slice(-4000)}`);
    await hub.stop();
    throw error;
  }
}

/** One linkage round against a started hub: --duration seconds of queries. */
async function linkageRound(started: Started): Promise<void> {
  const pid = started.hub.spawned.child.pid;
  const cpu0 = cpuSeconds(pid) ?? 0;
  const r = await runPhase(started.fixture, started.bodies, { name: 'linkage', connections: CONNECTIONS, durationSeconds: DURATION, timeoutSeconds: 10 });
  const cpu = (cpuSeconds(pid) ?? 0) - cpu0;
  started.rounds.push({ perSecond: r.perSecond, requests: r.requests, errors: r.errors, p99: r.latencyMs.p99, cpuMs: r.requests === 0 ? 0 : (cpu * 1000) / r.requests, statuses: r.statuses });
  log(`  ${fmt(started.people)} people: ${fmt(r.perSecond)} queries/s (${fmt(r.requests)} queries, ${r.errors} errors, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, hub ${((cpu * 1000) / Math.max(1, r.requests)).toFixed(2)} ms of CPU per query); hub RSS max ${started.hub.maxRssMiB().toFixed(0)} MiB${await heapOf(started.hub.url)}`);
}

/** Where the hub's memory is after a round, from its /metrics (V8's heap and memory outside it), for telling growth apart. */
async function heapOf(url: string): Promise<string> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const mib = (name: string): string => {
      const line = text.split('\n').find((l) => !l.startsWith('#') && l.includes(`nodejs_${name} `));
      return line === undefined ? '?' : (Number(line.slice(line.lastIndexOf(' ') + 1)) / 1048576).toFixed(0);
    };
    return ` (V8 heap ${mib('heap_size_used_bytes')} of ${mib('heap_size_total_bytes')} MiB used, of it new space ${mib('heap_space_size_total_bytes{space="new"}')} MiB, old ${mib('heap_space_size_used_bytes{space="old"}')} MiB used; external ${mib('external_memory_bytes')} MiB)`;
  } catch {
    return '';
  }
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const round = (x: number, d = 2) => Number(x.toFixed(d));

async function main(): Promise<number> {
  requireHub(SOURCE);
  const stale = SOURCE ? undefined : newerSourceThanBuild();
  if (stale !== undefined) log(`WARNING: ${relative(REPO_ROOT, stale)} is newer than the built hub: \`npm run build\` to measure the sources as they are (or --source)`);
  mkdirSync(BENCH_DIR, { recursive: true });
  const loadBefore = loadavg()[0]!;
  const provider = await startProvider();
  const prepared: PreparedLog[] = [];
  const started: Started[] = [];
  try {
    log(`stand-in intermediate server of Muroran City at ${provider.url}; hub ${SOURCE ? 'from its sources (tsx)' : 'built (dist/)'}`);
    const big = await prepareLog(PEOPLE, provider.url, { name: `population-${PEOPLE}`, reuse: KEEP });
    prepared.push(big);
    // The small log is written anew every run (seconds): a kept one would also hold the queries of earlier runs.
    const small = await prepareLog(SMALL, provider.url, { name: `population-small-${SMALL}`, reuse: false });
    prepared.push(small);
    const bigRun = await startMeasured(big, provider.url);
    started.push(bigRun);
    const smallRun = await startMeasured(small, provider.url);
    started.push(smallRun);
    // Rounds alternate between the two hubs (both up, the other idle), so that a busy spell of the
    // machine falls on both logs; the ratio is the median of the rounds' ratios.
    // Memory under the linkage load alone (rss_mib also holds the start and the self-check's scrub after it).
    bigRun.hub.startWindow();
    smallRun.hub.startWindow();
    for (let r = 1; r <= ROUNDS; r++) {
      log(`linkage round ${r} of ${ROUNDS}`);
      await linkageRound(bigRun);
      await linkageRound(smallRun);
    }
    const rounds = bigRun.rounds.map((b, i) => b.perSecond / smallRun.rounds[i]!.perSecond);
    const ratio = median(rounds);
    const bigRate = median(bigRun.rounds.map((x) => x.perSecond));
    const smallRate = median(smallRun.rounds.map((x) => x.perSecond));
    const bigCpu = round(median(bigRun.rounds.map((x) => x.cpuMs)), 3);
    const smallCpu = round(median(smallRun.rounds.map((x) => x.cpuMs)), 3);
    const bigRss = bigRun.hub.maxRssMiB();
    const bigAnon = bigRun.hub.maxAnonMiB();
    const smallRss = smallRun.hub.maxRssMiB();
    const bigLinkageRss = bigRun.hub.windowMaxRssMiB();
    const smallLinkageRss = smallRun.hub.windowMaxRssMiB();
    const bars = {
      start_s_le_10: bigRun.startSeconds <= 10,
      rss_mib_le_512: bigRss <= 512,
      linkage_ratio_ge_0_8: ratio >= 0.8,
    };
    const mark = (ok: boolean) => (ok ? '✓' : '✗');
    process.stdout.write(`\n${fmt(PEOPLE)} people (${fmt(big.meta.events)} events) against ${fmt(SMALL)} (${fmt(small.meta.events)} events):\n`);
    process.stdout.write(`  ${mark(bars.start_s_le_10)} start ≤ 10 s: ${bigRun.startSeconds.toFixed(2)} s (the ${fmt(SMALL)}-person log: ${smallRun.startSeconds.toFixed(2)} s; untimed first start ${bigRun.firstStartSeconds.toFixed(1)} s, then ${bigRun.catchUpSeconds.toFixed(0)} s until its CPU settled)\n`);
    process.stdout.write(`  ${mark(bars.rss_mib_le_512)} RSS ≤ 512 MiB: ${bigRss.toFixed(0)} MiB from spawn to the end (at ready ${bigRun.rssReadyMiB.toFixed(0)} MiB; through the self-check's scrub after ready ${bigRun.rssScrubMiB.toFixed(0)} MiB; without mapped files, RssAnon, at most ${bigAnon.toFixed(0)} MiB; the small log: ${smallRss.toFixed(0)} MiB; during the linkage rounds only: ${bigLinkageRss.toFixed(0)} MiB against ${smallLinkageRss.toFixed(0)} MiB)\n`);
    process.stdout.write(`  ${mark(bars.linkage_ratio_ge_0_8)} linkage ≥ 0.8 × the small log's: ${fmt(bigRate)}/s against ${fmt(smallRate)}/s, ratio ${ratio.toFixed(2)}, median of ${ROUNDS} alternating rounds (${rounds.map((x) => x.toFixed(2)).join(', ')}; hub CPU per query ${bigCpu} ms against ${smallCpu} ms)\n`);
    process.stdout.write(`  Redis: ${big.meta.redis.bytesPerCode} bytes per code over ${fmt(big.meta.redis.codes)} codes${big.reused ? ' (measured when the log was written)' : ''}\n`);
    const errors = [...bigRun.rounds, ...smallRun.rounds].reduce((n, x) => n + x.errors, 0);
    if (errors > 0) process.stdout.write(`  WARNING: ${errors} linkage queries were not answered (statuses ${JSON.stringify(bigRun.rounds.map((x) => x.statuses))} / ${JSON.stringify(smallRun.rounds.map((x) => x.statuses))})\n`);
    process.stdout.write(`  load average (1 min) before ${loadBefore.toFixed(2)}, after ${loadavg()[0]!.toFixed(2)}\n`);
    if (KEEP) process.stdout.write(`  kept: ${big.dir} (a rerun with --keep reuses it; the small log, ${small.dir}, is written anew each run)\n`);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'population',
        people: PEOPLE,
        events: big.meta.events,
        start_s: round(bigRun.startSeconds),
        rss_mib: round(bigRss, 0),
        redis_bytes_per_code: big.meta.redis.bytesPerCode,
        linkage_per_s: round(bigRate, 0),
        small_linkage_per_s: round(smallRate, 0),
        linkage_ratio: round(ratio, 3),
        bars,
        linkage_rounds: rounds.map((x) => round(x, 3)),
        small_people: SMALL,
        small_events: small.meta.events,
        small_start_s: round(smallRun.startSeconds),
        small_rss_mib: round(smallRss, 0),
        rss_at_ready_mib: round(bigRun.rssReadyMiB, 0),
        rss_scrub_mib: round(bigRun.rssScrubMiB, 0),
        small_rss_scrub_mib: round(smallRun.rssScrubMiB, 0),
        rss_linkage_mib: round(bigLinkageRss, 0),
        small_rss_linkage_mib: round(smallLinkageRss, 0),
        rss_anon_mib: round(bigAnon, 0),
        small_rss_anon_mib: round(smallRun.hub.maxAnonMiB(), 0),
        write_s: big.meta.writeSeconds,
        write_events_per_s: round(big.meta.events / big.meta.writeSeconds, 0),
        ...(big.meta.writeCpuSeconds === undefined ? {} : { write_cpu_us_per_event: round((big.meta.writeCpuSeconds * 1e6) / big.meta.events, 0) }),
        lookups_folded_by_writer: big.meta.lookupsFolded === true,
        log_reused: big.reused,
        head_at_start: bigRun.head,
        first_start_s: round(bigRun.firstStartSeconds, 1),
        catch_up_s: round(bigRun.catchUpSeconds, 0),
        first_query_s: round(bigRun.firstQuerySeconds, 3),
        scrub_s: round(bigRun.scrubSeconds, 1),
        small_first_query_s: round(smallRun.firstQuerySeconds, 3),
        p99_ms: median(bigRun.rounds.map((x) => x.p99)),
        small_p99_ms: median(smallRun.rounds.map((x) => x.p99)),
        hub_cpu_ms_per_query: bigCpu,
        small_hub_cpu_ms_per_query: smallCpu,
        errors,
        mapper_mode: bigRun.mapperMode,
        small_mapper_mode: smallRun.mapperMode,
        hub: SOURCE ? 'source' : 'built',
        hub_semi_space_mib: SEMI_SPACE_MIB,
        load_avg_1m: round(loadavg()[0]!),
      })}\n`,
    );
    return Object.values(bars).every(Boolean) && errors === 0 ? 0 : 1;
  } finally {
    for (const h of started) await h.hub.stop();
    for (const p of prepared) await p.redis.stop(KEEP);
    await provider.stop();
    if (!KEEP) for (const p of prepared) rmSync(p.dir, { recursive: true, force: true });
  }
}

// Interrupted: stop the hub, the stand-in and the redis-servers (a kept log stays as far as it was written; it is written again next time).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of benchChildren) child.kill('SIGTERM');
    log(`bench:population: ${signal}, stopped ${benchChildren.size} child process(es)`);
    process.exit(130);
  });
}

let code = 1;
try {
  code = await main();
} catch (error) {
  log(`bench:population failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}
process.exit(code);
