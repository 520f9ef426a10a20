/**
 * The linkage load test (the bars in README, Benchmarks): the full query → provision path, the built hub and the
 * built agency node of Muroran City each in its own process, driven with autocannon from this one, against the
 * bare two-hop relay baseline (load-tests/runner/baseline/: client → relay → provider, Fastify, keep-alive,
 * answers of the linkage's size, two processes, no store, no crypto) measured in the same run with the same
 * load generator and connections:
 *   (a) a max-throughput phase per target after a warm-up, at --connections (64) and again at each count of
 *       --saturate (256): a closed-loop generator keeps as many requests in flight as it has connections, so a
 *       target whose latency leaves its processes idle at 64 serves more with more in flight. Each target's max
 *       is its best count's median over the rounds; the ratio is also printed count by count,
 *   (b) a fixed-rate phase per target at --rate-fraction (0.3) × the baseline's max rate, at a constant arrival
 *       rate (evenly spaced requests, latency from each one's due time, after a --lead-in of 3 s on the same
 *       connections that is left out of the figures: paced.ts),
 *   (c) the linkage at --rate (3,000/s, the absolute bar; 0 leaves it out),
 *   (d) with --tls both, plain and TLS at --tls-rate-fraction (0.5) × the lower of their max rates at --connections: a fixed rate both
 *       sustain, where p99 and CPU per query compare TLS with plain HTTP (at 0.3 × the baseline both may be saturated).
 * Beside the baseline, the crypto relay (max phase only; --crypto-relay off leaves it out): the same two relay
 * processes doing a linkage's cryptography and nothing else (the hub's seals, signature and answer digest in the
 * relay, the intermediate server's signature check and sealed answer in the provider), and the bar's CPU budget
 * against the cryptography timed in this process (crypto-budget.ts): what the guarantees cost by themselves.
 * --tls on runs the linkage with HUB_TLS=on (the hub and the node serve HTTPS with certificates of the hub's
 * CA; the load generator presents the pension service's client certificate issued at its registration and
 * checks the hub's certificate against that CA before each phase); --tls both runs plain HTTP and TLS side by
 * side, phase by phase, and prints TLS/plain ratios. Every request that is not HTTP 200 with outcome
 * "answered" counts as an error. Loopback only; it stops by itself. Last line: one JSON object.
 *   npm run build && node --conditions=source --import tsx load-tests/runner/linkage.ts
 *     [--people 2000] [--connections 64] [--saturate 256[,512…]|off] [--warmup 3] [--duration 15] [--rate 3000] [--rate-fraction 0.3]
 *     [--rate-connections 128] [--rate-duration 15] [--lead-in 3] [--rounds 1] [--tls off|on|both] [--tls-rate-fraction 0.5] [--baseline on|off]
 *     [--crypto-relay on|off] [--coalesce on|off]
 *     [--plaintext] [--grpc] [--write-fixture file.json [--hold seconds]] [--hub-cpu-prof dir] [--node-cpu-prof dir]
 *     [--hub-node-flags="--perf-basic-prof …"] [--node-node-flags="…"]
 * --baseline off: no relay baseline; the fixed-rate phase is then --rate.
 * --coalesce off: the hub calls the intermediate server once per query (HUB_PROVIDER_COALESCE=off) instead of
 *   sending the queries of one turn of its event loop as one batch call.
 * --hold: after writing the fixture, keep both processes up for that long (for k6) instead of driving the load.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { tlsFetch } from '../../apps/agency-node/src/hub/tls-fetch.js';
import { queryBodies, runPhase, verifyServerCertificate, type PhaseResult, type VerifiedServer } from './drive.js';
import { runPacedPhase } from './paced.js';
import { refusesPlainHttp, settledReadiness, startLinkageNetwork, type LinkageNetwork } from './network.js';
import { cryptoBudget, describeBudget, measureLinkageCrypto } from './crypto-budget.js';
import { cpuSeconds, type Spawned } from './processes.js';
import { describeStages, scrapeStageTotals, stageMeans, type StageMeans, type StageTotals } from './hub-stages.js';
import { startRelayBaseline, type RelayBaseline } from './relay-baseline.js';
import { figuresOf, formatTargetTable, ratio, ratioByConnections, tlsComparison, totalCpuMsPerQuery, type TargetFigures, type TargetRow } from './report.js';
import type { LinkageFixture } from './setup.js';
import { measureWakeups, wakeupLine } from './wakeups.js';

const RUNNER_DIR = dirname(fileURLToPath(import.meta.url));

const { values } = parseArgs({
  options: {
    people: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '64' },
    saturate: { type: 'string', default: '256' },
    warmup: { type: 'string', default: '3' },
    duration: { type: 'string', default: '15' },
    rate: { type: 'string', default: '3000' },
    'rate-fraction': { type: 'string', default: '0.3' },
    'tls-rate-fraction': { type: 'string', default: '0.5' },
    'rate-connections': { type: 'string', default: '128' },
    'rate-duration': { type: 'string', default: '15' },
    'lead-in': { type: 'string', default: '3' },
    rounds: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '10' },
    tls: { type: 'string', default: 'off' },
    baseline: { type: 'string', default: 'on' },
    'crypto-relay': { type: 'string', default: 'on' },
    coalesce: { type: 'string', default: 'on' },
    plaintext: { type: 'boolean', default: false },
    grpc: { type: 'boolean', default: false },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    'write-fixture': { type: 'string' },
    'hub-cpu-prof': { type: 'string' },
    'node-cpu-prof': { type: 'string' },
    'hub-node-flags': { type: 'string' },
    'node-node-flags': { type: 'string' },
    hold: { type: 'string' },
  },
});

function integer(name: string, min: number, max: number): number {
  const raw = values[name as keyof typeof values];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function oneOf<T extends string>(name: string, allowed: readonly T[]): T {
  const raw = values[name as keyof typeof values];
  if (!allowed.includes(raw as T)) throw new Error(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

const PEOPLE = integer('people', 1, 100_000);
const CONNECTIONS = integer('connections', 1, 1024);
/** The max phase's connection counts: --connections first, then the other counts of --saturate, fewest first. */
const MAX_CONNECTIONS = ((): number[] => {
  const raw = values.saturate!;
  if (raw === 'off') return [CONNECTIONS];
  const counts = raw.split(',').map((c) => Number(c.trim()));
  if (!counts.every((n) => Number.isInteger(n) && n >= 1 && n <= 1024)) throw new Error(`--saturate must be 'off' or connection counts from 1 to 1024 separated by commas, got ${JSON.stringify(raw)}`);
  return [CONNECTIONS, ...[...new Set(counts)].filter((n) => n !== CONNECTIONS).sort((a, b) => a - b)];
})();
const WARMUP = integer('warmup', 1, 120);
const DURATION = integer('duration', 1, 600);
const RATE = integer('rate', 0, 100_000);
const RATE_FRACTION = Number(values['rate-fraction']);
if (!(RATE_FRACTION > 0 && RATE_FRACTION <= 1)) throw new Error(`--rate-fraction must be in (0, 1], got ${JSON.stringify(values['rate-fraction'])}`);
const TLS_RATE_FRACTION = Number(values['tls-rate-fraction']);
if (!(TLS_RATE_FRACTION > 0 && TLS_RATE_FRACTION <= 1)) throw new Error(`--tls-rate-fraction must be in (0, 1], got ${JSON.stringify(values['tls-rate-fraction'])}`);
const RATE_CONNECTIONS = integer('rate-connections', 1, 1024);
const RATE_DURATION = integer('rate-duration', 1, 600);
const LEAD_IN = integer('lead-in', 0, 60);
const ROUNDS = integer('rounds', 1, 20);
const TIMEOUT = integer('timeout', 1, 60);
const HOLD = values.hold === undefined ? undefined : integer('hold', 1, 3600);
const TLS = oneOf('tls', ['off', 'on', 'both'] as const);
const BASELINE = oneOf('baseline', ['on', 'off'] as const) === 'on';
const CRYPTO_RELAY = BASELINE && oneOf('crypto-relay', ['on', 'off'] as const) === 'on';
const COALESCE = oneOf('coalesce', ['on', 'off'] as const);
const REDIS_URL = values['redis-url']!;
if (!/^redis:\/\/127\.0\.0\.1(:\d+)?(\/\d+)?$/.test(REDIS_URL)) throw new Error('--redis-url must be a redis:// URL on 127.0.0.1 (the load test stays on loopback)');
if (TLS === 'both' && values['write-fixture'] !== undefined) throw new Error('--write-fixture writes one network: give --tls off or --tls on');
if (!BASELINE && RATE === 0) throw new Error('--baseline off needs a --rate for the fixed-rate phase');

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * --cpu-prof (a profile written when the process exits). The agency node re-raises SIGTERM after its shutdown
 * hooks, which would end it without writing one: `cpu-prof-on-signal.mjs` turns that into a normal exit.
 */
