import type Database from 'better-sqlite3';
import type { PlannedBatch } from './append-planner.js';
import { BloomFilter, type BloomFilterOptions } from './bloom-filter.js';
import { restoreFilter, type StoredFilter } from './saved-filters.js';
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
  /** Size and probes of the filters over the key and claim tables (fixed, whatever the length of the log). */
  readonly filters?: BloomFilterOptions;
}

/**
 * Open-addressing table from 53-bit key hashes to event positions, in typed arrays: no heap object per
 * key, so a few hundred thousand recent keys cost the garbage collector nothing. Several entries may
 * share a hash; a caller confirms a hit against the event itself.
 */
class PositionTable {
  private hashes: Float64Array;
  /** -1 marks an empty slot. */
  private positions: Float64Array;
  private mask: number;
  size = 0;

  constructor(expected: number) {
    let capacity = 1024;
    // At most half full with a quarter to spare, so that a table filled to `expected` never grows.
    while (capacity < 2.5 * expected) capacity *= 2;
    this.hashes = new Float64Array(capacity);
    this.positions = new Float64Array(capacity).fill(-1);
    this.mask = capacity - 1;
  }

  add(hash: number, position: number): void {
    if (2 * (this.size + 1) > this.positions.length) this.grow();
    let i = hash & this.mask;
    while (this.positions[i] !== -1) i = (i + 1) & this.mask;
    this.hashes[i] = hash;
    this.positions[i] = position;
    this.size += 1;
  }

  /** The first position stored under `hash` that `confirm(position, text)` accepts. */
  find(hash: number, confirm: (position: number, text: string) => boolean, text: string): number | undefined {
    for (let i = hash & this.mask; this.positions[i] !== -1; i = (i + 1) & this.mask) {
      if (this.hashes[i] === hash && confirm(this.positions[i]!, text)) return this.positions[i];
    }
    return undefined;
  }

  forEach(f: (hash: number, position: number) => void): void {
    for (let i = 0; i < this.positions.length; i++) if (this.positions[i] !== -1) f(this.hashes[i]!, this.positions[i]!);
  }

  private grow(): void {
    const { hashes, positions } = this;
    this.hashes = new Float64Array(2 * hashes.length);
    this.positions = new Float64Array(2 * positions.length).fill(-1);
    this.mask = this.positions.length - 1;
    this.size = 0;
    for (let i = 0; i < positions.length; i++) if (positions[i] !== -1) this.add(hashes[i]!, positions[i]!);
  }
}

/** Rows for one key table: parallel arrays of hashes and positions. */
interface HashRows {
  readonly hashes: Float64Array;
  readonly positions: Float64Array;
}

/**
 * The index of unique keys checked on every append: idempotency keys and uniqueness claims.
 *
 * Such keys are random, and inserting random keys into a B-tree in every small commit rewrites a page
 * per key. So recent keys live in memory and move to the tables in large, sorted slices outside the
 * append path. Nothing is lost on a crash: the keys are in the events themselves (metadata.idempotency,
 * claims), and on open every event past `indexed_through` is scanned back into memory.
 * Invariant: every key of an event at a position < indexed_through is in the tables.
 *
 * Memory and the tables alike hold a 53-bit hash of each key, never the key: a hit is confirmed
 * against the event itself (in a planned batch, or read from the log), so a collision can never be
 * mistaken for a match. A miss, the common case, is answered by the table and a Bloom filter.
 */
export class DeferredKeyIndex {
  /** Keys and claims of events not yet in the tables. */
  private recentKeys: PositionTable;
  private recentClaims: PositionTable;
  /** Keys and claims being written to the tables: still answered from memory until that is durable. */
  private flushingKeys: PositionTable | undefined;
  private flushingClaims: PositionTable | undefined;
  /** Planned batches not yet known durable, to confirm a hit at a position the log does not hold yet. */
  private planned: PlannedBatch[] = [];
  private indexedThrough = 0;

  /** Keys and claims not yet moved to the tables (for tests and metrics). */
  get recentCount(): number {
    return this.recentKeys.size + this.recentClaims.size + (this.flushingKeys?.size ?? 0) + (this.flushingClaims?.size ?? 0);
  }
  private readonly stmt;

  private readonly recentLimit: number;
  private readonly maxLag: number;
  /**
   * Filters over the hashes in the tables: a miss, the common case, then needs no read. Of a fixed size:
   * past the keys they suit, more hits are false and confirmed (or not) by the tables, never a key missed.
   */
  private readonly keyFilter: BloomFilter;
  private readonly claimFilter: BloomFilter;

