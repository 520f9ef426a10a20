import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';

/** One problem a worker found in its range of the log, located (see stored-log-check.ts for the codes). */
export interface WorkerFinding {
  readonly code: 'LEAF_MISMATCH' | 'ROW_MISSING' | 'TILE_MISSING' | 'TILE_MISMATCH';
  readonly check: 'leaf' | 'tile';
  readonly position: number;
  readonly serial: string | null;
  readonly expected: string | number | null;
  readonly calculated: string | number | null;
  /** For tile findings: the tile level of the stored hash that differs. */
  readonly level?: number;
}

/** What a worker returns for leaves [from, to). */
export interface RangeResult {
  readonly id: number;
  readonly from: number;
  readonly to: number;
  /** Rows read and re-hashed. */
  readonly checked: number;
  /** The first findings of the range in position order; `findingCount` counts them all. */
  readonly findings: WorkerFinding[];
  readonly findingCount: number;
  /** CheckpointSigned events met in the range (their stored text), for the main thread to verify. */
  readonly checkpoints: { readonly position: number; readonly serial: string; readonly envelope: string }[];
  /** The worker's V8 young generation (new space) after the range, in bytes: what its resource limits allowed. */
  readonly youngGenerationBytes: number;
}

export interface RangeRequest {
  /** A multiple of 256 (a tile boundary). */
  readonly from: number;
  readonly to: number;
  readonly maxFindings: number;
}

// Plain JavaScript run by each worker (eval'd, so it loads the same way from sources, dist and tsx).
// The leaf hash MUST equal #audit-log's leafHash and the writer's: SHA-256(0x00 ‖ UTF-8 of the stored
// text); tile layout as tree-tiles.ts. Test stored-log-check.int.spec.ts pins both against the library.
const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
const { getHeapSpaceStatistics } = require('node:v8');
if (workerData.lowPriority) {
  // Linux: a nice value belongs to a thread, and /proc/thread-self names this one. Elsewhere: normal priority.
  try {
    const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) require('node:os').setPriority(tid, 19);
  } catch (e) {}
}
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('mmap_size = ' + workerData.mmapBytes);
// SQLite's page cache of this connection (KiB; better-sqlite3's default is 16 MiB per connection).
db.pragma('cache_size = ' + -workerData.cacheKiB);
// char(0) || envelope is the leaf input itself (0x00 ‖ UTF-8 text), built by SQLite without a JS copy.
const selectRows = db.prepare('SELECT position, serial, char(0) || envelope FROM events WHERE position >= ? AND position < ? ORDER BY position').raw();
const selectTiles = db.prepare('SELECT idx, hashes FROM tree_tiles WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx').raw();
const selectSerial = db.prepare('SELECT serial FROM events WHERE position = ?').pluck();
const WIDTH = 256;
const HASH = 32;
const CHECKPOINT_SUFFIX = '"type":"CheckpointSigned"}';
const node = Buffer.alloc(1 + 2 * HASH);
node[0] = 1;
const work = Buffer.alloc(WIDTH * HASH);
const leaf = Buffer.alloc(HASH);

// Tiles are copied into one buffer per level, kept for the thread's life, and handed out as views of it:
// the Buffer SQLite returns for each tile then dies young. Held in a map for the whole chunk, those Buffers
// outlived the young generation, and their bytes (memory outside V8's heap, freed only by a full
// collection) grew by 0.5 MiB per chunk of the scrub: 36 MiB over 1,200,000 events.
const slabs = [Buffer.alloc(0), Buffer.alloc(0)];
function tilesOf(level, from, to) {
  const tiles = new Map();
  const size = WIDTH * HASH;
  if (slabs[level].length < (to - from) * size) slabs[level] = Buffer.alloc((to - from) * size);
  const slab = slabs[level];
  for (const [idx, bytes] of selectTiles.iterate(level, from, to)) {
    const at = (idx - from) * size;
    // A tile longer than a full one (altered) is kept as read, so that its length still tells.
    if (bytes.length > size) tiles.set(idx, bytes);
    else tiles.set(idx, slab.subarray(at, at + bytes.copy(slab, at)));
  }
  return tiles;
}
// RFC 6962 MTH of the 256 hashes of a full tile: the node the next tile level up stores. Hashes come
// back as 32-character latin1 strings (one char per byte): far cheaper than a Buffer per call.
function fold(tile) {
  tile.copy(work, 0, 0, WIDTH * HASH);
  for (let w = WIDTH; w > 1; w /= 2) {
    for (let j = 0; j < w / 2; j++) {
      work.copy(node, 1, 2 * j * HASH, (2 * j + 2) * HASH);
      work.write(hash('sha256', node, 'latin1'), j * HASH, HASH, 'latin1');
    }
  }
  return work;
}