function profileFlags(dir: string | undefined, name: string, onSignal = false): string[] {
  if (dir === undefined) return [];
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true });
  const flags = ['--cpu-prof', `--cpu-prof-dir=${abs}`, `--cpu-prof-name=${name}-${process.pid}.cpuprofile`];
  return onSignal ? [...flags, '--import', pathToFileURL(join(RUNNER_DIR, 'cpu-prof-on-signal.mjs')).href] : flags;
}

/** Node's own flags for the hub or the agency node (e.g. `--perf-basic-prof` for `perf record`), space-separated. */
function nodeFlags(name: 'hub-node-flags' | 'node-node-flags'): string[] {
  const raw = values[name];
  if (raw === undefined) return [];
  const flags = raw.split(/\s+/).filter((f) => f !== '');
  const bad = flags.find((f) => !/^--[a-z0-9-]+(=[^\s]*)?$/.test(f));
  if (bad !== undefined) throw new Error(`--${name} takes node flags (--name or --name=value), got ${JSON.stringify(bad)}`);
  return flags;
}

/** What the load generator drives: the relay baseline, the crypto relay, or the linkage over HTTP or TLS; its processes by name. */
interface Target {
  readonly key: 'baseline' | 'crypto' | 'http' | 'tls';
  readonly fixture: LinkageFixture;
  readonly processes: Readonly<Record<string, Spawned>>;
  readonly network?: LinkageNetwork;
  /** The hub's certificate as the load generator verified it (TLS only). */
  verified?: VerifiedServer;
}

