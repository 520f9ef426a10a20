/**
 * The population writer alone (bench/support/population-log.ts), as `npm run bench:population` writes its
 * logs: events per second and CPU µs per event (all the writer's threads) over a log of N people written
 * into a fresh copy of a hub data directory whose hub registered the two agencies (made once, by the
 * built hub, dist/, and kept in --dir as `population-write-template/`). The look-ups file is folded as in the bench.
 *   node --max-semi-space-size=64 --conditions=source --import tsx bench/population-write.bench.ts [-- --people 20000 --seal-threads 0 --group 2000 --in-flight 3 --nice 10 --dir .bench --lookups-fold staged|direct --keep]
 * With --keep the written data directory stays (its path on stderr): a hub can be started on it as the
 * bench's first start meets it (its Redis mapper is not loaded: start it with HUB_REDIS_URL=off).
 * Run it under `node --cpu-prof` to see where the writer's time goes. Last line: one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateAnswerKeyPair } from '#sealed-answer';
import { REPO_ROOT } from '../load-tests/runner/processes.js';
import { operatorToken, registerAgencies } from '../load-tests/runner/setup.js';
import { startHub } from './support/population-hub.js';
import { writePeople } from './support/population-log.js';

const { values } = parseArgs({
  options: {
    people: { type: 'string', default: '20000' },
    'seal-threads': { type: 'string', default: '0' },
    lookups: { type: 'boolean', default: true },
    group: { type: 'string', default: '2000' },
    'in-flight': { type: 'string', default: '3' },
    'lookups-fold': { type: 'string' },
    nice: { type: 'string' },
    dir: { type: 'string', default: '.bench' },
    keep: { type: 'boolean', default: false },
    'writer-cache-mib': { type: 'string' },
  },
});
const PEOPLE = Number(values.people);
const THREADS = Number(values['seal-threads']);
const BENCH_DIR = resolve(REPO_ROOT, values.dir!);
const TEMPLATE = join(BENCH_DIR, 'population-write-template');
const DIR = join(BENCH_DIR, `population-write-${process.pid}`);

if (!existsSync(join(TEMPLATE, 'ready'))) {
  rmSync(TEMPLATE, { recursive: true, force: true });
  mkdirSync(TEMPLATE, { recursive: true, mode: 0o700 });
  const hub = await startHub({ dataDir: TEMPLATE, env: { HUB_LOG_LEVEL: 'log', HUB_TLS: 'off', HUB_REDIS_URL: 'off', HUB_CHECKPOINT_EVERY_MS: '3600000' }, source: false, readyTimeoutMs: 300_000, cwd: REPO_ROOT });
  try {
    await registerAgencies(hub.url, operatorToken(TEMPLATE), 'http://127.0.0.1:9', (await generateAnswerKeyPair()).publicKey);
  } finally {
    await hub.stop();
  }
  mkdirSync(join(TEMPLATE, 'ready'));
}
cpSync(TEMPLATE, DIR, { recursive: true });
const load = loadavg()[0]!;
// When each group became durable: the rate over each tenth of the write (the last tenth's rate is what a longer log's end runs at).
const marks: Mark[] = [mark(0)];
let reported = 0;
try {
  const written = await writePeople({
    dataDir: DIR,
    nodeId: 1,
    people: PEOPLE,
    seedHex: randomBytes(32).toString('hex'),
    sealThreads: THREADS,
    lookups: values.lookups!,
    ...(values['lookups-fold'] === undefined ? {} : { lookupsFold: values['lookups-fold'] as 'direct' | 'staged' }),
    group: Number(values.group),
    groupsInFlight: Number(values['in-flight']),
    ...(values.nice === undefined ? {} : { nice: Number(values.nice) }),
    ...(values['writer-cache-mib'] === undefined ? {} : { writerCacheKiB: Number(values['writer-cache-mib']) * 1024 }),
    onGroup: ({ events }) => {
      marks.push(mark(events));
      if (events >= ((reported + 1) * PEOPLE * 3) / 10) {
        reported = Math.floor((events * 10) / (PEOPLE * 3));
        const seg = segmentRates(marks, reported).at(-1)!;
        process.stderr.write(`${new Date().toISOString()} ${events} events; last tenth: ${seg.eventsPerS} events/s, main thread ${seg.mainCpuUsPerEvent} µs CPU per event, all threads ${seg.cpuUsPerEvent}; load ${loadavg()[0]!.toFixed(1)}\n`);
      }
    },
  });
  const segments = segmentRates(marks, 10);
  const result = {
    bench: 'population-write',
    people: PEOPLE,
    events: written.events,
    seconds: Number(written.seconds.toFixed(2)),
    lookups_fold: values.lookups! ? (values['lookups-fold'] ?? 'staged') : 'none',
    events_per_s: Math.round(written.events / written.seconds),
    cpu_us_per_event: Number((((written.cpuSeconds ?? 0) * 1e6) / written.events).toFixed(1)),
    seal_threads: THREADS,
    segments_events_per_s: segments.map((x) => x.eventsPerS),
    segments_main_cpu_us_per_event: segments.map((x) => x.mainCpuUsPerEvent),
    segments_cpu_us_per_event: segments.map((x) => x.cpuUsPerEvent),
    last_tenth_events_per_s: segments.at(-1)!.eventsPerS,
    last_tenth_main_cpu_us_per_event: segments.at(-1)!.mainCpuUsPerEvent,
    last_tenth_threads_cpu_us_per_event: lastTenthThreads(marks),
    phases: written.phases,
    group: Number(values.group),
    groups_in_flight: Number(values['in-flight']),
    load_avg_1m_before: Number(load.toFixed(2)),
    load_avg_1m_after: Number(loadavg()[0]!.toFixed(2)),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  if (values.keep!) process.stderr.write(`kept the data directory: ${DIR}\n`);
  else rmSync(DIR, { recursive: true, force: true });
}

/** An instant of the write: events durable, wall clock (ms), CPU of the main thread and of the whole process (µs). */
interface Mark {
  readonly events: number;
  readonly at: number;
  readonly mainCpuUs: number;
  readonly cpuUs: number;
  /** CPU µs of each thread of the process, by thread id. */
  readonly threads: ReadonlyMap<number, number>;
}