  constructor(db: Database.Database, options: KeyIndexOptions = {}, saved: ReadonlyMap<string, StoredFilter> = new Map()) {
    this.recentLimit = options.recentLimit ?? 131_072;
    this.maxLag = options.maxLag ?? 262_144;
    this.recentKeys = new PositionTable(this.recentLimit);
    this.recentClaims = new PositionTable(1024);
    db.exec(KEY_INDEX_DDL);
    this.stmt = {
      key: db.prepare('SELECT position FROM idempotency_keys WHERE hash = ?').pluck(),
      claim: db.prepare('SELECT position FROM claims WHERE hash = ?').pluck(),
      envelope: db.prepare('SELECT envelope FROM events WHERE position = ?').pluck(),
      keyHashes: db.prepare('SELECT hash FROM idempotency_keys').pluck(),
      claimHashes: db.prepare('SELECT hash FROM claims').pluck(),
      getThrough: db.prepare(`SELECT value FROM ledger_meta WHERE key = 'keys_indexed_through'`).pluck(),
      unindexed: db
        .prepare(
          `SELECT position, json_extract(envelope, '$.metadata.idempotency.key') AS key, json_extract(envelope, '$.claims') AS claims
             FROM events WHERE position >= ? AND (key IS NOT NULL OR claims IS NOT NULL) ORDER BY position`,
        )
        .raw(),
    };
    this.indexedThrough = Number(this.stmt.getThrough.get() ?? 0);
    // The filters saved at the last clean close, when the tables are as they were then; else read them all.
    this.keyFilter = restoreFilter(saved, 'idempotency_keys', this.indexedThrough, options.filters) ?? loadFilter(this.stmt.keyHashes, options.filters);
    this.claimFilter = restoreFilter(saved, 'claims', this.indexedThrough, options.filters) ?? loadFilter(this.stmt.claimHashes, options.filters);
    for (const [position, key, claims] of this.stmt.unindexed.iterate(this.indexedThrough) as Iterable<[number, string | null, string | null]>) {
      if (key !== null) this.recentKeys.add(keyHash(key), position);
      if (claims !== null) for (const c of JSON.parse(claims) as string[]) this.recentClaims.add(keyHash(c), position);
    }
  }

  // Made once: a closure per look-up would cost an allocation on the hot path.
  private readonly confirmKey = (position: number, key: string): boolean => this.keyAt(position, key);
  private readonly confirmClaim = (position: number, claim: string): boolean => this.claimAt(position, claim);

  /** Position of the first event of the append that used this key. */
  keyPosition(key: string): number | undefined {
    const hash = keyHash(key);
    const recent = this.recentKeys.find(hash, this.confirmKey, key) ?? this.flushingKeys?.find(hash, this.confirmKey, key);
    if (recent !== undefined) return recent;
    if (!this.keyFilter.mayContain(hash) || this.stmt.key.get(hash) === undefined) return undefined;
    for (const position of this.stmt.key.all(hash) as number[]) if (this.keyAt(position, key)) return position;
    return undefined;
  }

  claimHeld(claim: string): boolean {
    const hash = keyHash(claim);
    if (this.recentClaims.find(hash, this.confirmClaim, claim) !== undefined || this.flushingClaims?.find(hash, this.confirmClaim, claim) !== undefined) return true;
    if (!this.claimFilter.mayContain(hash) || this.stmt.claim.get(hash) === undefined) return false;
    for (const position of this.stmt.claim.all(hash) as number[]) if (this.claimAt(position, claim)) return true;
    return false;
  }

  /** Whether the keyed append starting at `position` used `key`. */
  private keyAt(position: number, key: string): boolean {
    for (const batch of this.planned) {
      for (const k of batch.idempotency) if (k.record.result.firstPosition === position) return k.key === key;
    }
    const event = this.eventAt(position);
    return event?.metadata.idempotency?.key === key;
  }

  private claimAt(position: number, claim: string): boolean {
    for (const batch of this.planned) {
      for (const c of batch.claims) if (c.position === position && c.claim === claim) return true;
    }
    return this.eventAt(position)?.claims?.includes(claim) === true;
  }

