import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { canonicalize, type RecordedEvent } from '#ledger';
import { ProjectionError } from './errors.js';

export interface SqliteFoldOptions {
  readonly path: string;
  /** `readonly`: open an existing file without changing it (the auditor compares it with a rebuild). */
  readonly readonly?: boolean;
}

/** What a projection file is: its name in messages, its layout version, its tables. */
export interface SqliteFoldShape {
  /** e.g. "the notice inbox". */
  readonly name: string;
  readonly layoutVersion: number;
  /** CREATE … IF NOT EXISTS of its tables (the meta table `fold_meta` is created here). */
  readonly ddl: string;
  /** The tables a reset (or another layout version) empties. */
  readonly tables: readonly string[];
  /**
   * Every row in a canonical order (a SELECT … ORDER BY a unique key), and the column that names a row:
   * what the digest covers and what an auditor's diff walks.
   */
  readonly rows: { readonly query: string; readonly key: string };
}

/** One row of a projection file as `rows()` reads it. */
export type FoldRow = Readonly<Record<string, unknown>>;

/** Batches that changed no row, at most, between two writes of the checkpoint. */
const UNWRITTEN_BATCHES = 1000;

/**
 * A projection in its own SQLite file with a stored checkpoint (I8): events are applied in position
 * order, one transaction per batch, those at or before the checkpoint skipped (at-least-once delivery
 * is safe) and a hole after it refused. A file of another layout version is emptied and rebuilt from
 * the log, never misread; opened read-only, it is refused instead.
 */
export abstract class SqliteFold {
  protected readonly db: Database.Database;
  readonly #shape: SqliteFoldShape;
  readonly #checkpoint: Database.Statement;
  readonly #setCheckpoint: Database.Statement;
  readonly #totalChanges: Database.Statement;
  /**
   * The last position applied, when it is ahead of the stored checkpoint: a batch that changed no row (events of
   * types this fold ignores) writes no checkpoint; it is written with the next batch that changes rows, after
   * UNWRITTEN_BATCHES such batches, and at close. A lagging stored checkpoint only means a restart reads those
   * events again, and they change nothing here. Undefined: the stored checkpoint is the position.
   */
  #position: number | undefined;
  #unwrittenBatches = 0;
  #closed = false;

  protected constructor(options: SqliteFoldOptions, shape: SqliteFoldShape) {
    this.#shape = shape;
    const readonly = options.readonly === true;
    this.db = new Database(options.path, readonly ? { readonly: true, fileMustExist: true } : {});
    this.db.pragma('busy_timeout = 5000');
    const layoutOf = (): string | undefined => this.db.prepare(`SELECT value FROM fold_meta WHERE key = 'layout'`).pluck().get() as string | undefined;
    // The layout names the fold too: one projection's file never opens as another's.
    const version = `${shape.name}/${shape.layoutVersion}`;
    if (readonly) {
      let layout: string | undefined;
      try {
        layout = layoutOf();
      } catch (error) {
        this.db.close();
        throw new ProjectionError('LAYOUT_MISMATCH', `${options.path} is not ${shape.name}: ${(error as Error).message}`);
      }
      if (layout !== version) {
        this.db.close();
        throw new ProjectionError('LAYOUT_MISMATCH', `${options.path} has layout ${layout ?? '(none)'} of ${shape.name}; this build reads ${version}`);
      }
    } else {
      this.db.pragma('journal_mode = WAL');
      // A projection, rebuilt from the log when lost: its commits need no fsync of their own.
      this.db.pragma('synchronous = NORMAL');
      this.db.exec('CREATE TABLE IF NOT EXISTS fold_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;');
      const layout = layoutOf();
      // Another layout: its tables may have another shape, so they are dropped (not only emptied) and made anew; the log refills them.
      if (layout !== undefined && layout !== version) this.db.exec(`${shape.tables.map((t) => `DROP TABLE IF EXISTS ${t};`).join(' ')} DELETE FROM fold_meta;`);
      this.db.exec(shape.ddl);
      this.db.prepare(`INSERT OR IGNORE INTO fold_meta (key, value) VALUES ('layout', ?)`).run(version);
    }
    this.#checkpoint = this.db.prepare(`SELECT value FROM fold_meta WHERE key = 'checkpoint'`).pluck();
    this.#setCheckpoint = this.db.prepare(`INSERT INTO fold_meta (key, value) VALUES ('checkpoint', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
    this.#totalChanges = this.db.prepare('SELECT total_changes()').pluck();
  }

