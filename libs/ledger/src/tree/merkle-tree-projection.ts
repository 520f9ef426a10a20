import Database from 'better-sqlite3';
import {
  CompactRange,
  type Hash,
  HASH_SIZE,
  checkTreeSize,
  consistencyProof,
  hashesEqual,
  inclusionProof,
  leafHash,
  rootAt,
} from '#audit-log';
import { LedgerError } from '../errors.js';
import { type CheckpointSignedData, isCheckpointEnvelope } from './checkpoint-event.js';
import { TILE_HEIGHT, TILE_WIDTH, TREE_DDL, TileTable, heightOf, nodesAtHeight, tileSubtreeHash } from './tree-tiles.js';

export type TreeProjectionErrorCode = 'TREE_AHEAD_OF_LOG' | 'LOG_GAP' | 'TREE_SIZE_NOT_REACHED' | 'TREE_PROJECTION_CLOSED' | 'TREE_NOT_KEPT' | 'TREE_FED';

/** A failure of the tree projection: the log and the tree disagree, or a size it has not reached. */
export class TreeProjectionError extends LedgerError {
  constructor(
    readonly code: TreeProjectionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface MerkleTreeProjectionOptions {
  /**
   * The ledger file whose events are hashed; opened read-only. Without it the projection is FED: it
   * reads no log itself, the caller hands it the stored envelope texts in position order (`feed`), as
   * it reads them through the event-store port (a log on KurrentDB); `target` then holds the tree.
   */
  readonly source?: string;
  /** The file that holds the tree tables; default: the ledger file itself. Required without `source`. */
  readonly target?: string;
  /** Most events hashed by one `step()`, to bound the time the caller's thread is held. */
  readonly stepEvents?: number;
  /**
   * The ledger's writer keeps the tree in the ledger file itself (`SqliteEventStore` with `tree: true`),
   * in the same transactions as the events: this projection then only reads it. `step()` picks up what
   * the writer committed since (one row) and hashes nothing; `target` and `stepEvents` are not used.
   */
  readonly maintainedByLedger?: boolean;
}

/** A checkpoint recorded in the log (a CheckpointSigned event), as the projection indexed it. */
export interface CheckpointRecord {
  readonly size: number;
  /** Position of the CheckpointSigned event. */
  readonly position: number;
  readonly timeMs: number;
  readonly root: Hash;
  readonly note: string;
}

interface LiveTile {
  idx: number;
  readonly bytes: Buffer;
  /** Hashes held. */
  count: number;
}

const CACHE_LIMIT = 2048;

/**
 * The Merkle tree of the log (I3), kept as a projection OFF the append path: it follows committed
 * events, hashes each stored envelope TEXT (the exact leaf input, never a re-serialisation), keeps the
 * compact range, and persists tiles of node hashes, the compact range and the CheckpointSigned events
 * it saw, in one transaction per step. It serves roots and proofs for every size up to its own, restarts
 * from its persisted state, and rebuilds from the log when that state is missing.
 *
 * A step MUST NOT persist a size whose leaves it has not hashed; persisted state MUST NOT run ahead of
 * the log (a log shorter than the tree is refused at open: events were removed).
 *
 * The hub does not hash here: its ledger's writer thread keeps the same tables in step with the log,
 * in the transactions that write the events (`tree: true`, writer-tree.ts), and the hub opens this
 * class with `maintainedByLedger` to read them. Following a log from outside, as the auditor does with
 * a copy, remains this class's own work.
 */
export class MerkleTreeProjection {
  private readonly source: Database.Database | undefined;
  private readonly target: Database.Database;
  private readonly stepEvents: number;
  private range: CompactRange;
  private readonly live = new Map<number, LiveTile>();
  private readonly dirty = new Set<number>();
  private finished: { level: number; idx: number; bytes: Buffer }[] = [];
  private readonly cache = new Map<string, Uint8Array>();
  private readonly stmt;
  private latest: CheckpointRecord | undefined;
  private closed = false;
  private readonly kept: boolean;
  /** With `maintainedByLedger`: the tree state and latest checkpoint, read in one snapshot. */
  private readonly readKept: () => unknown;

  constructor(options: MerkleTreeProjectionOptions) {
    this.stepEvents = options.stepEvents ?? 2048;
    this.kept = options.maintainedByLedger === true;
    if (options.source === undefined) {
      if (options.target === undefined || this.kept) throw new TypeError('a fed tree projection (no source) needs a target file and cannot be maintained by a ledger');
      this.source = undefined;
    } else {
      this.source = new Database(options.source, { readonly: true, fileMustExist: true });
      this.source.pragma('busy_timeout = 5000');
    }
    if (this.kept) {
      const source = this.source!;
      this.target = source;
      if (!TileTable.exists(source)) {
        source.close();
        throw new TreeProjectionError('TREE_NOT_KEPT', `${options.source} holds no Merkle tree: open its ledger with the tree kept (tree: true) first`);
      }
    } else {
      const sameFile = options.target === undefined || options.target === options.source;
      this.target = new Database(sameFile ? options.source! : options.target!);
      this.target.pragma('journal_mode = WAL');
      // The tree is a projection of the log, rebuilt from it when missing: its commits need not wait for an
      // fsync of their own (the ledger's next FULL commit syncs the shared WAL anyway).
      this.target.pragma('synchronous = NORMAL');
      this.target.pragma('busy_timeout = 5000');
      this.target.exec(TREE_DDL);
    }
    const source = this.source;
    this.stmt = {
      rows: source?.prepare('SELECT position, envelope FROM events WHERE position >= ? ORDER BY position LIMIT ?').raw(),
      head: source?.prepare('SELECT max(position) + 1 FROM events').pluck(),
      envelopes: source?.prepare('SELECT envelope FROM events WHERE position >= ? ORDER BY position LIMIT ?').pluck(),
      serialEnvelopes: source?.prepare('SELECT position, envelope FROM events WHERE serial = ? ORDER BY position'),
      state: this.target.prepare('SELECT size, compact_range, root FROM tree_state WHERE id = 1'),
      saveState: this.target.prepare(
        'INSERT INTO tree_state (id, size, compact_range, root) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET size = excluded.size, compact_range = excluded.compact_range, root = excluded.root',
      ),
      tile: this.target.prepare('SELECT hashes FROM tree_tiles WHERE level = ? AND idx = ?').pluck(),
      saveTile: this.target.prepare('INSERT INTO tree_tiles (level, idx, hashes) VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes'),
      saveCheckpoint: this.target.prepare('INSERT OR IGNORE INTO tree_checkpoints (size, position, time_ms, root, note) VALUES (?, ?, ?, ?, ?)'),
      checkpoint: this.target.prepare('SELECT size, position, time_ms AS timeMs, root, note FROM tree_checkpoints WHERE size = ?'),
      latestCheckpoint: this.target.prepare('SELECT size, position, time_ms AS timeMs, root, note FROM tree_checkpoints ORDER BY size DESC LIMIT 1'),
      firstCheckpointFrom: this.target.prepare('SELECT size, position, time_ms AS timeMs, root, note FROM tree_checkpoints WHERE size >= ? ORDER BY size LIMIT 1'),
    };
    this.readKept = this.target.transaction(() => ({ row: this.stmt.state.get(), latest: this.stmt.latestCheckpoint.get() }));
    this.range = CompactRange.empty();
    if (this.kept) this.refreshKept();
    else this.range = this.load();
  }

  /** Leaves hashed so far: the tree covers positions [0, size). */
  get size(): number {
    return this.range.size;
  }

  /** Whether the caller feeds the stored texts (no source file). */
  get fed(): boolean {
    return this.source === undefined;
  }

  /** Events stored in the log (its head), read now. A fed projection knows no log: its own size. */
  logHead(): number {
    if (this.stmt.head === undefined) return this.range.size;
    return (this.stmt.head.get() as number | null) ?? 0;
  }

  /** Stored envelope texts from `from` (the exact leaf inputs), at most `limit`. */
  envelopes(from: number, limit: number): string[] {
    this.checkOpen();
    return this.sourced(this.stmt.envelopes).all(from, limit) as string[];
  }

  /** The stored envelope texts of one serial, in position order. */
  serialEnvelopes(serial: string): { position: number; envelope: string }[] {
    this.checkOpen();
    return this.sourced(this.stmt.serialEnvelopes).all(serial) as { position: number; envelope: string }[];
  }

  /** Hashes up to `maxEvents` new events and persists the result atomically; returns how many. */
  step(maxEvents: number = this.stepEvents): number {
    this.checkOpen();
    if (this.kept) return this.refreshKept();
    if (this.stmt.rows === undefined) return 0;
    const from = this.range.size;
    const rows = this.stmt.rows.all(from, maxEvents) as [number, string][];
    return this.hash(from, rows);
  }

  /**
   * A fed projection: hashes the stored envelope texts of positions [from, from + texts.length) and
   * persists the result atomically; `from` MUST be the projection's size (texts already hashed are
   * skipped, a text past a hole is refused with LOG_GAP). Returns how many it hashed.
   */
  feed(from: number, texts: readonly string[]): number {
    this.checkOpen();
    if (!this.fed) throw new TreeProjectionError('TREE_FED', 'this tree projection reads its own source file; only a projection without a source is fed');
    const size = this.range.size;
    if (from > size) throw new TreeProjectionError('LOG_GAP', `the tree covers ${size} events; texts from position ${from} would leave a hole`);
    const rows: [number, string][] = [];
    for (let i = size - from; i < texts.length; i++) rows.push([from + i, texts[i]!]);
    return this.hash(size, rows);
  }

  /**
   * Checks a fed projection against the log it follows: a tree larger than the log means events were
   * removed from the log (I1).
   */
  checkAgainstHead(head: number): void {
    if (this.range.size > head) {
      throw new TreeProjectionError(
        'TREE_AHEAD_OF_LOG',
        `the tree covers ${this.range.size} events but the log holds ${head}: events were removed from the log (I1), or the tree file belongs to another log`,
      );
    }
  }

  private sourced<T>(statement: T | undefined): T {
    if (statement === undefined) throw new TreeProjectionError('TREE_FED', 'this tree projection is fed through the event-store port: read the envelopes through the port');
    return statement;
  }

  private hash(from: number, rows: readonly [number, string][]): number {
    if (rows.length === 0) return 0;
    // Only the contiguous prefix is hashed and persisted: the tree never covers a hole in the log.
    let valid = 0;
    while (valid < rows.length && rows[valid]![0] === from + valid) valid++;
    const checkpoints: CheckpointRecord[] = [];
    for (let i = 0; i < valid; i++) {
      const [position, envelope] = rows[i]!;
      this.range.append(leafHash(envelope), this.onNode);
      if (isCheckpointEnvelope(envelope)) checkpoints.push(checkpointRecord(position, envelope));
    }
    if (valid > 0) this.persist(checkpoints);
    if (valid < rows.length) {
      throw new TreeProjectionError('LOG_GAP', `the log has no event at position ${from + valid} (next stored position is ${rows[valid]![0]}); events were removed (I1)`);
    }
    return rows.length;
  }

  /** Steps until the tree covers the whole log as it is now; returns the events hashed. */
  catchUp(): number {
    let total = 0;
    for (let n = this.step(); n > 0; n = this.step()) total += n;
    return total;
  }

  /** The root of the tree of the first `size` leaves. */
  root(size: number = this.size): Hash {
    this.checkSize(size);
    return size === this.size ? this.range.root() : rootAt(size, this.subtreeHash(this.size));
  }

  inclusionProof(index: number, size: number = this.size): Hash[] {
    this.checkSize(size);
    return inclusionProof(index, size, this.subtreeHash(size));
  }

  consistencyProof(size1: number, size2: number = this.size): Hash[] {
    this.checkSize(size2);
    return consistencyProof(size1, size2, this.subtreeHash(size2));
  }

  /** The stored leaf hash of `position` (for locating a tampered event). */
  leafHash(position: number): Hash {
    this.checkSize(position + 1);
    return this.subtreeHash(this.size)(position, position + 1);
  }

  /** The perfect-subtree accessor over the persisted tiles for a tree of `size` ≤ this.size leaves. */
  subtreeHash(size: number): (start: number, end: number) => Hash {
    return tileSubtreeHash(size, (level, idx) => this.readTile(level, idx));
  }

  /** The most recent checkpoint recorded in the log, if any. */
  latestCheckpoint(): CheckpointRecord | undefined {
    return this.latest;
  }

  /** The checkpoint of exactly this size, if one was signed. */
  checkpoint(size: number): CheckpointRecord | undefined {
    return toRecord(this.stmt.checkpoint.get(size));
  }

  /** The first checkpoint whose size is at least `size`. */
  checkpointCovering(size: number): CheckpointRecord | undefined {
    return toRecord(this.stmt.firstCheckpointFrom.get(size));
  }

  /** The compact range (size and perfect subtree roots) as persisted. */
  compactRange(): CompactRange {
    return this.range.clone();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.source?.close();
    if (this.target !== this.source) this.target.close();
  }

  // ---- internals ----

  private readonly onNode = (hash: Hash, start: number, end: number): void => {
    const height = heightOf(end - start);
    if (height % TILE_HEIGHT !== 0) return;
    const level = height / TILE_HEIGHT;
    const index = start / (end - start);
    const idx = Math.floor(index / TILE_WIDTH);
    const slot = index % TILE_WIDTH;
    let tile = this.live.get(level);
    if (tile === undefined || tile.idx !== idx) {
      // The level moves on to a new tile: the one it leaves is complete and is written with this step.
      if (tile !== undefined && this.dirty.has(level)) this.finished.push({ level, idx: tile.idx, bytes: tile.bytes });
      tile = { idx, bytes: Buffer.alloc(TILE_WIDTH * HASH_SIZE), count: 0 };
      this.live.set(level, tile);
    }
    tile.bytes.set(hash, slot * HASH_SIZE);
    tile.count = slot + 1;
    this.dirty.add(level);
  };

  private persist(checkpoints: readonly CheckpointRecord[]): void {
    const root = this.range.root();
    this.target.transaction(() => {
      for (const t of this.finished) this.stmt.saveTile.run(t.level, t.idx, t.bytes);
      for (const level of this.dirty) {
        const tile = this.live.get(level)!;
        this.stmt.saveTile.run(level, tile.idx, tile.bytes.subarray(0, tile.count * HASH_SIZE));
      }
      for (const c of checkpoints) this.stmt.saveCheckpoint.run(c.size, c.position, c.timeMs, c.root, c.note);
      this.stmt.saveState.run(this.range.size, this.range.toBytes(), root);
    }).immediate();
    this.dirty.clear();
    this.finished = [];
    if (checkpoints.length > 0) this.latest = checkpoints.at(-1);
  }

  /** Reads the tree the ledger's writer committed (state and latest checkpoint in one snapshot). */
  private refreshKept(): number {
    const before = this.range.size;
    const { row, latest } = this.readKept() as { row: { size: number; compact_range: Buffer } | undefined; latest: unknown };
    if (row === undefined || row.size <= before) return 0;
    this.range = CompactRange.fromBytes(row.compact_range);
    this.latest = toRecord(latest);
    return row.size - before;
  }

  private readTile(level: number, idx: number): Uint8Array | undefined {
    const tile = this.live.get(level);
    if (tile !== undefined && tile.idx === idx) return tile.bytes.subarray(0, tile.count * HASH_SIZE);
    const key = `${level}/${idx}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const stored = this.stmt.tile.get(level, idx) as Buffer | undefined;
    // Only tiles behind the live one are complete and immutable: those are safe to cache.
    if (stored !== undefined && stored.length === TILE_WIDTH * HASH_SIZE) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, stored);
    }
    return stored;
  }

  /** Loads the persisted state, or rebuilds from nothing when it is missing or does not hold together. */
  private load(): CompactRange {
    // A fed projection is checked against the log by its caller (checkAgainstHead), who reads the log.
    const head = this.fed ? Number.POSITIVE_INFINITY : this.logHead();
    const row = this.stmt.state.get() as { size: number; compact_range: Buffer; root: Buffer } | undefined;
    if (row !== undefined) {
      if (row.size > head) {
        throw new TreeProjectionError(
          'TREE_AHEAD_OF_LOG',
          `the tree covers ${row.size} events but the log holds ${head}: events were removed from the log (I1); run the auditor's verify on this file`,
        );
      }
      const range = this.tryRestore(row);
      if (range !== undefined) return range;
    }
    // Missing or inconsistent state: start over; the log is the only source of truth (I8).
    this.target.transaction(() => {
      this.target.exec('DELETE FROM tree_tiles; DELETE FROM tree_state; DELETE FROM tree_checkpoints;');
    })();
    this.live.clear();
    this.latest = undefined;
    return CompactRange.empty();
  }

  private tryRestore(row: { size: number; compact_range: Buffer; root: Buffer }): CompactRange | undefined {
    let range: CompactRange;
    try {
      range = CompactRange.fromBytes(row.compact_range);
    } catch {
      return undefined;
    }
    if (range.size !== row.size || !hashesEqual(range.root(), row.root)) return undefined;
    for (let level = 0; ; level++) {
      const nodes = nodesAtHeight(row.size, level * TILE_HEIGHT);
      if (nodes === 0) break;
      const idx = Math.floor((nodes - 1) / TILE_WIDTH);
      const stored = this.stmt.tile.get(level, idx) as Buffer | undefined;
      const count = nodes - idx * TILE_WIDTH;
      if (stored === undefined || stored.length !== count * HASH_SIZE) return undefined;
      const bytes = Buffer.alloc(TILE_WIDTH * HASH_SIZE);
      bytes.set(stored);
      this.live.set(level, { idx, bytes, count });
    }
    this.latest = toRecord(this.stmt.latestCheckpoint.get());
    return range;
  }

  private checkSize(size: number): void {
    this.checkOpen();
    checkTreeSize(size);
    if (size > this.size) {
      throw new TreeProjectionError('TREE_SIZE_NOT_REACHED', `tree size ${size} is not reached yet: the tree covers ${this.size} events`);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new TreeProjectionError('TREE_PROJECTION_CLOSED', 'the tree projection is closed');
  }
}

function checkpointRecord(position: number, envelope: string): CheckpointRecord {
  const event = JSON.parse(envelope) as { type: string; data: CheckpointSignedData };
  const d = event.data;
  return { size: d.size, position, timeMs: d.timeMs, root: Buffer.from(d.rootHex, 'hex') as Uint8Array as Hash, note: d.note };
}

function toRecord(row: unknown): CheckpointRecord | undefined {
  if (row === undefined) return undefined;
  const r = row as { size: number; position: number; timeMs: number; root: Buffer; note: string };
  return { size: r.size, position: r.position, timeMs: r.timeMs, root: new Uint8Array(r.root) as Hash, note: r.note };
}
