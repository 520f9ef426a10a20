import Database from 'better-sqlite3';
import type { RecordedEvent } from '#ledger';
import { SqliteFold } from '#projections';

/** The batches' progress, a projection of the log (`notice-batches.sqlite`, its own checkpoint, I8). */
export const NOTICE_BATCHES_FILE = 'notice-batches.sqlite';
export const NOTICE_BATCHES_LAYOUT_VERSION = 2;
/** The batches' recipients and fan-out cursors (`notice-batch-recipients.sqlite`): the leader's work list. */
export const NOTICE_BATCH_RECIPIENTS_FILE = 'notice-batch-recipients.sqlite';
export const DEFAULT_NOTICE_BATCH_LIMIT = 50;
export const MAX_NOTICE_BATCH_LIMIT = 500;

const DDL = `
CREATE TABLE IF NOT EXISTS notice_batches (
  batch_id TEXT PRIMARY KEY,
  agency_id TEXT NOT NULL,
  audience TEXT NOT NULL,
  total INTEGER NOT NULL,
  delivered INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  serial TEXT NOT NULL,
  position INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  completed_at TEXT,
  completed_serial TEXT,
  next_seq INTEGER NOT NULL DEFAULT 0,
  ahead INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notice_batch_ahead (batch_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (batch_id, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS notice_batches_by_agency ON notice_batches (agency_id, position);
CREATE INDEX IF NOT EXISTS notice_batches_running ON notice_batches (position) WHERE completed_at IS NULL;
`;

export interface NoticeBatchRow {
  readonly batchId: string;
  readonly agencyId: string;
  readonly audience: 'all' | 'codes';
  readonly total: number;
  readonly delivered: number;
  readonly failed: number;
  readonly serial: string;
  readonly position: number;
  readonly startedAt: string;
  readonly completedAt: string | null;
  readonly completedSerial: string | null;
  /** The log's cursor: every recipient below this place has its event (NoticeSent or NoticeUndelivered) in the log. */
  readonly logged: number;
}

const COLUMNS = 'batch_id AS batchId, agency_id AS agencyId, audience, total, delivered, failed, serial, position, started_at AS startedAt, completed_at AS completedAt, completed_serial AS completedSerial, next_seq AS logged';

/**
 * The place of a batch recipient, as its notice id carries it (notice-batch.fanout.ts): 12 hex digits of
 * a keyed prefix, the place in 12 hex digits, 8 hex digits of a keyed tail, formatted as a UUID. Public
 * (the order of the log positions says as much); undefined for an id of another shape.
 */
export function seqOfBatchNoticeId(noticeId: string): number | undefined {
  const hex = noticeId.replaceAll('-', '');
  if (!/^[0-9a-f]{32}$/.test(hex)) return undefined;
  return Number.parseInt(hex.slice(12, 24), 16);
}

/**
 * Each batch's progress, folded from the log: NoticeBatchStarted adds it, each NoticeSent of the batch
 * (schemaVersion 3, batchId in clear) counts one delivered, each NoticeUndelivered one failed, and
 * NoticeBatchCompleted ends it. Nothing is opened: every field it reads is clear. The ledger refuses a
 * second event on a recipient's notice stream, so the counts are exact even across a resumed fan-out.
 *
 * It also keeps the log's cursor of each batch (`logged`): the first place whose recipient has no event
 * in the log yet, from the place each notice id carries. A fan-out appends chunks in order but several
 * at once, so a place may be recorded before a lower one: such places wait in `notice_batch_ahead` (at
 * most the chunks in flight) until the places below them are recorded. Whichever hub leads resumes a
 * batch from this cursor (NoticeBatchRunner), not from a file of the hub that ran it before.
 */
export class SqliteNoticeBatches extends SqliteFold {
  readonly #stmt;