function run(m) {
  const findings = [];
  let findingCount = 0;
  const add = (f) => {
    findingCount++;
    if (findings.length < m.maxFindings) findings.push(f);
  };
  const checkpoints = [];
  const firstTile = Math.floor(m.from / WIDTH);
  const level0 = tilesOf(0, firstTile, Math.ceil(m.to / WIDTH));
  let next = m.from;
  let checked = 0;
  // Small reads: rows die young, which keeps the garbage collector cheap (and a background thread's
  // young generation small).
  const step = workerData.rowsPerRead;
  for (let f = m.from; f < m.to; f += step) {
    const rows = selectRows.all(f, Math.min(m.to, f + step));
    for (let k = 0; k < rows.length; k++) {
      const position = rows[k][0];
      const serial = rows[k][1];
      const text = rows[k][2];
      if (position !== next) add({ code: 'ROW_MISSING', check: 'leaf', position: next, serial: null, expected: next, calculated: position });
      next = position + 1;
      leaf.write(hash('sha256', text, 'latin1'), 0, HASH, 'latin1');
      checked++;
      const tile = level0.get(Math.floor(position / WIDTH));
      const at = (position % WIDTH) * HASH;
      if (tile === undefined || tile.length < at + HASH) {
        add({ code: 'TILE_MISSING', check: 'leaf', position, serial, expected: null, calculated: leaf.toString('hex'), level: 0 });
      } else if (leaf.compare(tile, at, at + HASH) !== 0) {
        add({ code: 'LEAF_MISMATCH', check: 'leaf', position, serial, expected: tile.toString('hex', at, at + HASH), calculated: leaf.toString('hex') });
      }
      if (text.endsWith(CHECKPOINT_SUFFIX)) checkpoints.push({ position, serial, envelope: text.slice(1) });
    }
  }
  if (next < m.to) add({ code: 'ROW_MISSING', check: 'leaf', position: next, serial: null, expected: next, calculated: null });
  // Every full level-0 tile inside the range against the node one level up: the stored tree is then
  // what its leaves make, level by level (the levels above are few; the main thread checks them).
  const endFull = Math.floor(m.to / WIDTH);
  if (endFull > firstTile) {
    const level1 = tilesOf(1, Math.floor(firstTile / WIDTH), Math.floor((endFull - 1) / WIDTH) + 1);
    for (let t = firstTile; t < endFull; t++) {
      const tile = level0.get(t);
      if (tile === undefined || tile.length !== WIDTH * HASH) continue; // already a TILE_MISSING per leaf
      const up = level1.get(Math.floor(t / WIDTH));
      const at = (t % WIDTH) * HASH;
      const calculated = fold(tile).toString('hex', 0, HASH);
      if (up === undefined || up.length < at + HASH) {
        add({ code: 'TILE_MISSING', check: 'tile', position: t * WIDTH, serial: selectSerial.get(t * WIDTH) ?? null, expected: null, calculated, level: 1 });
      } else if (work.compare(up, at, at + HASH, 0, HASH) !== 0) {
        add({ code: 'TILE_MISMATCH', check: 'tile', position: t * WIDTH, serial: selectSerial.get(t * WIDTH) ?? null, expected: up.toString('hex', at, at + HASH), calculated, level: 1 });
      }
    }
  }
  findings.sort((a, b) => a.position - b.position);
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  return { id: m.id, from: m.from, to: m.to, checked, findings, findingCount, checkpoints, youngGenerationBytes: young ? young.space_size : 0 };
}

