/**
 * `npm run bench:push`: the public service mesh's two fan-outs on this machine, and the ledger's bare
 * append rate measured in the same run, the yardstick of both.
 *
 * 1. Bare appends: the ledger as the hub runs it (SqliteEventStore, its writer thread keeping the Merkle
 *    tree), 512 writers, one event per append under its own serial with an idempotency key (as
 *    bench:ledger), after a warm-up that is not counted: `append_per_s`.
 * 2. One notice to everyone: N people (default 1,000,000) derived from a seed by bench/support/population-log.ts's
 *    Population, in the data directory of the built hub (which registered the agencies): each person's key
 *    in the hub's key ring and Muroran City's code in a code index (the hub's `agency_codes` table). With
 *    --full-log the people are also written to the log as the hub numbers them (writePeople: each numbered
 *    and given the pension service's and Muroran City's codes, sealed and appended through the ledger) —
 *    3,000,000 events, hours on a busy 2-core machine. Then Muroran City's batch to `audience: "all"` as the
 *    hub runs it: the recipient list taken from the code index, NoticeBatchStarted sealed and appended,
 *    and the leader's fan-out (apps/hub/src/notices/notice-batch.fanout.ts, the hub's own code and
 *    chunking) appending one sealed NoticeSent per person, each its own serial, through SealedEventStore
 *    over the ledger with its tree: `notice_deliveries_per_s` (fan-out time; the list's time apart) and
 *    `notice_ratio` = notice_deliveries_per_s / append_per_s. Then the log is checked: exactly N new
 *    NoticeSent events after NoticeBatchStarted, on N distinct streams.
 * 3. One update to 10,000 subscribers (bench/support/push-fanout.ts): the built hub, the subscribers'
 *    receiver in its own process, time until every push is delivered and recorded: `push_deliveries_per_s`.
 *
 * With --keep the population's directory (.bench/push-<N>) is kept and reused (written once; each run
 * adds one batch of N notices to its log). Last line: one JSON object. Bar: notice fan-out ≥ 10,000/s.
 *   npm run build && npm run bench:push [-- --people 1000000 --subscribers 10000 --keep --dir .bench --full-log --seal-threads 1 --notice-seal-threads 0 --notice-chunk 2000 --notice-step 500 --notice-in-flight 4 --skip-push --prepare-only]
 */
import Database from 'better-sqlite3';
import cliProgress from 'cli-progress';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { SqliteEventStore } from '#ledger';
import { batchNoticeId, noticeBatchStarted, noticeBatchStreamId, type AgencyId, type SubjectId } from '#linkage';
import { PLAIN_CODE_INDEX_KEYS, SqliteCodeIndex, issuedCodeOf } from '#mapper';
import { EventSealer, KEYRING_FILE, SealWorkers, SealedEventStore, SqliteKeyring } from '#sealing';
import { generateAnswerKeyPair } from '#sealed-answer';
import { loadOrCreateSealingKeys } from '../apps/hub/src/sealing/sealing-keys.js';
import { BATCH_NOTICE_HANDLE } from '../apps/hub/src/notices/notice-batch-runner.service.js';
import { fanOutNoticeBatch } from '../apps/hub/src/notices/notice-batch.fanout.js';
import { NoticeBatchRecipients } from '../apps/hub/src/notices/notice-batch.store.js';
import { operatorToken, registerAgencies } from '../load-tests/runner/setup.js';
import { REPO_ROOT } from '../load-tests/runner/processes.js';
import { bareAppendRequest } from './support/append-request.js';
import { startHub } from './support/population-hub.js';
import { MURORAN_CITY, Population, writePeople } from './support/population-log.js';
import { loadOrCreateCodeLocator } from '../apps/hub/src/linkage/hub-secrets.js';

const { values } = parseArgs({
  options: {
    people: { type: 'string', default: '1000000' },
    subscribers: { type: 'string', default: '10000' },
    keep: { type: 'boolean', default: false },
    dir: { type: 'string', default: '.bench' },
    source: { type: 'boolean', default: false },
    'append-events': { type: 'string', default: '200000' },
    'append-warmup': { type: 'string', default: '50000' },
    'seal-threads': { type: 'string', default: '0' },
    'notice-seal-threads': { type: 'string', default: '0' },
    'notice-chunk': { type: 'string', default: '2000' },
    'notice-in-flight': { type: 'string', default: '4' },
    'notice-step': { type: 'string', default: '500' },
    'skip-push': { type: 'boolean', default: false },
    'full-log': { type: 'boolean', default: false },
    'prepare-only': { type: 'boolean', default: false },
  },
});

