/**
 * Durable appends through the ledger versus a bare better-sqlite3 batched insert of the same rows,
 * measured in the same run on the same disk. Each round runs the ledger and then the baseline on the rows
 * the ledger wrote; the figures are the medians over the rounds (the ratio: of the per-round ratios), so
 * a slow moment of a shared machine moves one round, not the result. A warm-up run of the ledger comes
 * first and is not counted: the first appends of a process run before V8 has optimised the append path
 * (a first round measured ≈ 15 % below the later ones), and a hub runs warm. Last line: one JSON object.
 * `--tree` runs the ledger as the hub does: its writer thread keeps the Merkle tree in the transactions
 * that write the events, and a reader follows it as the hub's TreeFollower does (every 20 ms when idle,
 * at once after a step that found new events); it reports how far behind the last append that reader was.
 *   npm run bench:ledger [-- --events 200000 --writers 512 --rounds 3 --warmup 100000 --tree]
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { LEDGER_DDL, MerkleTreeProjection, SqliteEventStore } from '#ledger';
import { bareAppendRequest } from './support/append-request.js';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '200000' }, writers: { type: 'string', default: '512' }, rounds: { type: 'string', default: '3' }, warmup: { type: 'string', default: '100000' }, tree: { type: 'boolean', default: false } },
});
const EVENTS = Number(values.events);
const WRITERS = Number(values.writers);
const ROUNDS = Number(values.rounds);
const WARMUP = Number(values.warmup);
const TREE = values.tree!;
const dir = mkdtempSync(join(tmpdir(), 'bench-ledger-'));

async function ledgerRun(round: number | 'warmup', events = EVENTS): Promise<{ perSecond: number; path: string; batches: number; cpuPerEvent: number; mainBusy: number; writerBusy: number; treeLagMs?: number }> {
  const path = join(dir, `ledger-${round}.sqlite`);
  const store = new SqliteEventStore({ path, nodeId: 1, tree: TREE });
  // As the hub's TreeFollower: pick up what the writer committed, poll every 20 ms when caught up.
  const tree = TREE ? new MerkleTreeProjection({ source: path, maintainedByLedger: true }) : undefined;
  let following = tree !== undefined;
  const follower = (async () => {
    while (following) {
      const hashed = (await store.head()) > tree!.size ? tree!.step() : 0;
      await new Promise((r) => (hashed > 0 ? setImmediate(r) : setTimeout(r, 20)));
    }
  })();
  let next = 0;
  const main0 = performance.eventLoopUtilization();
  const writer0 = store.writerUtilization();
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (next < events) await store.append(bareAppendRequest(next++));
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  // Share of the wall time each thread's event loop was busy: the one near 1 is the limit.
  const mainBusy = performance.eventLoopUtilization(main0).utilization;
  const writerBusy = store.writerUtilization(writer0).utilization;
  let treeLagMs: number | undefined;
  if (tree !== undefined) {
    const head = await store.head();
    while (tree.size < head) await new Promise((r) => setTimeout(r, 1));
    if (tree.size !== head) throw new Error(`the tree covers ${tree.size} events, the log ${head}`);
    treeLagMs = Number(process.hrtime.bigint() - started) / 1e6 - seconds * 1000;
    following = false;
    await follower;
    tree.close();
  }
  const batches = store.commitCount;
  await store.close();
  return { perSecond: events / seconds, path, batches, cpuPerEvent: (cpu.user + cpu.system) / events, mainBusy, writerBusy, treeLagMs };
}

function baselineRun(source: string, BATCH: number, round: number): { perSecond: number; cpuPerEvent: number } {
  // The same rows the ledger wrote, read back first so that reading does not count.
  const rows = new Database(source, { readonly: true })
    .prepare('SELECT position, stream_id, stream_revision, serial, envelope FROM events ORDER BY position')
    .raw()
    .all() as unknown[][];
  const db = new Database(join(dir, `baseline-${round}.sqlite`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(LEDGER_DDL);
  const insert = db.prepare('INSERT INTO events (position, stream_id, stream_revision, serial, envelope) VALUES (?, ?, ?, ?, ?)');
  const batch = db.transaction((slice: unknown[][]) => {
    for (const r of slice) insert.run(r);
  });
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let i = 0; i < rows.length; i += BATCH) batch.immediate(rows.slice(i, i + BATCH));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  db.close();
  return { perSecond: rows.length / seconds, cpuPerEvent: (cpu.user + cpu.system) / rows.length };
}

interface Round {
  readonly ledger: number;
  readonly baseline: number;
  readonly ratio: number;
  readonly meanTransaction: number;
  readonly ledgerCpu: number;
  readonly baselineCpu: number;
  readonly mainBusy: number;
  readonly writerBusy: number;
  readonly treeLagMs?: number;
}
const rounds: Round[] = [];
if (WARMUP > 0) {
  const warm = await ledgerRun('warmup', WARMUP);
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
  console.log(`warm-up (not counted): ${WARMUP.toLocaleString('en')} events, ${Math.round(warm.perSecond).toLocaleString('en')} events/s`);
}
for (let r = 0; r < ROUNDS; r++) {
  const ledger = await ledgerRun(r);
  const meanTransaction = Math.max(1, Math.round(EVENTS / ledger.batches));
  const baseline = baselineRun(ledger.path, meanTransaction, r);
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
  const round = { ledger: ledger.perSecond, baseline: baseline.perSecond, ratio: ledger.perSecond / baseline.perSecond, meanTransaction, ledgerCpu: ledger.cpuPerEvent, baselineCpu: baseline.cpuPerEvent, mainBusy: ledger.mainBusy, writerBusy: ledger.writerBusy, treeLagMs: ledger.treeLagMs };
  rounds.push(round);
  console.log(
    `round ${r + 1}: ledger ${Math.round(round.ledger).toLocaleString('en')} events/s (${round.ledgerCpu.toFixed(1)} µs CPU each; busy: main thread ${Math.round(100 * round.mainBusy)} %, writer ${Math.round(100 * round.writerBusy)} %), ` +
      `baseline ${Math.round(round.baseline).toLocaleString('en')} rows/s in transactions of ${meanTransaction} (${round.baselineCpu.toFixed(1)} µs), ratio ${round.ratio.toFixed(3)}` +
      (round.treeLagMs === undefined ? '' : `; tree caught up ${Math.round(round.treeLagMs)} ms after the last append`),
  );
}
rmSync(dir, { recursive: true, force: true });
const median = (f: (r: Round) => number): number => {
  const xs = rounds.map(f).sort((a, b) => a - b);
  return xs.length % 2 === 1 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
};
const events = median((r) => r.ledger);
const baseline = median((r) => r.baseline);
const ratio = median((r) => r.ratio);
const avgBatch = Math.round(median((r) => r.meanTransaction));
console.log(`ledger appends (durable, ${WRITERS} writers${TREE ? ', Merkle tree following' : ''}), median of ${ROUNDS}: ${Math.round(events).toLocaleString('en')} events/s`);
console.log(`bare better-sqlite3 batched insert (transactions of the ledger's mean transaction size, ≈ ${avgBatch} rows), median: ${Math.round(baseline).toLocaleString('en')} rows/s`);
// CPU time per event (all threads of this process) varies less than wall time on a shared machine.
console.log(`CPU per event, median: ledger ${median((r) => r.ledgerCpu).toFixed(1)} µs (main thread, writer thread, GC), baseline ${median((r) => r.baselineCpu).toFixed(1)} µs`);
console.log(`ratio ${ratio.toFixed(3)} (median of the rounds' ratios; bar ≥ 0.4), rate bar ≥ 50,000 events/s: ${ratio >= 0.4 && events >= 50_000 ? 'met' : 'NOT met'}`);
console.log(
  JSON.stringify({
    bench: 'ledger-append',
    events: EVENTS,
    writers: WRITERS,
    rounds: ROUNDS,
    warmup: WARMUP,
    tree: TREE,
    mean_transaction: avgBatch,
    events_per_s: Math.round(events),
    baseline_per_s: Math.round(baseline),
    ratio: Number(ratio.toFixed(3)),
    ledger_cpu_us_per_event: Number(median((r) => r.ledgerCpu).toFixed(1)),
    main_busy: Number(median((r) => r.mainBusy).toFixed(2)),
    writer_busy: Number(median((r) => r.writerBusy).toFixed(2)),
    baseline_cpu_us_per_event: Number(median((r) => r.baselineCpu).toFixed(1)),
    ...(TREE ? { tree_lag_ms: Math.round(median((r) => r.treeLagMs!)) } : {}),
  }),
);