parentPort.on('message', (m) => {
  try {
    parentPort.postMessage(run(m));
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e) });
  }
});
`;

/**
 * A background check (the hub's scrub after a start, an operator's run beside live traffic) is bounded in
 * memory, whatever the length of the log (I11): one thread, V8's young generation of 2 MiB in it, SQLite's
 * page cache of 1 MiB for its connection (no file mapping), rows read 256 at a time. Measured alone on a
 * 1,000,000-person log (bench/support/population-scrub.ts): it adds ≈ 20 MiB of RSS, where two threads
 * with 8 MiB young generations and SQLite's default 16 MiB caches added ≈ 85 MiB.
 */
export const BACKGROUND_YOUNG_GENERATION_MB = 2;
export const BACKGROUND_CACHE_KIB = 1024;
export const BACKGROUND_ROWS_PER_READ = 256;

export interface StoredLogWorkersOptions {
  readonly path: string;
  /** Threads for a check in the foreground; a background one (lowPriority) takes one, bounded in memory. */
  readonly threads: number;
  /** Run the threads at the lowest CPU priority (nice 19, Linux), for checks beside live traffic. */
  readonly lowPriority?: boolean;
}

/**
 * A pool of threads that each read their range of a ledger file (read-only) and re-hash it against the
 * stored tree. After the auditor's chunk workers (apps/auditor/src/verify/chunk-worker.ts), reduced to
 * what a hub needs to check its own file: leaves and tiles, no envelope parsing.
 */
export class StoredLogWorkers {
  private readonly workers: Worker[];
  private readonly idle: Worker[];
  private readonly queue: { request: RangeRequest & { id: number }; resolve: (r: RangeResult) => void; reject: (e: Error) => void }[] = [];
  private readonly busy = new Map<Worker, { resolve: (r: RangeResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private closed = false;
  /** Threads in the pool: `threads` as asked, or one for a background check. */
  readonly threads: number;

  constructor(options: StoredLogWorkersOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // A check in the foreground maps the file (fastest); a background one (the hub's scrub of a long log)
    // reads through SQLite's bounded page cache instead, so that the hub's resident memory does not take
    // on the pages of the whole file it goes through (I11).
    const lowPriority = options.lowPriority === true;
    const workerData = {
      path: options.path,
      driver,
      mmapBytes: lowPriority ? 0 : 1 << 30,
      cacheKiB: lowPriority ? BACKGROUND_CACHE_KIB : 16_384,
      rowsPerRead: lowPriority ? BACKGROUND_ROWS_PER_READ : 1024,
      lowPriority,
    };
    // A background scrub's thread also keeps a small young generation: each thread is a V8 heap of its
    // own, and with 64 MiB each the scrub of a 3,000,000-event log took the hub from ≈ 470 to ≈ 620 MiB.
    const youngMb = lowPriority ? BACKGROUND_YOUNG_GENERATION_MB : 64;
    const threads = lowPriority ? 1 : Math.max(1, options.threads);
    this.threads = threads;
    this.workers = Array.from({ length: threads }, () => (lowPriority ? withoutSemiSpaceFlag : (f: () => Worker) => f())(() => new Worker(WORKER_SOURCE, { eval: true, workerData, resourceLimits: { maxYoungGenerationSizeMb: youngMb } })));
    this.idle = [...this.workers];
    for (const w of this.workers) {
      w.on('message', (m: RangeResult & { error?: string }) => {
        const job = this.busy.get(w);
        this.busy.delete(w);
        this.idle.push(w);
        if (m.error !== undefined) job?.reject(new Error(`self-check worker failed: ${m.error}`));
        else job?.resolve(m);
        this.pump();
      });
      w.on('error', (e) => {
        const job = this.busy.get(w);
        this.busy.delete(w);
        job?.reject(e);
      });
      w.on('exit', () => {
        const job = this.busy.get(w);
        this.busy.delete(w);
        job?.reject(new Error('self-check worker exited'));
      });
    }
  }

  run(request: RangeRequest): Promise<RangeResult> {
    if (this.closed) return Promise.reject(new Error('the self-check workers are closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ request: { ...request, id: this.nextId++ }, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('self-check workers closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job);
      w.postMessage(job.request);
    }
  }
}

/**
 * The process's V8 flag --max-semi-space-size (MiB) as given on its command line (`node --max-semi-space-size=64 …`,
 * as the hub is run), else 0 (V8's own sizing). A value given only in NODE_OPTIONS is not seen here: after a
 * background check starts, workers made later in the process then size their young generation themselves.
 */
export function processSemiSpaceFlag(argv: readonly string[] = process.execArgv): number {
  let flag = 0;
  for (let i = 0; i < argv.length; i++) {
    const m = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/.exec(argv[i]!);
    if (m === null) continue;
    const value = Number(m[1] ?? argv[i + 1]);
    if (Number.isSafeInteger(value) && value >= 0) flag = value;
  }
  return flag;
}

/**
 * Makes a worker whose young generation is the one its resourceLimits ask for. V8's flag
 * --max-semi-space-size (the hub runs with 64 MiB semi-spaces, `npm run start:hub`) is process-wide and,
 * where set, overrides a worker's maxYoungGenerationSizeMb: a scrub thread then grew its young generation to
 * 3 × 64 MiB like the main thread's. The flag is cleared while the worker's heap is made (until it is online)
 * and then set back to the process's value; the main thread's heap, configured at start, keeps its own.
 */
let clearedFor = 0;
export function withoutSemiSpaceFlag(make: () => Worker): Worker {
  const flag = processSemiSpaceFlag();
  if (clearedFor++ === 0) setFlagsFromString('--max-semi-space-size=0');
  let worker: Worker;
  try {
    worker = make();
  } catch (error) {
    if (--clearedFor === 0) setFlagsFromString(`--max-semi-space-size=${flag}`);
    throw error;
  }
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    if (--clearedFor === 0) setFlagsFromString(`--max-semi-space-size=${flag}`);
  };
  worker.once('online', restore);
  worker.once('error', restore);
  worker.once('exit', restore);
  return worker;
}