function integer(name: keyof typeof values, min: number, max: number): number {
  const raw = values[name];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

const PEOPLE = integer('people', 1, 50_000_000);
const SUBSCRIBERS = integer('subscribers', 1, 1_000_000);
const APPEND_EVENTS = integer('append-events', 1000, 10_000_000);
const APPEND_WARMUP = integer('append-warmup', 0, 10_000_000);
const SEAL_THREADS = integer('seal-threads', 0, 16);
const NOTICE_SEAL_THREADS = integer('notice-seal-threads', 0, 16);
/** Recipients per chunk of the fan-out (the hub's HUB_NOTICE_BATCH_CHUNK, default 2,000). */
const NOTICE_CHUNK = integer('notice-chunk', 1, 100_000);
/** Steps whose appends may be in flight at once (the hub's fan-out: 4). */
const NOTICE_IN_FLIGHT = integer('notice-in-flight', 1, 64);
/** Recipients appended per step of a chunk (the hub's fan-out: 500). */
const NOTICE_STEP = integer('notice-step', 1, 100_000);
const KEEP = values.keep!;
const FULL_LOG = values['full-log']!;
const BENCH_DIR = resolve(REPO_ROOT, values.dir!);
const NODE_ID = 1;
const META_FILE = 'push-population.json';
/** People per key ring transaction and code index transaction when the population is not written to the log. */
const KEY_GROUP = 10_000;
const CODES_FILE = 'bench-codes.sqlite';
const BAR = 10_000;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
function fmt(n: number): string {
  return Math.round(n).toLocaleString('en');
}
/**
 * CPU time (µs) of one thread of this process from Linux's /proc (utime + stime, 10 ms ticks), or
 * undefined elsewhere: the main thread is the main thread's (its task id is the process id). Node 20 has
 * no process.threadCpuUsage.
 */
function threadCpuUs(tid: number = process.pid): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return undefined;
  }
}

/** CPU (µs) of every other thread of this process by name (the ledger's writer, V8's GC helpers, libuv …), Linux only. */
function otherThreadsCpuUs(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      if (Number(tid) === process.pid) continue;
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      out.set(`${name}:${tid}`, threadCpuUs(Number(tid)) ?? 0);
    }
  } catch {
    // not Linux
  }
  return out;
}

function bar(format: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar({ format, hideCursor: true, etaBuffer: 50, noTTYOutput: true, notTTYSchedule: 10_000, stream: process.stderr }, cliProgress.Presets.shades_classic);
}

// ---------------------------------------------------------------------------------------------------
// 1. The ledger's bare append rate (as bench:ledger measures it, the tree kept by the writer).

interface Rate {
  readonly perSecond: number;
  /** Process CPU (all threads) per event, µs: what the machine's load does not change much. */
  readonly cpuUsPerEvent: number;
  /** Share of the wall time the main thread and the ledger's writer thread were busy. */
  readonly mainBusy: number;
  readonly writerBusy: number;
}