  private eventAt(position: number): RecordedEvent | undefined {
    const text = this.stmt.envelope.get(position) as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as RecordedEvent);
  }

  /** Record the keys of a planned batch. They count as held at once, before the batch is durable. */
  add(batch: PlannedBatch): void {
    for (const k of batch.idempotency) this.recentKeys.add(keyHash(k.key), k.record.result.firstPosition);
    for (const c of batch.claims) this.recentClaims.add(keyHash(c.claim), c.position);
    if (batch.idempotency.length > 0 || batch.claims.length > 0) this.planned.push(batch);
  }

  /** Events below `durableHead` are readable from the log: their planned batches need not be kept. */
  settled(durableHead: number): void {
    while (this.planned.length > 0 && lastPosition(this.planned[0]!) < durableHead) this.planned.shift();
  }

  /** Forget the keys of events at `position` or later: their batches were never written. */
  discardFrom(position: number): void {
    this.recentKeys = keep(this.recentKeys, (p) => p < position, this.recentLimit);
    this.recentClaims = keep(this.recentClaims, (p) => p < position, 1024);
    this.planned = this.planned.filter((b) => lastPosition(b) < position);
  }

  /**
   * When memory or lag is over its bound, the rows that move keys of durable events (positions below
   * `durableHead`) to the tables, for the writer to insert sorted by hash in a transaction of their
   * own; then call `completeFlush`. One large sorted flush rewrites each table page about once; many
   * small ones would rewrite a page per key. The pause it costs the writer is rare (once per
   * `recentLimit` keys).
   */
  takeFlush(durableHead: number, force = false): KeyFlush | undefined {
    if (!force && this.recentKeys.size + this.recentClaims.size <= this.recentLimit && durableHead - this.indexedThrough <= this.maxLag) return undefined;
    const keys = split(this.recentKeys, this.flushingKeys, durableHead);
    const claims = split(this.recentClaims, this.flushingClaims, durableHead);
    this.recentKeys = keys.kept;
    this.recentClaims = claims.kept;
    this.flushingKeys = keys.moving;
    this.flushingClaims = claims.moving;
    // The first entry left in memory bounds what the tables now hold completely.
    const through = Math.min(keys.firstKept, claims.firstKept, durableHead);
    // Into the filters before the rows are durable: until then the keys are also in memory, and a
    // filter hit for a key not (yet) in the tables only costs a read that finds nothing.
    keys.rows.hashes.forEach((h) => this.keyFilter.add(h));
    claims.rows.hashes.forEach((h) => this.claimFilter.add(h));
    return {
      rows: { keyHashes: keys.rows.hashes, keyPositions: keys.rows.positions, claimHashes: claims.rows.hashes, claimPositions: claims.rows.positions, through },
    };
  }

  /** The filters over the tables and where the tables stand, to save at a clean close (after the last flush). */
  filtersToSave(): { readonly name: string; readonly through: number; readonly filter: BloomFilter }[] {
    return [
      { name: 'idempotency_keys', through: this.indexedThrough, filter: this.keyFilter },
      { name: 'claims', through: this.indexedThrough, filter: this.claimFilter },
    ];
  }

  /** The filters over the key and claim tables (their size is fixed at open). */
  get filters(): { readonly keys: BloomFilter; readonly claims: BloomFilter } {
    return { keys: this.keyFilter, claims: this.claimFilter };
  }

  /** The rows of `flush` are durable: memory need not hold them any more. */
  completeFlush(flush: KeyFlush): void {
    this.flushingKeys = undefined;
    this.flushingClaims = undefined;
    this.indexedThrough = flush.rows.through;
  }
}

/** A filter of every hash of a key table (after a run that did not close cleanly): one scan of the table. */
function loadFilter(hashes: Database.Statement, options: BloomFilterOptions | undefined): BloomFilter {
  const filter = new BloomFilter(options);
  for (const hash of hashes.iterate() as Iterable<number>) filter.add(hash);
  return filter;
}

function lastPosition(batch: PlannedBatch): number {
  return batch.events.length === 0 ? -1 : batch.events[batch.events.length - 1]!.event.position;
}

function keep(table: PositionTable, wanted: (position: number) => boolean, expected: number): PositionTable {
  const kept = new PositionTable(expected);
  table.forEach((hash, position) => wanted(position) && kept.add(hash, position));
  return kept;
}

/**
 * Splits recent entries into those of durable events (to move; with any still moving after a failed
 * flush) and the rest (kept in memory), with the first kept position.
 */
function split(recent: PositionTable, stillMoving: PositionTable | undefined, durableHead: number) {
  const kept = new PositionTable(recent.size);
  const moving = new PositionTable(recent.size + (stillMoving?.size ?? 0));
  let firstKept = Infinity;
  recent.forEach((hash, position) => {
    if (position < durableHead) moving.add(hash, position);
    else {
      kept.add(hash, position);
      if (position < firstKept) firstKept = position;
    }
  });
  stillMoving?.forEach((hash, position) => moving.add(hash, position));
  const hashes = new Float64Array(moving.size);
  const positions = new Float64Array(moving.size);
  let n = 0;
  moving.forEach((hash, position) => {
    hashes[n] = hash;
    positions[n++] = position;
  });
  const rows: HashRows = { hashes, positions };
  return { kept, moving, rows, firstKept };
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