  /** Folds one event into the tables (inside the batch's transaction). */
  protected abstract applyEvent(event: RecordedEvent): void;

  async checkpoint(): Promise<number> {
    this.checkOpen();
    return this.appliedPosition;
  }

  /** Position of the last event applied or passed over, -1 before any: ahead of the stored checkpoint at times. */
  protected get appliedPosition(): number {
    return this.#position ?? this.#storedCheckpoint();
  }

  /**
   * For a subclass that moves its checkpoint over events it knows change nothing here without applying them (the
   * lookups' stepOver): the position they reach.
   */
  protected passedOver(position: number): void {
    if (position > this.appliedPosition) this.#position = position;
  }

  /**
   * Synchronous from reading the checkpoint to writing the new one: a follower and a reader catching up
   * at the same time cannot interleave (one applies, the other then skips what is covered).
   */
  async apply(events: readonly RecordedEvent[]): Promise<void> {
    this.checkOpen();
    let last = this.appliedPosition;
    const pending = events.filter((e) => e.position > last);
    if (pending.length === 0) return;
    this.db.transaction(() => {
      const before = this.#totalChanges.get();
      for (const event of pending) {
        if (event.position !== last + 1) throw new ProjectionError('PROJECTION_GAP', `${this.#shape.name} is at position ${last}; the next event handed over is at ${event.position}`);
        last = event.position;
        this.applyEvent(event);
      }
      // Rows changed: the checkpoint goes with them, in the same transaction (I8). None: a read-only transaction.
      if (this.#totalChanges.get() !== before || ++this.#unwrittenBatches >= UNWRITTEN_BATCHES) this.#writeCheckpoint(last);
    })();
    this.#position = last;
  }

  async reset(): Promise<void> {
    this.checkOpen();
    this.db.exec(`${this.#shape.tables.map((t) => `DELETE FROM ${t};`).join(' ')} DELETE FROM fold_meta WHERE key = 'checkpoint';`);
    this.#position = undefined;
    this.#unwrittenBatches = 0;
  }

  #writeCheckpoint(position: number): void {
    this.#setCheckpoint.run(String(position));
    this.#unwrittenBatches = 0;
  }

  /** Every row in canonical order, read lazily (read-only callers: the auditor's diff). */
  *rows(): Generator<FoldRow> {
    this.checkOpen();
    yield* this.db.prepare(this.#shape.rows.query).iterate() as IterableIterator<FoldRow>;
  }

  /** The column that names a row. */
  get rowKey(): string {
    return this.#shape.rows.key;
  }

  /** SHA-256 over every row in canonical order (RFC 8785 text and a newline each): equal files, equal digests. */
  async digest(): Promise<{ readonly rows: number; readonly hex: string }> {
    const hash = createHash('sha256');
    let rows = 0;
    for (const row of this.rows()) {
      hash.update(`${canonicalize(row)!}\n`);
      rows += 1;
    }
    return { rows, hex: hash.digest('hex') };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#position !== undefined && this.#position > this.#storedCheckpoint()) this.#writeCheckpoint(this.#position);
    } finally {
      this.db.close();
    }
  }

  #storedCheckpoint(): number {
    const value = this.#checkpoint.get() as string | undefined;
    return value === undefined ? -1 : Number(value);
  }

  protected checkOpen(): void {
    if (this.#closed) throw new ProjectionError('PROJECTION_CLOSED', `${this.#shape.name} is closed`);
  }
}
