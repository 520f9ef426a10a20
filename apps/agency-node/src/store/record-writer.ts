import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** One provision_records row, in the column order of the INSERT below. */
export type RecordRowValues = readonly (string | number | null)[];

// Plain JavaScript run by the writer thread (eval'd, so it loads the same way from sources and from dist).
const WRITER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const insert = db.prepare(
  'INSERT OR IGNORE INTO provision_records (role, serial, query_id, counterpart_agency_id, procedure_code, item_codes, local_id, outcome, reason, ' +
  'answer_digest, answer_size, encrypted, request_digest, response_json, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
// The ids of the rows the INSERT ignored (a line for that role and serial was there already).
const commitAll = db.transaction((messages) => {
  const ignored = [];
  for (const m of messages) if (insert.run(m.row).changes === 0) ignored.push(m.id);
  return ignored;
});
let queue = [];
let scheduled = false;
// Rows that arrive while a transaction commits go into the next one: one fsync for all of them.
function drain() {
  scheduled = false;
  const messages = queue;
  queue = [];
  try {
    const ignored = commitAll.immediate(messages);
    parentPort.postMessage({ type: 'done', ids: messages.map((m) => m.id), ignored });
  } catch (e) {
    parentPort.postMessage({ type: 'failed', ids: messages.map((m) => m.id), message: String((e && e.message) || e) });
  }
}
parentPort.on('message', (m) => {
  if (m.type === 'close') { if (queue.length > 0) drain(); db.close(); parentPort.postMessage({ type: 'closed' }); return; }
  queue.push(m);
  if (!scheduled) { scheduled = true; setImmediate(drain); }
});
`;

export class RecordWriteError extends Error {
  readonly code = 'RECORD_WRITE_FAILED';
  constructor(message: string) {
    super(`the provision record could not be written: ${message}`);
  }
}

/**
 * The provision record's writer for the provider path: a thread with its own connection commits the
 * rows sent to it in group transactions (synchronous=FULL), so the fsync runs beside the main thread
 * and one fsync covers every row that arrived meanwhile. `write` MUST NOT resolve before its row is durable; it
 * tells whether the row was inserted, so that the usual case (a new serial) needs no read of it afterwards.
 */
export class RecordWriter {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve: (inserted: boolean) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #closing = false;
  readonly #exited: Promise<void>;

  constructor(path: string) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WRITER_SOURCE, { eval: true, workerData: { path, driver } });
    this.#worker.on('message', (m: { type: string; ids?: number[]; ignored?: number[]; message?: string }) => {
      if (m.type === 'closed') {
        void this.#worker.terminate();
        return;
      }
      const ignored = m.ignored !== undefined && m.ignored.length > 0 ? new Set(m.ignored) : undefined;
      for (const id of m.ids ?? []) {
        const w = this.#waiting.get(id);
        this.#waiting.delete(id);
        if (m.type === 'done') w?.resolve(ignored?.has(id) !== true);
        else w?.reject(new RecordWriteError(m.message ?? 'unknown error'));
      }
    });
    this.#worker.on('error', (e) => this.#failAll(new RecordWriteError(e.message)));
    this.#exited = new Promise<void>((resolve) =>
      this.#worker.on('exit', () => {
        this.#failAll(new RecordWriteError('the writer thread exited'));
        resolve();
      }),
    );
  }

  /**
   * Resolves once the row is durable: true when it was inserted, false when the INSERT ignored it (a line for its
   * role and serial was stored before, and stays as it was).
   */
  write(row: RecordRowValues): Promise<boolean> {
    if (this.#closing) return Promise.reject(new RecordWriteError('the store is closed'));
    const id = this.#nextId++;
    return new Promise<boolean>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ id, row });
    });
  }

  /** Commits what is queued, then closes the thread's connection and ends the thread; resolves once it has. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#worker.postMessage({ type: 'close' });
    }
    return this.#exited;
  }

  #failAll(error: Error): void {
    for (const w of this.#waiting.values()) w.reject(error);
    this.#waiting.clear();
  }
}