function mark(events: number): Mark {
  // Each thread's own CPU (utime, stime) from /proc; the main thread's id is the process id.
  const tickUs = 1e6 / 100; // Linux's USER_HZ: /proc's CPU times are in hundredths of a second
  const threads = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.set(Number(tid), (Number(fields[11]) + Number(fields[12])) * tickUs);
    } catch {
      // the thread ended meanwhile
    }
  }
  const cpu = process.cpuUsage();
  return { events, at: performance.now(), mainCpuUs: threads.get(process.pid) ?? 0, cpuUs: cpu.user + cpu.system, threads };
}

/**
 * CPU µs per event of each thread over the last tenth, the busiest first, named by their thread id's offset
 * from the process id (0: the main thread; the V8 platform's threads come next, then the ledger's writer
 * thread and the seal workers, in the order they started).
 */
function lastTenthThreads(at: readonly Mark[]): Record<string, number> {
  const to = at.at(-1)!;
  const from = at.find((m) => m.events >= (to.events * 9) / 10 - 1) ?? at[0]!;
  const n = Math.max(1, to.events - from.events);
  const out: [string, number][] = [];
  for (const [tid, us] of to.threads) {
    const d = us - (from.threads.get(tid) ?? 0);
    if (d > 0) out.push([`+${tid - process.pid}`, Number((d / n).toFixed(1))]);
  }
  return Object.fromEntries(out.sort((a, b) => b[1] - a[1]).slice(0, 10));
}

/**
 * Over each of the first `tenths` tenths of the write, from the groups' durable instants: events per second,
 * and CPU µs per event of the main thread and of all threads (less moved by other work on the machine).
 */
function segmentRates(at: readonly Mark[], tenths: number): { eventsPerS: number; mainCpuUsPerEvent: number; cpuUsPerEvent: number }[] {
  const total = at.at(-1)!.events;
  const out: { eventsPerS: number; mainCpuUsPerEvent: number; cpuUsPerEvent: number }[] = [];
  let from = at[0]!;
  for (let k = 1; k <= tenths; k++) {
    // The first mark at or past k tenths of the events (of the whole write once it is done).
    const target = ((tenths === 10 ? total : PEOPLE * 3) * k) / 10;
    const to = at.find((m) => m.events >= target) ?? at.at(-1)!;
    const n = Math.max(1, to.events - from.events);
    out.push({
      eventsPerS: to.at > from.at ? Math.round((to.events - from.events) / ((to.at - from.at) / 1000)) : 0,
      mainCpuUsPerEvent: Number(((to.mainCpuUs - from.mainCpuUs) / n).toFixed(1)),
      cpuUsPerEvent: Number(((to.cpuUs - from.cpuUs) / n).toFixed(1)),
    });
    from = to;
  }
  return out;
}
