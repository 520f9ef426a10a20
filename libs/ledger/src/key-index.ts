import type Database from 'better-sqlite3';
import type { PlannedBatch } from './append-planner.js';
import { BloomFilter } from './bloom-filter.js';
import type { RecordedEvent } from './envelope.js';

export const KEY_INDEX_DDL = `
CREATE TABLE IF NOT EXISTS idempotency_keys (
  hash     INTEGER NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (hash, position)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims (
  hash     INTEGER NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (hash, position)
) STRICT, WITHOUT ROWID;
`;

export interface KeyIndexOptions {
  /** Keys kept in memory before a slice is moved to the tables. */
  readonly recentLimit?: number;
  /** Events the tables may lag behind the head, bounding the scan at start-up. */
  readonly maxLag?: number;
}

/**
 * The index of unique keys checked on every append: idempotency keys and uniqueness claims.
 *
 * Such keys are random, and inserting random keys into a B-tree in every small commit rewrites a page
 * per key. So recent keys live in memory and move to the tables in large, sorted slices outside the
 * append path. Nothing is lost on a crash: the keys are in the events themselves (metadata.idempotency,
 * claims), and on open every event past `indexed_through` is scanned back into memory.
 * Invariant: every key of an event at a position < indexed_through is in the tables.
 */
export class DeferredKeyIndex {
  /** `k<key>` or `c<claim>` → position; Map order is insertion order, which is position order. */
  private readonly recent = new Map<string, number>();
  private indexedThrough = 0;

  /** Keys not yet moved to the tables (for tests and metrics). */
  get recentCount(): number {
    return this.recent.size;
  }
  private readonly stmt;

  private readonly recentLimit: number;
  private readonly maxLag: number;
  /** Filters over the hashes in the tables: a miss, the common case, then needs no read. */
  private keyFilter: BloomFilter;
  private claimFilter: BloomFilter;

  constructor(db: Database.Database, options: KeyIndexOptions = {}) {
    this.recentLimit = options.recentLimit ?? 131_072;
    this.maxLag = options.maxLag ?? 262_144;
    db.exec(KEY_INDEX_DDL);
    this.stmt = {
      key: db.prepare('SELECT position FROM idempotency_keys WHERE hash = ?').pluck(),
      claim: db.prepare('SELECT position FROM claims WHERE hash = ?').pluck(),
      envelope: db.prepare('SELECT envelope FROM events WHERE position = ?').pluck(),
      keyHashes: db.prepare('SELECT hash FROM idempotency_keys').pluck(),
      claimHashes: db.prepare('SELECT hash FROM claims').pluck(),
      keyCount: db.prepare('SELECT count(*) FROM idempotency_keys').pluck(),
      claimCount: db.prepare('SELECT count(*) FROM claims').pluck(),
      getThrough: db.prepare(`SELECT value FROM ledger_meta WHERE key = 'keys_indexed_through'`).pluck(),
      unindexed: db
        .prepare(
          `SELECT position, json_extract(envelope, '$.metadata.idempotency.key') AS key, json_extract(envelope, '$.claims') AS claims
             FROM events WHERE position >= ? AND (key IS NOT NULL OR claims IS NOT NULL) ORDER BY position`,
        )
        .raw(),
    };
    this.keyFilter = this.loadFilter(this.stmt.keyCount, this.stmt.keyHashes);
    this.claimFilter = this.loadFilter(this.stmt.claimCount, this.stmt.claimHashes);
    this.indexedThrough = Number(this.stmt.getThrough.get() ?? 0);
    for (const [position, key, claims] of this.stmt.unindexed.iterate(this.indexedThrough) as Iterable<[number, string | null, string | null]>) {
      if (key !== null) this.recent.set(`k${key}`, position);
      if (claims !== null) for (const c of JSON.parse(claims) as string[]) this.recent.set(`c${c}`, position);
    }
  }

  /** Position of the first event of the append that used this key. */
  keyPosition(key: string): number | undefined {
    const recent = this.recent.get(`k${key}`);
    if (recent !== undefined) return recent;
    // The tables hold a 53-bit hash, not the key: small rows, fewer pages rewritten per flush.
    // A hash hit is confirmed against the event itself, so a collision can never be mistaken for a match.
    const hash = keyHash(key);
    if (!this.keyFilter.mayContain(hash) || this.stmt.key.get(hash) === undefined) return undefined;
    for (const position of this.stmt.key.all(hash) as number[]) {
      const event = JSON.parse(this.stmt.envelope.get(position) as string) as RecordedEvent;
      if (event.metadata.idempotency?.key === key) return position;
    }
    return undefined;
  }

