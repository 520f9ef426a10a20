import Database from 'better-sqlite3';

/** The file of the self-check's verified mark for a log on KurrentDB, under the hub's data dir. */
export const KURRENT_VERIFIED_MARK_FILE = 'self-check.sqlite';

/** Leaves [0, size) re-hashed and found sound: their compact range, and the hash of the last one. */
export interface PortMark {
  readonly size: number;
  /** `CompactRange.toBytes()` of the re-hashed leaves [0, size): a later check resumes from it. */
  readonly frontier: Uint8Array;
  /** Hex leaf hash of the text at `size - 1`, to recognise the log the mark was made on. */
  readonly lastLeafHex: string;
}

/**
 * The self-check's verified mark for a log on KurrentDB (the hub has no ledger file to keep it in, as the
 * SQLite path's VerifiedMark does): a small SQLite file per hub with, per log stream, the size verified,
 * the compact range of the leaves re-hashed below it, and the last leaf's hash. A start check then reads
 * only the texts from the mark on; a scrub re-reads the rest at low priority after start.
 */
export class KurrentVerifiedMark {
  private readonly db: Database.Database;
  private readonly stmt;

  constructor(
    path: string,
    private readonly logStream: string,
  ) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS verified_mark (log_stream TEXT PRIMARY KEY, size INTEGER NOT NULL, frontier BLOB NOT NULL, last_leaf TEXT NOT NULL) STRICT');
    this.stmt = {
      get: this.db.prepare('SELECT size, frontier, last_leaf FROM verified_mark WHERE log_stream = ?'),
      set: this.db.prepare(
        'INSERT INTO verified_mark (log_stream, size, frontier, last_leaf) VALUES (?, ?, ?, ?) ON CONFLICT (log_stream) DO UPDATE SET size = excluded.size, frontier = excluded.frontier, last_leaf = excluded.last_leaf',
      ),
      clear: this.db.prepare('DELETE FROM verified_mark WHERE log_stream = ?'),
    };
  }

  get(): PortMark | undefined {
    const row = this.stmt.get.get(this.logStream) as { size: number; frontier: Buffer; last_leaf: string } | undefined;
    if (row === undefined || !Number.isSafeInteger(row.size) || row.size <= 0) return undefined;
    return { size: row.size, frontier: new Uint8Array(row.frontier), lastLeafHex: row.last_leaf };
  }

  set(mark: PortMark): void {
    this.stmt.set.run(this.logStream, mark.size, Buffer.from(mark.frontier), mark.lastLeafHex);
  }

  clear(): void {
    this.stmt.clear.run(this.logStream);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