  constructor(options: { readonly path: string; readonly readonly?: boolean }) {
    super(options, {
      name: 'the notice batches',
      layoutVersion: NOTICE_BATCHES_LAYOUT_VERSION,
      ddl: DDL,
      tables: ['notice_batches', 'notice_batch_ahead'],
      rows: { query: `SELECT ${COLUMNS} FROM notice_batches ORDER BY batch_id`, key: 'batchId' },
    });
    this.#stmt = {
      start: this.db.prepare('INSERT OR IGNORE INTO notice_batches (batch_id, agency_id, audience, total, serial, position, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      // One statement per recipient: the count, and the cursor when this recipient is the next place.
      delivered: this.db.prepare('UPDATE notice_batches SET delivered = delivered + 1, next_seq = next_seq + (next_seq = ?) WHERE batch_id = ? RETURNING next_seq AS next, ahead'),
      failed: this.db.prepare('UPDATE notice_batches SET failed = failed + 1, next_seq = next_seq + (next_seq = ?) WHERE batch_id = ? RETURNING next_seq AS next, ahead'),
      park: this.db.prepare('INSERT OR IGNORE INTO notice_batch_ahead (batch_id, seq) VALUES (?, ?)'),
      unpark: this.db.prepare('DELETE FROM notice_batch_ahead WHERE batch_id = ? AND seq = ?'),
      moved: this.db.prepare('UPDATE notice_batches SET next_seq = ?, ahead = ahead + ? WHERE batch_id = ?'),
      dropAhead: this.db.prepare('DELETE FROM notice_batch_ahead WHERE batch_id = ?'),
      complete: this.db.prepare('UPDATE notice_batches SET completed_at = ?, completed_serial = ? WHERE batch_id = ? AND completed_at IS NULL'),
      one: this.db.prepare(`SELECT ${COLUMNS} FROM notice_batches WHERE batch_id = ?`),
      page: this.db.prepare(`SELECT ${COLUMNS} FROM notice_batches WHERE agency_id = ? AND position < ? ORDER BY position DESC LIMIT ?`),
      running: this.db.prepare(`SELECT ${COLUMNS} FROM notice_batches INDEXED BY notice_batches_running WHERE completed_at IS NULL ORDER BY position`),
    };
  }

  protected applyEvent(event: RecordedEvent): void {
    const d = event.data as Record<string, unknown>;
    switch (event.type) {
      case 'NoticeBatchStarted':
        this.#stmt.start.run(d.batchId, d.agencyId, d.audience, d.total, event.serial, event.position, d.startedAt);
        return;
      case 'NoticeSent':
        if (event.schemaVersion === 3 && typeof d.batchId === 'string') this.#recorded(this.#stmt.delivered, d.batchId, d.noticeId);
        return;
      case 'NoticeUndelivered':
        this.#recorded(this.#stmt.failed, d.batchId as string, d.noticeId);
        return;
      case 'NoticeBatchCompleted':
        this.#stmt.complete.run(d.completedAt, event.serial, d.batchId);
        this.#stmt.dropAhead.run(d.batchId);
        return;
      default:
    }
  }

  /** A recipient's event is in the log: counted, and the batch's cursor moved past every place now recorded below it. */
  #recorded(count: Database.Statement, batchId: string, noticeId: unknown): void {
    const seq = typeof noticeId === 'string' ? seqOfBatchNoticeId(noticeId) : undefined;
    const row = count.get(seq ?? -1, batchId) as { next: number; ahead: number } | undefined;
    if (row === undefined || seq === undefined) return;
    if (row.next === seq + 1) {
      // This place was the next one: the places recorded ahead of it may follow on.
      if (row.ahead === 0) return;
      let next = row.next;
      let taken = 0;
      while (this.#stmt.unpark.run(batchId, next).changes === 1) {
        next += 1;
        taken += 1;
      }
      if (taken > 0) this.#stmt.moved.run(next, -taken, batchId);
    } else if (seq > row.next) {
      if (this.#stmt.park.run(batchId, seq).changes === 1) this.#stmt.moved.run(row.next, 1, batchId);
    }
  }

  batch(batchId: string): NoticeBatchRow | undefined {
    this.checkOpen();
    return this.#stmt.one.get(batchId) as NoticeBatchRow | undefined;
  }

  /** An agency's batches, newest first; `before` is the `next` of the previous page. */
  page(agencyId: string, options: { readonly limit: number; readonly before?: number }): { readonly batches: readonly NoticeBatchRow[]; readonly next?: string } {
    this.checkOpen();
    const rows = this.#stmt.page.all(agencyId, options.before ?? Number.MAX_SAFE_INTEGER, options.limit + 1) as NoticeBatchRow[];
    if (rows.length <= options.limit) return { batches: rows };
    const batches = rows.slice(0, options.limit);
    return { batches, next: String(batches[batches.length - 1]!.position) };
  }

  /** Batches started and not yet completed, oldest first. */
  running(): readonly NoticeBatchRow[] {
    this.checkOpen();
    return this.#stmt.running.all() as NoticeBatchRow[];
  }
}

/** One recipient of a batch: its place, and the person as the code index stores them (undefined: the code named nobody). */
export interface BatchRecipient {
  readonly seq: number;
  readonly subject: Buffer | string | null;
}

/**
 * The leader's work list: each batch's recipients in a fixed order (seq 0..total-1), taken when the
 * batch is accepted (before its NoticeBatchStarted is appended), and a cursor per batch below which every
 * recipient's event is durable in the log. People are kept as the code index keeps them (in the hub's
 * lookup file, enciphered), never in memory beyond one page (I11).
 */