const networks: LinkageNetwork[] = [];
let baseline: RelayBaseline | undefined;
let cryptoRelay: RelayBaseline | undefined;

/** The relays: same bodies, no hub. */
const isRelay = (target: Target): boolean => target.key === 'baseline' || target.key === 'crypto';

/**
 * A fixed-rate phase: requests at a constant arrival rate (paced.ts, as k6's constant-arrival-rate), after a
 * lead-in of --lead-in seconds at the same rate on the same connections whose latencies are left out (the
 * pool opens its connections there: under TLS, their handshakes). What the lead-in and the generator saw is
 * logged.
 */
async function ratePhase(target: Target, bodies: readonly string[], name: string, rate: number): Promise<PhaseResult> {
  const result = await runPacedPhase(target.fixture, bodies, { name, connections: RATE_CONNECTIONS, durationSeconds: RATE_DURATION, rate, timeoutSeconds: TIMEOUT, leadInSeconds: LEAD_IN });
  const lead = result.leadIn === undefined ? 'no lead-in' : `lead-in ${result.leadIn.requests} requests in ${result.leadIn.seconds} s, p99 ${result.leadIn.p99.toFixed(0)} ms, max ${result.leadIn.max.toFixed(0)} ms`;
  log(`  ${target.key} ${name}: ${lead}; ${result.connectionsOpened} connections opened; the generator sent p99 ${result.sendLagMs.p99.toFixed(1)} ms after the due time (max ${result.sendLagMs.max.toFixed(1)} ms)`);
  return result;
}

/** Runs one phase against a target, with each of its processes' CPU (and the load generator's) as a share of one core. */
async function measure(target: Target, phase: () => Promise<PhaseResult>): Promise<TargetRow> {
  if (target.fixture.tls !== undefined) target.verified = await verifyServerCertificate(target.fixture.hubUrl, target.fixture.tls);
  const before = Object.fromEntries(Object.entries(target.processes).map(([name, p]) => [name, cpuSeconds(p.child.pid) ?? 0]));
  const selfBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await phase();
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const self = process.cpuUsage(selfBefore);
  const cpu: Record<string, number> = {};
  for (const [name, p] of Object.entries(target.processes)) cpu[name] = ((cpuSeconds(p.child.pid) ?? 0) - before[name]!) / wall;
  cpu['generator'] = (self.user + self.system) / 1e6 / wall;
  return { target: target.key === 'baseline' ? 'relay baseline' : target.key === 'crypto' ? 'crypto relay' : `linkage ${target.key}`, phase: result, cpu, wallSeconds: wall };
}

