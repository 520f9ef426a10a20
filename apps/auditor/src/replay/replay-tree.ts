import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '#audit-log';
import { MerkleTreeProjection, TileTable } from '#ledger';
import { AuditorError } from '../errors.js';

export interface ProjectionDiff {
  readonly projection: 'merkle-tree';
  readonly ok: boolean;
  readonly liveSize: number;
  readonly rebuiltSize: number;
  readonly liveRootHex: string | null;
  readonly rebuiltRootHex: string | null;
  /** Tiles (level, index) whose stored hashes differ from the rebuilt ones, or are missing. */
  readonly differingTiles: readonly { readonly level: number; readonly idx: number }[];
  readonly differingCheckpoints: readonly number[];
}

const tiles = (db: Database.Database) =>
  new Map((db.prepare('SELECT level, idx, hashes FROM tree_tiles').all() as { level: number; idx: number; hashes: Buffer }[]).map((t) => [`${t.level}/${t.idx}`, t]));
const checkpoints = (db: Database.Database) => new Map((db.prepare('SELECT size, note FROM tree_checkpoints').all() as { size: number; note: string }[]).map((c) => [c.size, c.note]));

/**
 * Rebuilds the Merkle tree projection from the log into a fresh scratch store, up to the live
 * projection's size, and diffs root, every tile and the checkpoint index with the live one (I8).
 * Today the tree is the only projection; the others are added here as they arrive.
 */
export function replayTree(path: string): ProjectionDiff {
  const live = new Database(path, { readonly: true, fileMustExist: true });
  const scratch = mkdtempSync(join(tmpdir(), 'auditor-replay-'));
  try {
    if (!TileTable.exists(live)) throw new AuditorError('SOURCE_UNREADABLE', `${path} has no tree projection to compare (the hub has not run on it)`);
    // State, tiles and checkpoint index in one read transaction: the hub's writer changes all three in each
    // commit, so read apart they belong to different sizes (tiles a batch ahead of the state).
    const read = live.transaction(() => ({
      state: live.prepare('SELECT size, root FROM tree_state WHERE id = 1').get() as { size: number; root: Buffer } | undefined,
      theirs: tiles(live),
      theirsCp: checkpoints(live),
    }));
    const { state, theirs, theirsCp } = read();
    const liveSize = state?.size ?? 0;
    const rebuilt = new MerkleTreeProjection({ source: path, target: join(scratch, 'tree.sqlite'), stepEvents: 8192 });
    while (rebuilt.size < liveSize && rebuilt.step(Math.min(8192, liveSize - rebuilt.size)) > 0);
    const rebuiltRoot = toHex(rebuilt.root());
    const rebuiltSize = rebuilt.size;
    rebuilt.close();
    const fresh = new Database(join(scratch, 'tree.sqlite'), { readonly: true });
    const mine = tiles(fresh);
    const differingTiles: { level: number; idx: number }[] = [];
    for (const [key, t] of new Map([...theirs, ...mine])) {
      const a = mine.get(key);
      const b = theirs.get(key);
      if (a === undefined || b === undefined || !a.hashes.equals(b.hashes)) differingTiles.push({ level: t.level, idx: t.idx });
    }
    const mineCp = checkpoints(fresh);
    const differingCheckpoints = [...new Set([...mineCp.keys(), ...theirsCp.keys()])].filter((s) => mineCp.get(s) !== theirsCp.get(s)).sort((a, b) => a - b);
    fresh.close();
    const liveRootHex = state ? state.root.toString('hex') : null;
    return {
      projection: 'merkle-tree',
      ok: rebuiltSize === liveSize && liveRootHex === rebuiltRoot && differingTiles.length === 0 && differingCheckpoints.length === 0,
      liveSize,
      rebuiltSize,
      liveRootHex,
      rebuiltRootHex: rebuiltRoot,
      differingTiles,
      differingCheckpoints,
    };
  } finally {
    live.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}