async function bareAppends(events: number, label: string): Promise<Rate> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-push-append-'));
  const store = new SqliteEventStore({ path: join(dir, 'ledger.sqlite'), nodeId: 1, tree: true });
  const progress = bar(`${label} [{bar}] {percentage}% | {value}/{total} events`);
  progress.start(events, 0);
  let next = 0;
  let done = 0;
  const started = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const main0 = performance.eventLoopUtilization();
  const writer0 = store.writerUtilization();
  try {
    await Promise.all(
      Array.from({ length: 512 }, async () => {
        while (next < events) {
          await store.append(bareAppendRequest(next++));
          if (++done % 5000 === 0) progress.update(done);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    progress.update(events);
    return { perSecond: events / seconds, cpuUsPerEvent: (cpu.user + cpu.system) / events, mainBusy: performance.eventLoopUtilization(main0).utilization, writerBusy: store.writerUtilization(writer0).utilization };
  } finally {
    progress.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// 2. The population and the notice fan-out.

interface PopulationMeta {
  readonly people: number;
  readonly events: number;
  readonly seed: string;
  readonly writeSeconds: number;
  readonly writtenAt: string;
  readonly fullLog: boolean;
}

async function preparePopulation(): Promise<{ dir: string; meta: PopulationMeta; reused: boolean }> {
  const dir = join(BENCH_DIR, `push-${PEOPLE}${FULL_LOG ? '-log' : ''}`);
  const metaPath = join(dir, META_FILE);
  if (KEEP && existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as PopulationMeta;
    if (meta.people === PEOPLE && meta.fullLog === FULL_LOG && existsSync(join(dir, CODES_FILE))) {
      log(`reusing the ${fmt(PEOPLE)}-person log in ${relative(REPO_ROOT, dir)} (written ${meta.writtenAt} in ${meta.writeSeconds} s)`);
      return { dir, meta, reused: true };
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  log(`${relative(REPO_ROOT, dir)}: the hub's first start on the empty data directory (its keys; the agencies registered)`);
  const hub = await startHub({ dataDir: dir, env: { HUB_LOG_LEVEL: 'log', HUB_REDIS_URL: 'off', HUB_CHECKPOINT_EVERY_MS: '3600000' }, source: values.source!, readyTimeoutMs: 120_000, cwd: REPO_ROOT });
  try {
    await registerAgencies(hub.url, operatorToken(dir), 'http://127.0.0.1:9', (await generateAnswerKeyPair()).publicKey);
  } finally {
    await hub.stop();
  }

  // The people through the ledger; their codes filed in a code index as the hub's lookups file them.
  const codesDb = new Database(join(dir, CODES_FILE));
  codesDb.pragma('journal_mode = WAL');
  codesDb.pragma('synchronous = NORMAL');
  const index = new SqliteCodeIndex(codesDb);
  const file = codesDb.transaction((codes: Parameters<NonNullable<Parameters<typeof writePeople>[0]['onGroup']>>[0]['codes']) => {
    for (const e of codes) {
      const issued = issuedCodeOf(e);
      if (issued !== undefined) index.record(issued);
    }
  });
  const seed = randomBytes(32).toString('hex');
  if (!FULL_LOG) {
    try {
      return await keysAndCodes(dir, index, codesDb, seed);
    } finally {
      codesDb.close();
    }
  }
  const progress = bar(`write ${fmt(PEOPLE)} people [{bar}] {percentage}% | {value}/{total} people | {rate} events/s | ETA {eta_formatted}`);
  const started = Date.now();
  progress.start(PEOPLE, 0, { rate: 0 });
  let written;
  try {
    written = await writePeople({
      dataDir: dir,
      nodeId: NODE_ID,
      people: PEOPLE,
      seedHex: seed,
      sealThreads: SEAL_THREADS,
      onGroup: (g) => {
        file(g.codes);
        progress.update(g.people, { rate: fmt(g.events / Math.max(0.001, (Date.now() - started) / 1000)) });
      },
    });
  } finally {
    progress.stop();
    codesDb.close();
  }
  const meta: PopulationMeta = { people: PEOPLE, events: written.lastPosition + 1, seed, writeSeconds: Number(written.seconds.toFixed(1)), writtenAt: new Date().toISOString(), fullLog: true };
  log(`wrote ${fmt(PEOPLE)} people (${fmt(written.events)} events) in ${written.seconds.toFixed(1)} s: ${fmt(written.events / written.seconds)} events/s`);
  writeFileSync(metaPath, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  return { dir, meta, reused: false };
}

/**
 * The population the fan-out needs, without its numbering events in the log: each person's key in the
 * hub's key ring (made as the sealer makes them, in large transactions) and Muroran City's code for them in
 * the code index, both derived from the seed by population-log.ts's Population (the same subject ids and
 * codes writePeople would append). Minutes instead of hours on a busy 2-core machine; the log then holds
 * only the hub's own start-up and registration events when the fan-out begins (--full-log writes the people).
 */
async function keysAndCodes(dir: string, index: SqliteCodeIndex, codesDb: Database.Database, seed: string): Promise<{ dir: string; meta: PopulationMeta; reused: boolean }> {
  const keysDir = join(dir, 'keys');
  const ring = new SqliteKeyring({ path: join(dir, KEYRING_FILE), keys: loadOrCreateSealingKeys(keysDir) });
  const population = new Population(seed, loadOrCreateCodeLocator(keysDir));
  const progress = bar(`key ring and code index for ${fmt(PEOPLE)} people [{bar}] {percentage}% | {value}/{total} people | ETA {eta_formatted}`);
  const started = process.hrtime.bigint();
  progress.start(PEOPLE, 0);
  try {
    const file = codesDb.transaction((from: number, subjects: readonly string[]) => {
      subjects.forEach((subjectId, k) => index.record({ position: from + k, subjectId: subjectId as SubjectId, agencyId: MURORAN_CITY as AgencyId, code: population.code(from + k, MURORAN_CITY, subjectId) }));
    });
    for (let from = 0; from < PEOPLE; from += KEY_GROUP) {
      const to = Math.min(PEOPLE, from + KEY_GROUP);
      const subjects = Array.from({ length: to - from }, (_, k) => population.person(from + k).subjectId);
      ring.ensureSubjectKeys(subjects);
      file(from, subjects);
      progress.update(to);
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    progress.stop();
    ring.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  log(`made ${fmt(PEOPLE)} people's keys and filed their Muroran City codes in ${seconds.toFixed(1)} s`);
  const meta: PopulationMeta = { people: PEOPLE, events: 0, seed, writeSeconds: Number(seconds.toFixed(1)), writtenAt: new Date().toISOString(), fullLog: false };
  writeFileSync(join(dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  return { dir, meta, reused: false };
}

interface NoticeFigures {
  readonly deliveriesPerS: number;
  /** Process CPU (all threads: main, the ledger's writer, GC helpers) per delivery, µs. */
  readonly cpuUsPerDelivery: number;
  /** The main thread's CPU per delivery, µs (Linux; undefined elsewhere): the fan-out's limit. */
  readonly mainCpuUsPerDelivery: number | undefined;
  /** The busiest other thread's CPU per delivery, µs (the ledger's writer), and its name. */
  readonly otherThreads: string;
  readonly mainBusy: number;
  readonly writerBusy: number;
  readonly seconds: number;
  readonly listSeconds: number;
  readonly delivered: number;
  readonly failed: number;
}

async function noticeFanout(dir: string): Promise<NoticeFigures> {
  const keys = loadOrCreateSealingKeys(join(dir, 'keys'));
  const raw = new SqliteEventStore({ path: join(dir, 'ledger.sqlite'), nodeId: NODE_ID, tree: true });
  const ring = new SqliteKeyring({ path: join(dir, KEYRING_FILE), keys });
  const sealer = new EventSealer(keys, ring);
  const store = new SealedEventStore(raw, sealer);
  const recipients = new NoticeBatchRecipients(join(dir, 'notice-batch-recipients.sqlite'));
  // --notice-seal-threads N: the NoticeSent events sealed in N worker threads (SealWorkers); 0, the default, on this thread as the hub does.
  const workers = NOTICE_SEAL_THREADS === 0 ? undefined : new SealWorkers({ keys, keyringPath: join(dir, KEYRING_FILE), threads: NOTICE_SEAL_THREADS, sealer });
  try {
    const batchId = randomUUID();
    const agencyId = MURORAN_CITY as AgencyId;
    const title = '定額減税補足給付金のお知らせ';
    const body = '対象の方には7月以降に通知書をお送りします。\n室蘭市 税務課';
    // The command: the recipient list from the code index, then NoticeBatchStarted (its own serial, sealed).
    const listStarted = process.hrtime.bigint();
    const total = recipients.addAgencyHolders(batchId, agencyId, join(dir, CODES_FILE));
    const listSeconds = Number(process.hrtime.bigint() - listStarted) / 1e9;
    if (total !== PEOPLE) throw new Error(`the code index lists ${total} holders of a Muroran City code, not ${PEOPLE}`);
    const started = await store.append({
      streamId: noticeBatchStreamId(batchId),
      expectedRevision: 'no_stream',
      events: [noticeBatchStarted({ batchId, agencyId, audience: 'all', total, title, body, startedAt: new Date().toISOString() })],
      serial: { allocate: true },
      metadata: { actor: `agency:${agencyId}`, correlationId: `bench-${batchId}` },
    });
    log(`recipient list of ${fmt(total)} people taken from the code index in ${listSeconds.toFixed(2)} s; NoticeBatchStarted at position ${started.firstPosition}`);

    const progress = bar(`notice fan-out [{bar}] {percentage}% | {value}/{total} people | {rate} deliveries/s | ETA {eta_formatted}`);
    progress.start(total, 0, { rate: 0 });
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const mainCpu0 = threadCpuUs();
    const threads0 = otherThreadsCpuUs();
    const main0 = performance.eventLoopUtilization();
    const writer0 = raw.writerUtilization();
    let done;
    try {
      done = await fanOutNoticeBatch(
        { batchId, agencyId, title, body },
        {
          store,
          recipients,
          subjectOf: PLAIN_CODE_INDEX_KEYS.subjectOf,
          handle: (v) => sealer.handle(BATCH_NOTICE_HANDLE, v),
          prepare: (subjects) => sealer.prepareSubjects(subjects),
          chunk: NOTICE_CHUNK,
          chunksInFlight: NOTICE_IN_FLIGHT,
          step: NOTICE_STEP,
          ...(workers === undefined ? {} : { workers: { seal: (requests) => workers.seal(requests), raw } }),
          now: () => new Date(),
          onProgress: (p) => progress.update(p.next, { rate: fmt(p.delivered / Math.max(0.001, Number(process.hrtime.bigint() - t0) / 1e9)) }),
        },
      );
    } finally {
      progress.stop();
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const mainCpu1 = threadCpuUs();
    const mainCpuUsPerDelivery = mainCpu0 === undefined || mainCpu1 === undefined ? undefined : (mainCpu1 - mainCpu0) / total;
    const otherThreads = [...otherThreadsCpuUs()]
      .map(([name, us]) => [name.split(':')[0]!, (us - (threads0.get(name) ?? 0)) / total] as const)
      .filter(([, us]) => us >= 0.5)
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => `${name} ${us.toFixed(1)}`)
      .join(', ');
    const mainBusy = performance.eventLoopUtilization(main0).utilization;
    const writerBusy = raw.writerUtilization(writer0).utilization;
    if (done.delivered + done.failed !== total || done.recordedBefore !== 0) throw new Error(`the fan-out handled ${done.delivered} + ${done.failed} (+ ${done.recordedBefore} recorded before) of ${total}`);

    // The log after it: exactly one NoticeSent per person, on distinct streams, each its own serial.
    const head = await raw.head();
    await raw.close();
    const db = new Database(join(dir, 'ledger.sqlite'), { readonly: true });
    const row = db.prepare('SELECT count(*) AS events, count(DISTINCT stream_id) AS streams, count(DISTINCT serial) AS serials FROM events WHERE position > ?').get(started.firstPosition) as { events: number; streams: number; serials: number };
    db.close();
    if (row.events !== total || row.streams !== total || row.serials !== total || head !== started.firstPosition + 1 + total) throw new Error(`after the batch the log holds ${JSON.stringify(row)} (head ${head}); expected ${total} each`);
    const sample = batchNoticeId(sealer.handle(BATCH_NOTICE_HANDLE, `${batchId}|0`));
    log(`log checked: ${fmt(row.events)} NoticeSent events on ${fmt(row.streams)} streams under ${fmt(row.serials)} serials after NoticeBatchStarted (first notice ${sample})`);
    return { deliveriesPerS: done.delivered / seconds, cpuUsPerDelivery: (cpu.user + cpu.system) / total, mainCpuUsPerDelivery, otherThreads, mainBusy, writerBusy, seconds, listSeconds, delivered: done.delivered, failed: done.failed };
  } finally {
    await workers?.close();
    recipients.close();
    ring.close();
    await raw.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------
// 3. The push half (bench/support/push-fanout.ts).

interface PushFigures {
  readonly pushDeliveriesPerS: number | null;
  readonly skipped?: string;
  readonly seconds?: number;
}

async function pushFanout(): Promise<PushFigures> {
  if (values['skip-push']) return { pushDeliveriesPerS: null, skipped: '--skip-push' };
  const path = join(REPO_ROOT, 'bench/support/push-fanout.ts');
  if (!existsSync(path)) return { pushDeliveriesPerS: null, skipped: 'bench/support/push-fanout.ts is not there (the push half is not written yet)' };
  const mod = (await import('./support/push-fanout.js')) as { measurePushFanout?: (o: { subscribers: number; dir: string; onProgress?: (done: number, total: number) => void }) => Promise<{ pushDeliveriesPerS: number; seconds: number }> };
  if (typeof mod.measurePushFanout !== 'function') return { pushDeliveriesPerS: null, skipped: 'bench/support/push-fanout.ts exports no measurePushFanout' };
  const progress = bar(`push fan-out to ${fmt(SUBSCRIBERS)} subscribers [{bar}] {percentage}% | {value}/{total}`);
  progress.start(SUBSCRIBERS, 0);
  try {
    const r = await mod.measurePushFanout({ subscribers: SUBSCRIBERS, dir: join(BENCH_DIR, 'push-fanout'), onProgress: (done, total) => progress.update(done, { total }) });
    return { pushDeliveriesPerS: r.pushDeliveriesPerS, seconds: r.seconds };
  } catch (error) {
    return { pushDeliveriesPerS: null, skipped: `the push half failed: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    progress.stop();
  }
}

// ---------------------------------------------------------------------------------------------------

log(`bench:push — ${fmt(PEOPLE)} people, ${fmt(SUBSCRIBERS)} subscribers`);
if (APPEND_WARMUP > 0) log(`warm-up (not counted): ${fmt((await bareAppends(APPEND_WARMUP, 'warm-up')).perSecond)} events/s`);
const append = await bareAppends(APPEND_EVENTS, 'bare appends');
const appendPerS = append.perSecond;
log(`ledger bare appends (tree kept, 512 writers): ${fmt(appendPerS)} events/s, ${append.cpuUsPerEvent.toFixed(1)} µs CPU each; busy: main ${Math.round(100 * append.mainBusy)} %, writer ${Math.round(100 * append.writerBusy)} %; load average ${loadavg()[0]!.toFixed(1)}`);

const population = await preparePopulation();
if (values['prepare-only']) {
  // --prepare-only (with --keep): the population made (or found) and nothing sent: a copy of it starts every run of a comparison from one state.
  log(`population ready in ${relative(REPO_ROOT, population.dir)}`);
  process.exit(0);
}
const notice = await noticeFanout(population.dir);
log(
  `notice fan-out: ${fmt(notice.delivered)} delivered, ${fmt(notice.failed)} failed in ${notice.seconds.toFixed(1)} s: ${fmt(notice.deliveriesPerS)} deliveries/s (bar ${fmt(BAR)}/s: ${notice.deliveriesPerS >= BAR ? 'met' : 'NOT met'}); ` +
    `ratio to bare appends ${(notice.deliveriesPerS / appendPerS).toFixed(3)}; ${notice.cpuUsPerDelivery.toFixed(1)} µs CPU each (main thread ${notice.mainCpuUsPerDelivery?.toFixed(1) ?? '?'}; others µs each: ${notice.otherThreads || '?'}); busy: main ${Math.round(100 * notice.mainBusy)} %, writer ${Math.round(100 * notice.writerBusy)} %; load average ${loadavg()[0]!.toFixed(1)}`,
);
if (!KEEP) rmSync(population.dir, { recursive: true, force: true });

const push = await pushFanout();
if (push.pushDeliveriesPerS === null) log(`push fan-out skipped: ${push.skipped}`);
else log(`push fan-out: ${fmt(SUBSCRIBERS)} subscribers in ${push.seconds?.toFixed(1)} s: ${fmt(push.pushDeliveriesPerS)} deliveries/s`);

const result = {
  people: PEOPLE,
  subscribers: SUBSCRIBERS,
  append_per_s: Math.round(appendPerS),
  append_cpu_us: Number(append.cpuUsPerEvent.toFixed(1)),
  notice_deliveries_per_s: Math.round(notice.deliveriesPerS),
  notice_ratio: Number((notice.deliveriesPerS / appendPerS).toFixed(3)),
  notice_seconds: Number(notice.seconds.toFixed(1)),
  notice_cpu_us: Number(notice.cpuUsPerDelivery.toFixed(1)),
  notice_cpu_us_per_delivery: Number(notice.cpuUsPerDelivery.toFixed(1)),
  notice_main_cpu_us_per_delivery: notice.mainCpuUsPerDelivery === undefined ? null : Number(notice.mainCpuUsPerDelivery.toFixed(1)),
  notice_one_core_per_s: Math.round(1e6 / notice.cpuUsPerDelivery),
  notice_writer_busy: Number(notice.writerBusy.toFixed(2)),
  notice_main_busy: Number(notice.mainBusy.toFixed(2)),
  notice_list_seconds: Number(notice.listSeconds.toFixed(2)),
  notice_seal_threads: NOTICE_SEAL_THREADS,
  notice_chunk: NOTICE_CHUNK,
  notice_in_flight: NOTICE_IN_FLIGHT,
  notice_step: NOTICE_STEP,
  notice_bar_met: notice.deliveriesPerS >= BAR,
  push_deliveries_per_s: push.pushDeliveriesPerS === null ? null : Math.round(push.pushDeliveriesPerS),
  push_ratio: push.pushDeliveriesPerS === null ? null : Number((push.pushDeliveriesPerS / appendPerS).toFixed(3)),
  ...(push.skipped === undefined ? {} : { push_skipped: push.skipped }),
};
console.log(JSON.stringify(result));
