import type Database from 'better-sqlite3';
import { AuditLogError, type Hash, HASH_SIZE, asHash, isPerfectRange, nodeHash } from '#audit-log';

/**
 * The persisted Merkle tree of the log, as tiles (after transparency-dev's tlog tiles): tile (L, i)
 * holds the hashes of the tree nodes at height 8·L with node indices [256·i, 256·i + 256), in order,
 * 32 bytes each. Only complete nodes are stored, so the last tile of a level may be partial and grows.
 * Any perfect subtree of height h is then the fold of at most 2^(h mod 8) ≤ 128 stored hashes.
 */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 1 << TILE_HEIGHT;

export const TREE_DDL = `
CREATE TABLE IF NOT EXISTS tree_tiles (
  level  INTEGER NOT NULL,
  idx    INTEGER NOT NULL,
  hashes BLOB    NOT NULL,
  PRIMARY KEY (level, idx)
) STRICT;
CREATE TABLE IF NOT EXISTS tree_state (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  size          INTEGER NOT NULL,
  compact_range BLOB    NOT NULL,
  root          BLOB    NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS tree_checkpoints (
  size            INTEGER PRIMARY KEY,
  position        INTEGER NOT NULL,
  time_ms         INTEGER NOT NULL,
  root            BLOB    NOT NULL,
  note            TEXT    NOT NULL
) STRICT;
`;

/** Height of a perfect subtree of `width` leaves (a power of two). */
export function heightOf(width: number): number {
  let h = 0;
  for (let w = width; w > 1; w /= 2) h++;
  return h;
}

/** Number of complete nodes at `height` in a tree of `size` leaves. */
export function nodesAtHeight(size: number, height: number): number {
  return Math.floor(size / 2 ** height);
}

/** Where the node (height, index) lives: tile level, tile index and slot, when height is a tile height. */
export function tileOf(height: number, nodeIndex: number): { level: number; idx: number; slot: number } {
  return { level: height / TILE_HEIGHT, idx: Math.floor(nodeIndex / TILE_WIDTH), slot: nodeIndex % TILE_WIDTH };
}

export type TileReader = (level: number, idx: number) => Uint8Array | undefined;

/**
 * A subtree accessor over tiles for a tree of `size` leaves: MTH of the perfect range [start, end).
 * Throws SUBTREE_RANGE_INVALID for a range that is not a complete node of that tree, and
 * COMPACT_RANGE_INVALID when a tile the range needs is missing or short (a damaged projection).
 */
export function tileSubtreeHash(size: number, readTile: TileReader): (start: number, end: number) => Hash {
  return (start, end) => {
    if (!isPerfectRange(start, end) || end > size) {
      throw new AuditLogError('SUBTREE_RANGE_INVALID', `[${start}, ${end}) is not a complete subtree of a tree of ${size} leaves`);
    }
    const height = heightOf(end - start);
    const base = height - (height % TILE_HEIGHT);
    const count = 2 ** (height - base);
    const first = start / 2 ** base;
    const { level, idx, slot } = tileOf(base, first);
    const tile = readTile(level, idx);
    if (tile === undefined || tile.length < (slot + count) * HASH_SIZE) {
      throw new AuditLogError('COMPACT_RANGE_INVALID', `tree tile (${level}, ${idx}) is missing or too short for subtree [${start}, ${end})`);
    }
    let hashes: Hash[] = [];
    for (let i = 0; i < count; i++) hashes.push(asHash(tile.subarray((slot + i) * HASH_SIZE, (slot + i + 1) * HASH_SIZE)));
    while (hashes.length > 1) {
      const next: Hash[] = [];
      for (let i = 0; i < hashes.length; i += 2) next.push(nodeHash(hashes[i]!, hashes[i + 1]!));
      hashes = next;
    }
    return hashes[0]!;
  };
}

/** Reads stored tiles of a ledger file (the hub's or a rebuilt one); undefined when the tables are absent. */
export class TileTable {
  private readonly select: Database.Statement;
  constructor(db: Database.Database) {
    this.select = db.prepare('SELECT hashes FROM tree_tiles WHERE level = ? AND idx = ?').pluck();
  }

  static exists(db: Database.Database): boolean {
    return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tree_state'`).pluck().get() !== undefined;
  }

  read(level: number, idx: number): Uint8Array | undefined {
    return (this.select.get(level, idx) as Buffer | undefined) ?? undefined;
  }
}