/** The linkage's answer size, from one query (the baseline's provider answers as many bytes). */
async function answerBytes(network: LinkageNetwork, body: string): Promise<number> {
  const web = network.fixture.tls === undefined ? fetch : tlsFetch(network.fixture.tls);
  const res = await web(`${network.hubUrl}/v1/queries`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${network.fixture.requesterToken}` }, body });
  const text = await res.text();
  if (res.status !== 200 || !text.includes('"outcome":"answered"')) throw new Error(`the first query was not answered: HTTP ${res.status} ${text.slice(0, 300)}`);
  return Buffer.byteLength(text);
}

async function main(): Promise<void> {
  const started = Date.now();
  const modes: ('http' | 'tls')[] = TLS === 'both' ? ['http', 'tls'] : TLS === 'on' ? ['tls'] : ['http'];
  const targets: Target[] = [];
  for (const mode of modes) {
    const network = await startLinkageNetwork({
      people: PEOPLE,
      redisUrl: REDIS_URL,
      grpc: values.grpc,
      plaintext: values.plaintext,
      tls: mode === 'tls',
      label: modes.length > 1 ? mode : undefined,
      hubEnv: { HUB_PROVIDER_COALESCE: COALESCE },
      hubNodeFlags: [...profileFlags(values['hub-cpu-prof'], `hub-${mode}`), ...nodeFlags('hub-node-flags')],
      nodeNodeFlags: [...profileFlags(values['node-cpu-prof'], `agency-node-${mode}`, true), ...nodeFlags('node-node-flags')],
      log,
    });
    networks.push(network);
    if (mode === 'tls') {
      if (!network.hubUrl.startsWith('https://')) throw new Error(`HUB_TLS=on but the hub is at ${network.hubUrl}`);
      // Under TLS the hub MUST refuse plain HTTP: a load that reached it unencrypted would measure the wrong thing.
      if (!(await refusesPlainHttp(network.hubUrl))) throw new Error(`HUB_TLS=on but the hub answered plain HTTP at ${network.hubUrl.replace(/^https:/, 'http:')}`);
      log(`[tls] the hub refuses plain HTTP; the load generator presents the pension service's certificate and trusts only the hub's CA`);
    }
    targets.push({ key: mode, fixture: network.fixture, processes: { hub: network.hub, node: network.node }, network });
  }
  const first = networks[0]!;
  if (values['write-fixture'] !== undefined) {
    const file = values['write-fixture'];
    writeFileSync(file, `${JSON.stringify(first.fixture, null, 2)}\n`, { mode: 0o600 });
    // k6 (Go) takes no CA option in its script: it trusts what SSL_CERT_FILE names.
    if (first.fixture.tls !== undefined) writeFileSync(`${file}.ca.pem`, first.fixture.tls.caCertificatePem);
    log(`fixture written to ${file}${first.fixture.tls === undefined ? '' : ` (and the hub's CA to ${file}.ca.pem: SSL_CERT_FILE=${file}.ca.pem for k6)`} (valid while this hub runs)`);
  }
  if (HOLD !== undefined) return hold(first, HOLD);
  const bodies = queryBodies(first.fixture);

  if (BASELINE) {
    const bytes = await answerBytes(first, bodies[0]!);
    baseline = await startRelayBaseline({ answerBytes: bytes, log });
    // The same query bodies go to the relay: it forwards a body of their size and answers one of the linkage's.
    targets.unshift({ key: 'baseline', fixture: { ...first.fixture, hubUrl: baseline.url, tls: undefined }, processes: { relay: baseline.relay, provider: baseline.provider } });
    if (CRYPTO_RELAY) {
      // The relay baseline plus a linkage's cryptography and nothing else: what the guarantees cost by themselves (max phase only).
      cryptoRelay = await startRelayBaseline({ answerBytes: bytes, log, crypto: { people: PEOPLE } });
      targets.splice(1, 0, { key: 'crypto', fixture: { ...first.fixture, hubUrl: cryptoRelay.url, tls: undefined }, processes: { relay: cryptoRelay.relay, provider: cryptoRelay.provider } });
    }
  }
  // What handing work on costs this machine (at a low rate each query pays its hand-offs alone): printed with the figures.
  const wakeups = await measureWakeups();
  const loadBefore = loadavg()[0]!;
  const bodiesOf = (target: Target): string[] => (isRelay(target) ? bodies : queryBodies(target.fixture));
  // Alternate the order round by round so that no target always runs first (the machine drifts).
  const ordered = (round: number): Target[] => (round % 2 === 0 ? targets : [...targets].reverse());

  for (const target of targets) {
    log(`warm-up ${target.key}: ${WARMUP} s, ${CONNECTIONS} connections`);
    await runPhase(target.fixture, bodiesOf(target), { name: 'warm-up', connections: CONNECTIONS, durationSeconds: WARMUP, timeoutSeconds: TIMEOUT });
  }
  const maxRows = new Map<Target, TargetRow[]>(targets.map((t) => [t, []]));
  // The hub's own account of each max phase (its metrics scraped before and after): where a query's time goes.
  const maxStages = new Map<Target, [StageTotals, StageTotals][]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const connections of MAX_CONNECTIONS) {
      for (const target of ordered(round)) {
        log(`max throughput ${target.key} (round ${round + 1}/${ROUNDS}): ${DURATION} s, ${connections} connections`);
        // The hub's step means are those of --connections' phases (the figures earlier runs printed).
        const network = connections === CONNECTIONS ? target.network : undefined;
        const before = network === undefined ? undefined : await scrapeStageTotals(network.hubUrl, network.web);
        maxRows.get(target)!.push(await measure(target, () => runPhase(target.fixture, bodiesOf(target), { name: 'max', connections, durationSeconds: DURATION, timeoutSeconds: TIMEOUT })));
        const after = network === undefined ? undefined : await scrapeStageTotals(network.hubUrl, network.web);
        if (before !== undefined && after !== undefined) maxStages.set(target, [...(maxStages.get(target) ?? []), [before, after]]);
      }
    }
  }
  /**
   * A target's max phases at one connection count: at --connections the TLS comparison's max and rate, at the
   * count of a relay's max the CPU per request set against the bar's budget.
   */
  const maxRowsAt = (t: Target, connections: number): TargetRow[] => maxRows.get(t)!.filter((r) => r.phase.connections === connections);
  const baselineTarget = targets.find((t) => t.key === 'baseline');
  const baselineMax = baselineTarget === undefined ? undefined : figuresOf(maxRows.get(baselineTarget)!, maxRows.get(baselineTarget)!).maxPerSecond;
  const fixedRate = baselineMax === undefined ? RATE : Math.max(1, Math.round(RATE_FRACTION * baselineMax));
  const rateName = baselineMax === undefined ? `rate ${fixedRate}/s` : `rate ${fixedRate}/s (${RATE_FRACTION} × baseline)`;
  const rateRows = new Map<Target, TargetRow[]>(targets.map((t) => [t, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of ordered(round).filter((t) => t.key !== 'crypto')) {
      log(`fixed rate ${target.key} (round ${round + 1}/${ROUNDS}): ${fixedRate}/s for ${LEAD_IN} + ${RATE_DURATION} s, at most ${RATE_CONNECTIONS} connections`);
      rateRows.get(target)!.push(await measure(target, () => ratePhase(target, bodiesOf(target), rateName, fixedRate)));
    }
  }
  // The absolute bar (3,000/s) for the linkage, when the fixed-rate phase above was the baseline's fraction.
  const barRows = new Map<Target, TargetRow[]>();
  if (baselineMax !== undefined && RATE > 0) {
    for (const target of targets.filter((t) => !isRelay(t))) {
      log(`bar rate ${target.key}: ${RATE}/s for ${LEAD_IN} + ${RATE_DURATION} s, at most ${RATE_CONNECTIONS} connections`);
      barRows.set(target, [await measure(target, () => ratePhase(target, bodiesOf(target), `rate ${RATE}/s`, RATE))]);
    }
  }

  // TLS against plain at a rate both sustain: half the lower of their max rates at --connections (medians over
  // the rounds; with more connections in flight the max is higher, and half of it would be a queue's rate).
  const linkageTargets = targets.filter((t) => !isRelay(t));
  const tlsRateRows = new Map<Target, TargetRow[]>(linkageTargets.map((t) => [t, []]));
  const tlsRate = TLS === 'both' ? Math.max(1, Math.round(TLS_RATE_FRACTION * Math.min(...linkageTargets.map((t) => figuresOf(maxRowsAt(t, CONNECTIONS), []).maxPerSecond)))) : undefined;
  if (tlsRate !== undefined) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of round % 2 === 0 ? linkageTargets : [...linkageTargets].reverse()) {
        log(`TLS comparison rate ${target.key} (round ${round + 1}/${ROUNDS}): ${tlsRate}/s for ${LEAD_IN} + ${RATE_DURATION} s, at most ${RATE_CONNECTIONS} connections`);
        tlsRateRows.get(target)!.push(await measure(target, () => ratePhase(target, bodiesOf(target), `rate ${tlsRate}/s (${TLS_RATE_FRACTION} × lower max)`, tlsRate)));
      }
    }
  }

  // Autocannon stops its max phases with requests still in flight; the hub ends their serials once the provider answers.
  const readiness = await Promise.all(networks.map((n) => settledReadiness(n.hubUrl, 30_000, n.web)));
  const rows = targets.flatMap((t) => [...maxRows.get(t)!, ...rateRows.get(t)!, ...(tlsRateRows.get(t) ?? []), ...(barRows.get(t) ?? [])]);
  process.stdout.write(`${formatTargetTable(rows)}\n`);
  networks.forEach((n, i) => {
    const ready = readiness[i]!;
    process.stdout.write(`hub${networks.length > 1 ? ` (${n.tls ? 'tls' : 'http'})` : ''} /health/ready (HTTP ${ready.status}): ${JSON.stringify(ready.body)}\n`);
    if (ready.body['openSerials'] !== 0) process.stdout.write(`WARNING: ${String(ready.body['openSerials'])} serials are still open after the load\n`);
  });
  // Why the hub failed queries, from its own log (the last few lines that say so).
  for (const target of targets.filter((t) => t.network !== undefined)) {
    const failed = rows.some((r) => r.target === `linkage ${target.key}` && r.phase.errors > 0);
    if (!failed) continue;
    const lines = target.network!.hub.output().split('\n').filter((l) => /unreachable|refused|ECONN|EPIPE|socket hang up|timeout|failed/i.test(l));
    process.stdout.write(`hub (${target.key}) log lines about failures (last ${Math.min(5, lines.length)} of ${lines.length} kept):\n${lines.slice(-5).map((l) => `  ${l.slice(0, 400)}`).join('\n')}\n`);
  }
  const stageFigures = new Map<Target, StageMeans>();
  for (const [target, pairs] of maxStages) {
    const means = stageMeans(pairs);
    if (means === undefined) continue;
    stageFigures.set(target, means);
    process.stdout.write(`where a query's time goes in the hub (linkage ${target.key}, max phase, means of ${means.requests} requests, from its metrics): ${describeStages(means)}\n`);
  }
  const tlsTarget = targets.find((t) => t.key === 'tls');
  if (tlsTarget?.verified !== undefined) {
    const v = tlsTarget.verified;
    process.stdout.write(`TLS: ${v.protocol} ${v.cipher}; the hub's certificate (SHA-256 ${v.fingerprint256}, ${v.subjectAltName}) verified against the hub's CA (${v.issuer}); client certificate: the pension service's\n`);
  }

  const figures = new Map<Target, TargetFigures>(targets.map((t) => [t, figuresOf(maxRows.get(t)!, rateRows.get(t)!)]));
  const main = targets.find((t) => t.key === (TLS === 'on' ? 'tls' : 'http'))!;
  const mainFigures = figures.get(main)!;
  const baseFigures = baselineTarget === undefined ? undefined : figures.get(baselineTarget)!;
  const plainTarget = targets.find((t) => t.key === 'http');
  // TLS against plain: the max at --connections (the TLS bar's first part, as it was set), p99 and CPU per query at the rate both sustain.
  const atTlsRate = (t: Target): TargetFigures => figuresOf(maxRowsAt(t, CONNECTIONS), tlsRateRows.get(t)!);
  const tls = TLS === 'both' ? tlsComparison(atTlsRate(plainTarget!), atTlsRate(tlsTarget!)) : undefined;

  const mainStages = stageFigures.get(main);
  const summary: Record<string, unknown> = { bench: 'linkage-http', tls: TLS };
  if (baseFigures !== undefined) {
    const maxRatio = ratio(mainFigures.maxPerSecond, baseFigures.maxPerSecond);
    const byConnections = ratioByConnections(maxRows.get(main)!, maxRows.get(baselineTarget!)!);
    Object.assign(summary, {
      ratio: maxRatio,
      baseline_max_per_s: baseFigures.maxPerSecond,
      max_per_s: mainFigures.maxPerSecond,
      p99_ms_at_max: mainFigures.p99MsAtMax,
      max_connections: mainFigures.maxConnections,
      baseline_max_connections: baseFigures.maxConnections,
      ratio_by_connections: byConnections,
      rate_target: fixedRate,
      rate_fraction: RATE_FRACTION,
      baseline_rate_achieved: baseFigures.rateAchieved,
      rate_achieved: mainFigures.rateAchieved,
      rate_ratio: ratio(mainFigures.rateAchieved, baseFigures.rateAchieved),
      baseline_p99_ms_at_rate: baseFigures.p99MsAtRate,
      p50_ms_at_rate: mainFigures.p50MsAtRate,
      p99_ms_at_rate: mainFigures.p99MsAtRate,
    });
    const bar = barRows.get(main)?.[0];
    if (bar !== undefined) Object.assign(summary, { bar_rate_target: RATE, bar_rate_achieved: Math.round(bar.phase.perSecond), p99_ms_at_bar_rate: bar.phase.latencyMs.p99 });
    const met = maxRatio !== null && maxRatio >= 0.4 && mainFigures.p99MsAtRate <= 50;
    const byCount = Object.entries(byConnections);
    const counts = byCount.length < 2 ? '' : `; count by count ${byCount.map(([c, r]) => `${String(r)} at ${c}`).join(', ')}`;
    process.stdout.write(`${met ? '✓' : '✗'} linkage ${main.key} against the relay baseline: max ${mainFigures.maxPerSecond}/s at ${mainFigures.maxConnections} connections against ${baseFigures.maxPerSecond}/s at ${baseFigures.maxConnections} (ratio ${String(maxRatio)}, bar ≥ 0.4${counts}); at ${fixedRate}/s (${RATE_FRACTION} × baseline) p99 ${mainFigures.p99MsAtRate.toFixed(0)} ms (bar ≤ 50 ms), ${mainFigures.rateAchieved}/s achieved against the baseline's ${baseFigures.rateAchieved}/s\n`);
    // What the bar leaves a linkage in CPU, against what the relay's hops and the guarantees' cryptography cost
    // (measured now, in this process, with the machine otherwise idle): crypto-budget.ts.
    const relayMs = totalCpuMsPerQuery(maxRowsAt(baselineTarget!, baseFigures.maxConnections));
    const budget = cryptoBudget(availableParallelism(), baseFigures.maxPerSecond, relayMs, await measureLinkageCrypto(2_000, PEOPLE));
    process.stdout.write(`${describeBudget(budget, baseFigures.maxPerSecond)}\n`);
    Object.assign(summary, { cores: budget.cores, bar_cpu_budget_ms: budget.budgetMs, relay_cpu_ms: budget.relayMs, crypto_cpu_ms: budget.crypto, floor_cpu_ms: budget.floorMs, floor_ratio: budget.floorRatio });
    const cryptoTarget = targets.find((t) => t.key === 'crypto');
    if (cryptoTarget !== undefined) {
      // The same floor measured: the relay's two processes doing the cryptography too, under the same load generator.
      const cryptoMax = figures.get(cryptoTarget)!.maxPerSecond;
      const cryptoMs = totalCpuMsPerQuery(maxRowsAt(cryptoTarget, figures.get(cryptoTarget)!.maxConnections));
      const cryptoRatio = ratio(cryptoMax, baseFigures.maxPerSecond);
      const ofCrypto = ratio(mainFigures.maxPerSecond, cryptoMax);
      process.stdout.write(
        `crypto relay (the relay baseline doing a linkage's cryptography, nothing else): max ${cryptoMax}/s, ratio ${String(cryptoRatio)} against the baseline (the bar asks 0.4 of the linkage); ${cryptoMs.toFixed(3)} ms of CPU per request in all processes; the linkage reaches ${String(ofCrypto)} of it\n`,
      );
      Object.assign(summary, { crypto_relay_max_per_s: cryptoMax, crypto_relay_ratio: cryptoRatio, crypto_relay_cpu_ms: Number(cryptoMs.toFixed(3)), ratio_to_crypto_relay: ofCrypto });
    }
  } else {
    Object.assign(summary, { max_per_s: mainFigures.maxPerSecond, p99_ms_at_max: mainFigures.p99MsAtMax, rate_target: fixedRate, rate_achieved: mainFigures.rateAchieved, p50_ms_at_rate: mainFigures.p50MsAtRate, p99_ms_at_rate: mainFigures.p99MsAtRate });
  }
  Object.assign(summary, {
    errors:
      [...figures.values()].reduce((n, f) => n + f.errors, 0) +
      [...barRows.values()].flat().reduce((n, r) => n + r.phase.errors, 0) +
      [...tlsRateRows.values()].flat().reduce((n, r) => n + r.phase.errors, 0),
    cpu_ms_per_query: mainFigures.cpuMsPerQueryAtRate,
    ...(mainStages === undefined ? {} : { hub_ms_at_max: { http: mainStages.httpMs, pipeline: mainStages.pipelineMs, ...mainStages.stagesMs } }),
    ...(baseFigures === undefined ? {} : { baseline_cpu_ms_per_query: baseFigures.cpuMsPerQueryAtRate }),
  });
  if (tls !== undefined) {
    const t = figures.get(tlsTarget!)!;
    const tAt = atTlsRate(tlsTarget!);
    const pAt = atTlsRate(plainTarget!);
    Object.assign(summary, {
      tls_max_per_s: t.maxPerSecond,
      tls_rate_achieved: t.rateAchieved,
      tls_p99_ms_at_rate: t.p99MsAtRate,
      tls_compare_rate: tlsRate,
      plain_rate_achieved_at_compare: pAt.rateAchieved,
      tls_rate_achieved_at_compare: tAt.rateAchieved,
      plain_p99_ms_at_compare: pAt.p99MsAtRate,
      tls_p99_ms_at_compare: tAt.p99MsAtRate,
      plain_cpu_ms_per_query_at_compare: pAt.cpuMsPerQueryAtRate,
      tls_cpu_ms_per_query_at_compare: tAt.cpuMsPerQueryAtRate,
      tls_cpu_ms_per_query: t.cpuMsPerQueryAtRate,
      tls_max_ratio: tls.maxRatio,
      tls_p99_ratio: tls.p99Ratio,
      tls_cpu_ratio: tls.cpuRatio,
      ...(baseFigures === undefined ? {} : { tls_ratio: ratio(t.maxPerSecond, baseFigures.maxPerSecond) }),
    });
    process.stdout.write(
      `${tls.met ? '✓' : '✗'} TLS against plain HTTP in this run: max at ${CONNECTIONS} connections ${tAt.maxPerSecond}/s against ${pAt.maxPerSecond}/s (ratio ${String(tls.maxRatio)}, bar ≥ 0.85); p99 at ${String(tlsRate)}/s ${tAt.p99MsAtRate.toFixed(0)} ms against ${pAt.p99MsAtRate.toFixed(0)} ms (ratio ${String(tls.p99Ratio)}, bar ≤ 1.15; ${tAt.rateAchieved}/s and ${pAt.rateAchieved}/s achieved); hub + node CPU per query ratio ${String(tls.cpuRatio)} at that rate\n`,
    );
  }
  process.stdout.write(`${wakeupLine(wakeups)}\n`);
  // Other work on the machine competes for the same 2 cores: say how busy it was.
  process.stdout.write(`load average (1 min) before the load ${loadBefore.toFixed(2)}, after ${loadavg()[0]!.toFixed(2)}\n`);
  process.stdout.write(`total time ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  Object.assign(summary, { rounds: ROUNDS, people: PEOPLE, encrypted: !values.plaintext, provider_transport: values.grpc ? 'grpc' : 'http', coalesce: COALESCE, load_avg_1m_before: Number(loadBefore.toFixed(2)), load_avg_1m: Number(loadavg()[0]!.toFixed(2)), wakeup_cpu_us: wakeups });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

/** Keeps the hub and the node up for another load generator (k6 with the fixture file) for `seconds`, or until SIGINT. */
async function hold(network: LinkageNetwork, seconds: number): Promise<void> {
  log(`holding the hub (${network.hubUrl}) and the agency node for ${seconds} s; Ctrl-C ends it`);
  await new Promise<void>((done) => {
    const timer = setTimeout(done, seconds * 1000);
    process.once('SIGINT', () => {
      clearTimeout(timer);
      done();
    });
  });
  const ready = await settledReadiness(network.hubUrl, 30_000, network.web);
  process.stdout.write(`hub /health/ready (HTTP ${ready.status}): ${JSON.stringify(ready.body)}\n`);
}

async function cleanUp(): Promise<void> {
  await baseline?.close();
  await cryptoRelay?.close();
  for (const network of networks) await network.close();
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  log(`linkage load test failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  for (const network of networks) log(`--- hub output (tail) ---\n${network.hub.output().slice(-4000)}\n--- agency node output (tail) ---\n${network.node.output().slice(-4000)}`);
  for (const relay of [baseline, cryptoRelay]) if (relay) log(`--- relay output (tail) ---\n${relay.relay.output().slice(-2000)}\n--- provider output (tail) ---\n${relay.provider.output().slice(-2000)}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);