export class NoticeBatchRecipients {
  readonly #db: Database.Database;
  readonly #stmt;

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS recipients (batch_id TEXT NOT NULL, seq INTEGER NOT NULL, subject BLOB, PRIMARY KEY (batch_id, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS cursors (batch_id TEXT PRIMARY KEY, next_seq INTEGER NOT NULL, total INTEGER NOT NULL) WITHOUT ROWID;
    `);
    this.#stmt = {
      insert: this.#db.prepare('INSERT INTO recipients (batch_id, seq, subject) VALUES (?, ?, ?)'),
      cursor: this.#db.prepare('INSERT INTO cursors (batch_id, next_seq, total) VALUES (?, 0, ?)'),
      get: this.#db.prepare('SELECT next_seq AS next, total FROM cursors WHERE batch_id = ?'),
      advance: this.#db.prepare('UPDATE cursors SET next_seq = ? WHERE batch_id = ? AND next_seq < ?'),
      page: this.#db.prepare('SELECT seq, subject FROM recipients WHERE batch_id = ? AND seq >= ? ORDER BY seq LIMIT ?'),
      drop: this.#db.prepare('DELETE FROM recipients WHERE batch_id = ?'),
      dropCursor: this.#db.prepare('DELETE FROM cursors WHERE batch_id = ?'),
      put: this.#db.prepare('INSERT OR REPLACE INTO recipients (batch_id, seq, subject) VALUES (?, ?, ?)'),
      cursorAt: this.#db.prepare('INSERT OR REPLACE INTO cursors (batch_id, next_seq, total) VALUES (?, ?, ?)'),
      batches: this.#db.prepare('SELECT batch_id FROM cursors').pluck(),
    };
  }

  /** Files a list's recipients (stored subjects, null for a code that named nobody), durably, in one transaction. */
  addList(batchId: string, subjects: readonly (Buffer | string | null)[]): number {
    this.#durably(() => {
      subjects.forEach((s, seq) => this.#stmt.insert.run(batchId, seq, s));
      this.#stmt.cursor.run(batchId, subjects.length);
    });
    return subjects.length;
  }

  /**
   * Files everyone holding a code of `agencyId` in the code index at `codeIndexPath` (table agency_codes),
   * in the order of their codes, without passing them through JavaScript; returns how many.
   */
  addAgencyHolders(batchId: string, agencyId: string, codeIndexPath: string): number {
    this.#db.prepare('ATTACH DATABASE ? AS codes').run(codeIndexPath);
    try {
      let total = 0;
      this.#durably(() => {
        total = this.#db
          .prepare('INSERT INTO recipients (batch_id, seq, subject) SELECT ?, row_number() OVER (ORDER BY code) - 1, subject FROM codes.agency_codes WHERE agency_id = ?')
          .run(batchId, agencyId).changes;
        this.#stmt.cursor.run(batchId, total);
      });
      return total;
    } finally {
      this.#db.exec('DETACH DATABASE codes');
    }
  }

  #durably(work: () => void): void {
    // The list must outlive any crash once its batch is in the log: this one commit waits for the disk.
    this.#db.pragma('synchronous = FULL');
    try {
      this.#db.transaction(work)();
    } finally {
      this.#db.pragma('synchronous = NORMAL');
    }
  }

  /**
   * Files recipients `from`, `from + 1`, … of a list taken from elsewhere (another hub's, through the shared
   * store); a place filed before is replaced. The list counts only once `completeImport` files its cursor.
   */
  importPage(batchId: string, from: number, subjects: readonly (Buffer | string | null)[]): void {
    this.#db.transaction(() => subjects.forEach((s, k) => this.#stmt.put.run(batchId, from + k, s)))();
  }

  /** The imported list is whole: its cursor, durably (the fan-out resumes at `next`). */
  completeImport(batchId: string, next: number, total: number): void {
    this.#durably(() => this.#stmt.cursorAt.run(batchId, next, total));
  }

  /** The batches this hub holds a list for. */
  batchIds(): string[] {
    return this.#stmt.batches.all() as string[];
  }

  /** Where the batch's fan-out resumes, and its size; undefined when this hub holds no list for it. */
  cursor(batchId: string): { readonly next: number; readonly total: number } | undefined {
    return this.#stmt.get.get(batchId) as { next: number; total: number } | undefined;
  }

  /** Every recipient below `next` has its event durable in the log. */
  advance(batchId: string, next: number): void {
    this.#stmt.advance.run(next, batchId, next);
  }

  page(batchId: string, from: number, limit: number): BatchRecipient[] {
    return this.#stmt.page.all(batchId, from, limit) as BatchRecipient[];
  }

  /** Forgets a list (a batch that was never appended, or one completed). */
  drop(batchId: string): void {
    this.#db.transaction(() => {
      this.#stmt.drop.run(batchId);
      this.#stmt.dropCursor.run(batchId);
    })();
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
