import type Database from 'better-sqlite3';
import type { PlannedBatch } from './append-planner.js';
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

  constructor(
    private readonly db: Database.Database,
    options: KeyIndexOptions = {},
  ) {
    this.recentLimit = options.recentLimit ?? 32_768;
    this.maxLag = options.maxLag ?? 262_144;
    db.exec(KEY_INDEX_DDL);
    this.stmt = {
      key: db.prepare('SELECT position FROM idempotency_keys WHERE hash = ?').pluck(),
      claim: db.prepare('SELECT position FROM claims WHERE hash = ?').pluck(),
      insertKey: db.prepare('INSERT OR IGNORE INTO idempotency_keys (hash, position) VALUES (?, ?)'),
      insertClaim: db.prepare('INSERT OR IGNORE INTO claims (hash, position) VALUES (?, ?)'),
      envelope: db.prepare('SELECT envelope FROM events WHERE position = ?').pluck(),
      getThrough: db.prepare(`SELECT value FROM ledger_meta WHERE key = 'keys_indexed_through'`).pluck(),
      setThrough: db.prepare(`INSERT INTO ledger_meta (key, value) VALUES ('keys_indexed_through', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
      unindexed: db
        .prepare(
          `SELECT position, json_extract(envelope, '$.metadata.idempotency.key') AS key, json_extract(envelope, '$.claims') AS claims
             FROM events WHERE position >= ? AND (key IS NOT NULL OR claims IS NOT NULL) ORDER BY position`,
        )
        .raw(),
    };
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
    if (this.stmt.key.get(hash) === undefined) return undefined;
    for (const position of this.stmt.key.all(hash) as number[]) {
      const event = JSON.parse(this.stmt.envelope.get(position) as string) as RecordedEvent;
      if (event.metadata.idempotency?.key === key) return position;
    }
    return undefined;
  }

  claimHeld(claim: string): boolean {
    if (this.recent.has(`c${claim}`)) return true;
    const hash = keyHash(claim);
    if (this.stmt.claim.get(hash) === undefined) return false;
    for (const position of this.stmt.claim.all(hash) as number[]) {
      const event = JSON.parse(this.stmt.envelope.get(position) as string) as RecordedEvent;
      if (event.claims?.includes(claim)) return true;
    }
    return false;
  }

  /** Record the keys of a batch; call only after the batch committed. */
  add(batch: PlannedBatch): void {
    for (const k of batch.idempotency) this.recent.set(`k${k.key}`, k.record.result.firstPosition);
    for (const c of batch.claims) this.recent.set(`c${c.claim}`, c.position);
  }

  /** Move the oldest keys to the tables when memory or lag is over its bound. Call between batches. */
  maintain(head: number, added: number): void {
    if (this.recent.size > this.recentLimit) this.flush(Math.max(Math.min(4096, this.recentLimit), 2 * added), head);
    else if (head - this.indexedThrough > this.maxLag) this.flush(0, head);
  }

  /** Move `count` of the oldest keys (all with Infinity) to the tables in one transaction. */
  flush(count: number, head: number): void {
    const moved: [string, number][] = [];
    // The first entry left in memory bounds what the tables now hold completely.
    let through = head;
    for (const entry of this.recent) {
      if (moved.length >= count) {
        through = entry[1];
        break;
      }
      moved.push(entry);
    }
    const rows = moved.map(([tagged, position]) => [tagged[0] === 'k', keyHash(tagged.slice(1)), position] as const);
    rows.sort((a, b) => a[1] - b[1]);
    this.db.transaction(() => {
      for (const [isKey, hash, position] of rows) (isKey ? this.stmt.insertKey : this.stmt.insertClaim).run(hash, position);
      this.stmt.setThrough.run(String(through));
    }).immediate();
    for (const [tagged] of moved) this.recent.delete(tagged);
    this.indexedThrough = through;
  }
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
