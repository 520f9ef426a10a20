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
  /** Idempotency key → position, and claim → position; Map order is insertion order, which is position order. */
  private readonly recentKeys = new Map<string, number>();
  private readonly recentClaims = new Map<string, number>();
  private indexedThrough = 0;

  /** Keys and claims not yet moved to the tables (for tests and metrics). */
  get recentCount(): number {
    return this.recentKeys.size + this.recentClaims.size;
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
      if (key !== null) this.recentKeys.set(key, position);
      if (claims !== null) for (const c of JSON.parse(claims) as string[]) this.recentClaims.set(c, position);
    }
  }

  /** Position of the first event of the append that used this key. */
  keyPosition(key: string): number | undefined {
    const recent = this.recentKeys.get(key);
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
    if (this.recentClaims.has(claim)) return true;
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
    for (const k of batch.idempotency) this.recentKeys.set(k.key, k.record.result.firstPosition);
    for (const c of batch.claims) this.recentClaims.set(c.claim, c.position);
  }

  /** Forget the keys of events at `position` or later: their batches were never written. */
  discardFrom(position: number): void {
    for (const [key, at] of this.recentKeys) if (at >= position) this.recentKeys.delete(key);
    for (const [claim, at] of this.recentClaims) if (at >= position) this.recentClaims.delete(claim);
  }

  /**
   * When memory or lag is over its bound, the rows that move keys of durable events (positions below
   * `durableHead`) to the tables, for the writer to insert sorted by hash in a transaction of their
   * own; then call `completeFlush`. One large sorted flush rewrites each table page about once; many
   * small ones would rewrite a page per key. The pause it costs the writer is rare (once per
   * `recentLimit` keys).
   */
  takeFlush(durableHead: number, force = false): KeyFlush | undefined {
    if (!force && this.recentCount <= this.recentLimit && durableHead - this.indexedThrough <= this.maxLag) return undefined;
    const keys = movable(this.recentKeys, durableHead);
    const claims = movable(this.recentClaims, durableHead);
    // The first entry left in memory bounds what the tables now hold completely.
    const through = Math.min(keys.firstLeft, claims.firstLeft, durableHead);
    // Into the filters before the rows are durable: until then the keys are still in memory, and a
    // filter hit for a key not (yet) in the tables only costs a read that finds nothing.
    for (let i = 0; i < keys.hashes.length; i++) this.keyFilter.add(keys.hashes[i]!);
    for (let i = 0; i < claims.hashes.length; i++) this.claimFilter.add(claims.hashes[i]!);
    return {
      movedKeys: keys.moved,
      movedClaims: claims.moved,
      rows: { keyHashes: keys.hashes, keyPositions: keys.positions, claimHashes: claims.hashes, claimPositions: claims.positions, through },
    };
  }

  /** The rows of `flush` are durable: drop the moved keys from memory. */
  completeFlush(flush: KeyFlush): void {
    if (this.keyFilter.needsGrowth) this.keyFilter = this.loadFilter(this.stmt.keyCount, this.stmt.keyHashes);
    if (this.claimFilter.needsGrowth) this.claimFilter = this.loadFilter(this.stmt.claimCount, this.stmt.claimHashes);
    const { keyPositions, claimPositions } = flush.rows;
    flush.movedKeys.forEach((key, i) => this.recentKeys.get(key) === keyPositions[i] && this.recentKeys.delete(key));
    flush.movedClaims.forEach((claim, i) => this.recentClaims.get(claim) === claimPositions[i] && this.recentClaims.delete(claim));
    this.indexedThrough = flush.rows.through;
  }

  private loadFilter(count: Database.Statement, hashes: Database.Statement): BloomFilter {
    const filter = new BloomFilter(Math.max(1 << 20, 2 * (count.get() as number)));
    for (const hash of hashes.iterate() as Iterable<number>) filter.add(hash);
    return filter;
  }
}

/** The entries of `recent` below `durableHead`, with their hashes; and the position of the first one left. */
function movable(recent: Map<string, number>, durableHead: number) {
  const moved: string[] = [];
  const at: number[] = [];
  let firstLeft = Infinity;
  recent.forEach((position, key) => {
    if (position < durableHead) {
      moved.push(key);
      at.push(position);
    } else if (position < firstLeft) firstLeft = position;
  });
  const hashes = new Float64Array(moved.length);
  for (let i = 0; i < moved.length; i++) hashes[i] = keyHash(moved[i]!);
  return { moved, hashes, positions: Float64Array.from(at), firstLeft };
}

/** SQL writes that commit together: each statement runs once per row. */
export interface WriteOp {
  readonly sql: string;
  readonly rows: readonly (readonly unknown[])[];
}

/** Rows for the key tables, as typed arrays: one cheap copy to the writer thread, not one per row. */
export interface KeyRows {
  readonly keyHashes: Float64Array;
  readonly keyPositions: Float64Array;
  readonly claimHashes: Float64Array;
  readonly claimPositions: Float64Array;
  /** Every key of an event below this position is in the tables once the rows are durable. */
  readonly through: number;
}

export interface KeyFlush {
  /** The keys and claims the rows hold, in row order. */
  readonly movedKeys: readonly string[];
  readonly movedClaims: readonly string[];
  readonly rows: KeyRows;
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
