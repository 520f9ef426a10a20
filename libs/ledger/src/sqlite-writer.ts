import { createRequire } from 'node:module';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { KeyRows, WriteOp } from './key-index.js';
import { WRITER_TREE_SOURCE } from './tree/writer-tree.js';

/** One group-commit batch, flattened for a cheap copy to the writer thread. */
export interface WriterBatch {
  /**
   * `count` events at consecutive positions from `firstPosition`, packed as a few long strings because
   * copying long strings to the writer thread is far cheaper than copying thousands of short ones (and a
   * typed array costs a structured clone several microseconds more). `text` holds
   * `<stream id>\n<stream revision>\n<canonical envelope>\n` per event (none contains a newline: stream
   * ids are names, and canonical JSON escapes control characters), in strings of whole rows kept below
   * V8's large-object size (copying a larger one costs several times more per byte); `serials` holds the
   * 20-digit serials end to end.
   */
  readonly rows: {
    readonly firstPosition: number;
    readonly count: number;
    readonly text: readonly string[];
    readonly serials: string;
  };
  readonly opened: readonly (readonly [string, number])[];
  readonly closed: readonly string[];
  readonly writes: readonly WriteOp[];
}

// Plain JavaScript run by the writer thread (eval'd, so it loads the same way from sources and from dist).
const WRITER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = ' + workerData.synchronous);
db.pragma('busy_timeout = 5000');
if (workerData.cacheKiB !== undefined) db.pragma('cache_size = -' + workerData.cacheKiB);
const INSERT_EVENTS = 'INSERT INTO events (position, stream_id, stream_revision, serial, envelope) VALUES ';
const insertEvent = db.prepare(INSERT_EVENTS + '(?, ?, ?, ?, ?)');
// Rows go in 32 at a time: one statement step per 32 rows instead of per row.
const CHUNK = 32;
const insertChunk = db.prepare(INSERT_EVENTS + Array(CHUNK).fill('(?, ?, ?, ?, ?)').join(', '));
const chunkParams = new Array(5 * CHUNK);
const openSerial = db.prepare('INSERT INTO open_serials (serial, first_position) VALUES (?, ?)');
const closeSerial = db.prepare('DELETE FROM open_serials WHERE serial = ?');
const statements = new Map();
// The Merkle tree, when this ledger keeps one: written in each transaction with the events (writer-tree.ts).
${WRITER_TREE_SOURCE}
const TREE = tree !== undefined;
// Set when the writer cannot write at all (the stored tree does not cover the log): every write is refused.
let fatal;
if (TREE) {
  try { tree.load(); } catch (e) { fatal = String((e && e.message) || e); }
}
function runWrites(writes) {
  for (const op of writes) {
    let s = statements.get(op.sql);
    if (!s) { s = db.prepare(op.sql); statements.set(op.sql, s); }
    for (const row of op.rows) s.run(row);
  }
}
const insertKey = db.prepare('INSERT OR IGNORE INTO idempotency_keys (hash, position) VALUES (?, ?)');
const insertClaim = db.prepare('INSERT OR IGNORE INTO claims (hash, position) VALUES (?, ?)');
const setIndexedThrough = db.prepare("INSERT INTO ledger_meta (key, value) VALUES ('keys_indexed_through', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
// Sorted by hash, so that each page of the key table is rewritten about once per flush.
function insertSorted(statement, hashes, positions) {
  const order = new Uint32Array(hashes.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => hashes[a] - hashes[b]);
  for (let i = 0; i < order.length; i++) statement.run(hashes[order[i]], positions[order[i]]);
}
function writeKeys(k) {
  insertSorted(insertKey, k.keyHashes, k.keyPositions);
  insertSorted(insertClaim, k.claimHashes, k.claimPositions);
  setIndexedThrough.run(String(k.through));
}
function writeBatch(b) {
  const r = b.rows;
  const parts = r.text.length === 1 ? r.text[0].split('\n') : [].concat(...r.text.map((t) => t.slice(0, -1).split('\n')));
  const n = r.count;
  let i = 0;
  for (; i + CHUNK <= n; i += CHUNK) {
    for (let j = 0, k = 0; j < CHUNK; j++) {
      const row = i + j;
      chunkParams[k++] = r.firstPosition + row;
      chunkParams[k++] = parts[3 * row];
      chunkParams[k++] = Number(parts[3 * row + 1]);
      chunkParams[k++] = r.serials.slice(20 * row, 20 * row + 20);
      chunkParams[k++] = parts[3 * row + 2];
    }
    insertChunk.run(chunkParams);
  }
  for (; i < n; i++) {
    insertEvent.run(r.firstPosition + i, parts[3 * i], Number(parts[3 * i + 1]), r.serials.slice(20 * i, 20 * i + 20), parts[3 * i + 2]);
  }
  if (TREE) for (let j = 0; j < n; j++) tree.append(r.firstPosition + j, parts[3 * j + 2]);
  for (const o of b.opened) openSerial.run(o[0], o[1]);
  for (const s of b.closed) closeSerial.run(s);
  runWrites(b.writes);
}
// Messages that arrive while a transaction commits are written together in the next one (group commit
// at the writer too): one fsync for all of them. Each still gets its own reply, after that commit.
const commitAll = db.transaction((messages) => {
  for (const m of messages) {
    if (m.type === 'batch') writeBatch(m.batch);
    else if (m.type === 'keys') writeKeys(m.keys);
    else runWrites(m.writes);
  }
  if (TREE) tree.persist();
});
let queue = [];
let scheduled = false;
let transactions = 0;
let failed = false;
function drain() {
  scheduled = false;
  const messages = queue;
  queue = [];
  try {
    commitAll.immediate(messages);
    if (TREE) tree.committed();
    transactions += 1;
    for (const m of messages) parentPort.postMessage({ type: 'done', id: m.id, transactions });
  } catch (e) {
    failed = true;
    // The transaction rolled back: so does the tree in memory.
    if (TREE) {
      try { tree.load(); } catch (e2) { fatal = String((e2 && e2.message) || e2); }
    }
    for (const m of messages) parentPort.postMessage({ type: 'failed', id: m.id, code: e && e.code, message: String((e && e.message) || e) });
  }
}
parentPort.on('message', (m) => {
  if (m.type === 'close') { if (queue.length > 0) drain(); db.close(); parentPort.postMessage({ type: 'closed' }); return; }
  if (m.type === 'resume') { failed = false; return; }
  if (fatal !== undefined) {
    parentPort.postMessage({ type: 'failed', id: m.id, code: 'TREE_OUT_OF_STEP', message: fatal });
    return;
  }
  if (failed) {
    parentPort.postMessage({ type: 'failed', id: m.id, code: 'EARLIER_BATCH_FAILED', message: 'an earlier batch failed to commit; this one was not written' });
    return;
  }
  queue.push(m);
  if (!scheduled) { scheduled = true; setImmediate(drain); }
});
`;

export class WriteFailedError extends Error {
  readonly code = 'WRITE_FAILED';
  constructor(
    message: string,
    readonly storageCode?: string,
  ) {
    super(`the ledger could not write a batch: ${message}`);
  }
}

/**
 * The ledger's one writer: a thread that owns the write connection and commits batches in the order
 * they are sent. Commits (and their fsyncs) run beside the main thread, which meanwhile plans the next
 * batch. A reply MUST NOT be sent before its transaction committed.
 */
export class SqliteWriter {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private committed = 0;

  /** Transactions the writer committed (each may hold several batches). */
  get transactions(): number {
    return this.committed;
  }
  private closed?: Promise<void>;

  /** With `tree`, the writer keeps the Merkle tree tables in step with the events (writer-tree.ts). */
  constructor(path: string, synchronous: 'FULL' | 'NORMAL', tree = false, cacheKiB?: number) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WRITER_SOURCE, { eval: true, workerData: { path, synchronous, driver, tree, cacheKiB } });
    this.worker.on('message', (m: { type: string; id?: number; code?: string; message?: string; transactions?: number }) => {
      if (m.id === undefined) return;
      if (m.transactions !== undefined) this.committed = m.transactions;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.type === 'done') w?.resolve();
      else w?.reject(new WriteFailedError(m.message ?? 'unknown error', m.code));
    });
    this.worker.on('error', (e) => this.failAll(e));
    this.worker.on('exit', () => this.failAll(new WriteFailedError('the writer thread exited')));
  }

  writeBatch(batch: WriterBatch): Promise<void> {
    return this.send({ type: 'batch', batch });
  }

  write(writes: readonly WriteOp[]): Promise<void> {
    return this.send({ type: 'writes', writes });
  }

  /** Moves keys and claims to the key tables (see DeferredKeyIndex). */
  writeKeys(keys: KeyRows): Promise<void> {
    return this.send({ type: 'keys', keys });
  }

  /** How busy the writer thread's event loop has been (since `previous`, if given): its share of wall time. */
  eventLoopUtilization(previous?: EventLoopUtilization): EventLoopUtilization {
    return this.worker.performance.eventLoopUtilization(previous);
  }

  /** After a failed batch the writer refuses later batches until told to resume. */
  resume(): void {
    this.worker.postMessage({ type: 'resume' });
  }

  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.worker.once('exit', () => resolve());
      this.worker.on('message', (m: { type: string }) => {
        if (m.type === 'closed') void this.worker.terminate();
      });
      this.worker.postMessage({ type: 'close' });
    });
    return this.closed;
  }

  private send(message: object): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  private failAll(error: Error): void {
    for (const w of this.waiting.values()) w.reject(error);
    this.waiting.clear();
  }
}