  claimHeld(claim: string): boolean {
    if (this.recent.has(`c${claim}`)) return true;
    const hash = keyHash(claim);
    if (!this.claimFilter.mayContain(hash) || this.stmt.claim.get(hash) === undefined) return false;
    for (const position of this.stmt.claim.all(hash) as number[]) {
      const event = JSON.parse(this.stmt.envelope.get(position) as string) as RecordedEvent;
      if (event.claims?.includes(claim)) return true;
    }
    return false;
  }

  /** Record the keys of a planned batch. They count as held at once, before the batch is durable. */
  add(batch: PlannedBatch): void {
    for (const k of batch.idempotency) this.recent.set(`k${k.key}`, k.record.result.firstPosition);
    for (const c of batch.claims) this.recent.set(`c${c.claim}`, c.position);
  }

  /** Forget the keys of events at `position` or later: their batches were never written. */
  discardFrom(position: number): void {
    for (const [tagged, at] of this.recent) if (at >= position) this.recent.delete(tagged);
  }

  /**
   * When memory or lag is over its bound, the writes that move keys of durable events (positions below
   * `durableHead`) to the tables, to run in a transaction of their own; then call `completeFlush`.
   * One large flush, sorted by hash, rewrites each table page about once; many small ones would rewrite
   * a page per key. The pause it costs the writer is rare (once per `recentLimit` keys).
   */
  takeFlush(durableHead: number, force = false): KeyFlush | undefined {
    if (!force && this.recent.size <= this.recentLimit && durableHead - this.indexedThrough <= this.maxLag) return undefined;
    const moved: [string, number][] = [];
    // The first entry left in memory bounds what the tables now hold completely.
    let through = durableHead;
    for (const entry of this.recent) {
      if (entry[1] >= durableHead) {
        through = entry[1];
        break;
      }
      moved.push(entry);
    }
    const keys: [number, number][] = [];
    const claims: [number, number][] = [];
    for (const [tagged, position] of moved) (tagged[0] === 'k' ? keys : claims).push([keyHash(tagged.slice(1)), position]);
    keys.sort((a, b) => a[0] - b[0]);
    claims.sort((a, b) => a[0] - b[0]);
    return {
      moved,
      through,
      writes: [
        { sql: 'INSERT OR IGNORE INTO idempotency_keys (hash, position) VALUES (?, ?)', rows: keys },
        { sql: 'INSERT OR IGNORE INTO claims (hash, position) VALUES (?, ?)', rows: claims },
        { sql: `INSERT INTO ledger_meta (key, value) VALUES ('keys_indexed_through', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, rows: [[String(through)]] },
      ],
    };
  }

  /** The writes of `flush` are durable: drop the moved keys from memory. */
  completeFlush(flush: KeyFlush): void {
    // Filters first: a key MUST stay findable at every moment, in memory or through the filter.
    for (const [hash] of flush.writes[0]!.rows as [number, number][]) this.keyFilter.add(hash);
    for (const [hash] of flush.writes[1]!.rows as [number, number][]) this.claimFilter.add(hash);
    if (this.keyFilter.needsGrowth) this.keyFilter = this.loadFilter(this.stmt.keyCount, this.stmt.keyHashes);
    if (this.claimFilter.needsGrowth) this.claimFilter = this.loadFilter(this.stmt.claimCount, this.stmt.claimHashes);
    for (const [tagged, position] of flush.moved) if (this.recent.get(tagged) === position) this.recent.delete(tagged);
    this.indexedThrough = flush.through;
  }

  private loadFilter(count: Database.Statement, hashes: Database.Statement): BloomFilter {
    const filter = new BloomFilter(Math.max(1 << 20, 2 * (count.get() as number)));
    for (const hash of hashes.iterate() as Iterable<number>) filter.add(hash);
    return filter;
  }
}

/** SQL writes that commit together: each statement runs once per row. */
export interface WriteOp {
  readonly sql: string;
  readonly rows: readonly (readonly unknown[])[];
}

export interface KeyFlush {
  readonly moved: readonly [string, number][];
  readonly through: number;
  readonly writes: readonly WriteOp[];
}

/** A 53-bit hash (two FNV-1a variants over UTF-16 units); an index key only, never trusted alone. */
export function keyHash(text: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0) * 0x200000 + ((b >>> 0) >>> 11);
}
