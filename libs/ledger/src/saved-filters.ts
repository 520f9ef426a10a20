import type Database from 'better-sqlite3';
import { BloomFilter, type BloomFilterOptions, type SavedFilter } from './bloom-filter.js';

/**
 * The ledger's Bloom filters (stream ids, idempotency keys, claims) saved in its file at a clean close, so
 * that the next open loads them instead of reading every stream id and key of the log (I11: the start does
 * not grow with the log). They are taken out of the file as the store opens: a run that ends without a
 * clean close (a crash, kill -9) leaves none, and the next open rebuilds them from the log as before. A
 * saved filter is used only when the log (or the key tables) is where it was when the filter was saved,
 * and when it has the size and probes the store is opened with.
 */
export const SAVED_FILTERS_DDL = `
CREATE TABLE IF NOT EXISTS ledger_saved_filters (
  name    TEXT    PRIMARY KEY,
  through INTEGER NOT NULL,
  hashes  INTEGER NOT NULL,
  count   INTEGER NOT NULL,
  bits    BLOB    NOT NULL
) STRICT;
`;

export interface StoredFilter extends SavedFilter {
  /** Where the log (or the key tables) stood when the filter was saved. */
  readonly through: number;
}

/** The filters saved at the last clean close, removed from the file in the same transaction. */
export function takeSavedFilters(db: Database.Database): Map<string, StoredFilter> {
  db.exec(SAVED_FILTERS_DDL);
  return db.transaction(() => {
    // Filters that grew with the log, saved by earlier builds: never of a fixed size, so rebuilt instead.
    db.exec('DROP TABLE IF EXISTS ledger_filters');
    const rows = db.prepare('SELECT name, through, hashes, count, bits FROM ledger_saved_filters').all() as { name: string; through: number; hashes: number; count: number; bits: Buffer }[];
    if (rows.length > 0) db.prepare('DELETE FROM ledger_saved_filters').run();
    return new Map(rows.map((r) => [r.name, { through: r.through, hashes: r.hashes, count: r.count, bits: r.bits }]));
  })();
}

/** The saved filter `name` when it was saved at `through` with the size and probes of `options`, else undefined (rebuild it). */
export function restoreFilter(saved: ReadonlyMap<string, StoredFilter>, name: string, through: number, options: BloomFilterOptions = {}): BloomFilter | undefined {
  const stored = saved.get(name);
  return stored === undefined || stored.through !== through ? undefined : BloomFilter.restore(stored, options);
}

/** Saves the filters at a clean close (nothing may write the log or its key tables after this). */
export function saveFilters(db: Database.Database, filters: readonly { readonly name: string; readonly through: number; readonly filter: BloomFilter }[]): void {
  db.exec(SAVED_FILTERS_DDL);
  const insert = db.prepare('INSERT OR REPLACE INTO ledger_saved_filters (name, through, hashes, count, bits) VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (const { name, through, filter } of filters) {
      const { hashes, count, bits } = filter.save();
      insert.run(name, through, hashes, count, bits);
    }
  })();
}
