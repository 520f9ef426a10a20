import Database from 'better-sqlite3';
import { CompactRange, type Hash, HASH_SIZE, asHash, nodeHash, rootAt, toHex, verifyCheckpoint } from '#audit-log';
import { LedgerError } from '../errors.js';
import type { CheckpointSignedData } from './checkpoint-event.js';
import { BACKGROUND_CACHE_KIB, StoredLogWorkers, type RangeResult, type WorkerFinding } from './stored-log-workers.js';
import { TILE_HEIGHT, TILE_WIDTH, TileTable, nodesAtHeight, tileSubtreeHash } from './tree-tiles.js';

/** Which comparison found a problem. */
export type StoredLogCheck = 'leaf' | 'tile' | 'checkpoint' | 'tree' | 'mark';

export type StoredLogFindingCode =
  /** A stored envelope text does not hash to the leaf hash the tree stored when it was written. */
  | 'LEAF_MISMATCH'
  /** A position has no row: events were deleted. */
  | 'ROW_MISSING'
  /** The tree has no stored hash where the log needs one. */
  | 'TILE_MISSING'
  /** A stored tree node is not the hash of the 256 stored nodes below it. */
  | 'TILE_MISMATCH'
  /** A CheckpointSigned event is not JSON or carries no note. */
  | 'CHECKPOINT_MALFORMED'
  /** A checkpoint note does not verify with the hub's key. */
  | 'CHECKPOINT_SIGNATURE_INVALID'
  /** The event's size or root fields differ from its signed note. */
  | 'CHECKPOINT_FIELDS_MISMATCH'
  /** The root of the stored tree at a checkpoint's size differs from the signed root. */
  | 'CHECKPOINT_ROOT_MISMATCH'
  /** The stored tree does not cover exactly the log. */
  | 'TREE_SIZE_MISMATCH'
  /** The stored root (or compact range) differs from the root the stored tiles make. */
  | 'TREE_ROOT_MISMATCH'
  /** The log holds fewer events than an earlier check verified: its tail was removed. */
  | 'LOG_SHORTER_THAN_MARK';

/**
 * One problem, located: the position (null when it concerns no single event) and its serial, and the two
 * values that differ: `expected` is what the tree or the signature holds, `calculated` what the stored
 * bytes make. Only positions, serials and hashes: nothing of an event's data.
 */
export interface StoredLogFinding {
  readonly check: StoredLogCheck;
  readonly code: StoredLogFindingCode;
  readonly position: number | null;
  readonly serial: string | null;
  readonly expected: string | number | null;
  readonly calculated: string | number | null;
  readonly message: string;
  /** For a tree node: the leaves [from, to) under it (`position` is the first). */
  readonly leaves?: readonly [number, number];
}

export interface StoredLogCheckOptions {
  /** A ledger file that keeps its Merkle tree (SqliteEventStore with `tree: true`); opened read-only. */
  readonly path: string;
  /** The raw Ed25519 public key of the hub's checkpoint signer: every CheckpointSigned note MUST verify with it. */
  readonly publicKey: Uint8Array;
  /**
   * Keys the signer rotated to after the first (CheckpointKeyRotated): a note that verifies with any of the
   * hub's keys is sound here; which key may sign which size is the auditor's chain check (libs/audit-log).
   */
  readonly rotatedPublicKeys?: readonly Uint8Array[];
  /** First leaf to re-hash; rounded down to a tile boundary (a multiple of 256). */
  readonly from: number;
  /** End of the leaves to re-hash (exclusive); default and upper bound: the size of the stored tree. */
  readonly to?: number;
  /** Threads of a check in the foreground; a background one (lowPriority) uses one thread (stored-log-workers.ts). */
  readonly threads: number;
  /** Hash at the lowest CPU priority, in one thread of bounded memory: for a check that runs beside live traffic. */
  readonly lowPriority?: boolean;
  /** Called after each chunk: leaves re-hashed so far, of `total`. */
  readonly onProgress?: (checked: number, total: number) => void;
  /** Stops the check between chunks; it then rejects with SELF_CHECK_ABORTED. */
  readonly signal?: AbortSignal;
  /** Findings kept in the report (all are counted); default 20. */
  readonly maxFindings?: number;
}

export interface StoredLogCheckReport {
  /** The leaves re-hashed: [from, to). */
  readonly from: number;
  readonly to: number;
  /** Events in the log and leaves in the stored tree when the check began. */
  readonly head: number;
  readonly treeSize: number;
  readonly checked: number;
  /** Signed checkpoints whose signature and root were checked. */
  readonly checkpoints: number;
  /** The first findings, in position order (see byFindingPosition). */
  readonly findings: readonly StoredLogFinding[];
  readonly findingCount: number;
  readonly seconds: number;
}

export class StoredLogCheckError extends LedgerError {
  constructor(
    readonly code: 'SELF_CHECK_ABORTED' | 'TREE_NOT_KEPT',
    message: string,
  ) {
    super(message);
  }
}

/** Leaves per chunk handed to a worker: a multiple of the tile width. */
const CHUNK_LEAVES = 1 << 14;

const MESSAGES: Record<StoredLogFindingCode, string> = {
  LEAF_MISMATCH: "the stored event text does not hash to the leaf hash the tree stored when it was written: the event was altered after it was written (or the tree's leaf tile was)",
  ROW_MISSING: 'the log has no event at this position: events were deleted',
  TILE_MISSING: 'the stored tree has no hash here',
  TILE_MISMATCH: 'a stored tree node differs from the hash of the 256 stored nodes below it: the tree was altered',
  CHECKPOINT_MALFORMED: 'the CheckpointSigned event is not JSON or carries no signed note',
  CHECKPOINT_SIGNATURE_INVALID: "the checkpoint note does not verify with the hub's checkpoint key",
  CHECKPOINT_FIELDS_MISMATCH: 'the size or root fields of the CheckpointSigned event differ from its signed note',
  CHECKPOINT_ROOT_MISMATCH: 'the root of the stored tree at the size of this signed checkpoint differs from the signed root: the tree or an event below that size was altered',
  TREE_SIZE_MISMATCH: 'the stored tree does not cover exactly the events of the log',
  TREE_ROOT_MISMATCH: "the tree's stored root differs from the root its stored tiles make",
  LOG_SHORTER_THAN_MARK: 'the log holds fewer events than an earlier self-check verified: events at its end were removed',
};

/** A finding with the standard message of its code (and what it adds). */
export function storedLogFinding(f: Omit<StoredLogFinding, 'message'> & { readonly message?: string }): StoredLogFinding {
  return { ...f, message: f.message ?? MESSAGES[f.code] };
}

/**
 * Orders findings by position (those without one last). A tree node sorts at the last leaf under it,
 * so that a leaf named exactly (a changed leaf hash also breaks every node above it) comes first.
 */
export function byFindingPosition(a: StoredLogFinding, b: StoredLogFinding): number {
  const key = (f: StoredLogFinding) => (f.leaves !== undefined ? f.leaves[1] - 1 : (f.position ?? Number.MAX_SAFE_INTEGER));
  return key(a) - key(b);
}

/**
 * Checks a ledger file against its own stored Merkle tree and signed checkpoints, as the hub does at
 * start (I3): every leaf in [from, to) is re-hashed from the stored envelope text and compared with the
 * leaf hash the writer stored when the event was written; every full tile of the range is folded and
 * compared with the node the tile level above stores; every CheckpointSigned event of the range and the
 * latest one have their note verified with `publicKey` and their signed root compared with the root
 * the stored tiles make at that size; the tree's stored root is compared with its tiles'. Nothing is
 * written. Never throws for a bad log: it reports findings.
 *
 * A check over [0, size) covers the whole file; over [from, size) it covers what was written since
 * `from` plus everything a signed checkpoint of the range or the latest one attests through the tiles.
 */
export async function checkStoredLog(options: StoredLogCheckOptions): Promise<StoredLogCheckReport> {
  // Precondition: the file keeps a Merkle tree (tree tables present).
  const started = process.hrtime.bigint();
  const maxFindings = options.maxFindings ?? 20;
  const db = new Database(options.path, { readonly: true, fileMustExist: true });
  let workers: StoredLogWorkers | undefined;
  try {
    db.pragma('busy_timeout = 5000');
    if (!TileTable.exists(db)) throw new StoredLogCheckError('TREE_NOT_KEPT', `${options.path} holds no Merkle tree: open its ledger with the tree kept (tree: true) first`);
    const findings: StoredLogFinding[] = [];
    let findingCount = 0;
    const add = (f: StoredLogFinding) => {
      findingCount++;
      findings.push(f);
    };
    // One snapshot: the writer commits events and tree together, so head and size agree in it.
    const snapshot = db.transaction(() => ({
      head: (db.prepare('SELECT max(position) + 1 FROM events').pluck().get() as number | null) ?? 0,
      state: db.prepare('SELECT size, compact_range, root FROM tree_state WHERE id = 1').get() as { size: number; compact_range: Buffer; root: Buffer } | undefined,
      latest: db.prepare('SELECT position FROM tree_checkpoints ORDER BY size DESC LIMIT 1').pluck().get() as number | undefined,
    }))();
    const { head, state, latest } = snapshot;
    const treeSize = state?.size ?? 0;
    if (treeSize !== head) {
      add(storedLogFinding({ check: 'tree', code: 'TREE_SIZE_MISMATCH', position: Math.min(treeSize, head), serial: null, expected: head, calculated: treeSize }));
    }
    // This connection reads only tiles and checkpoints: a small page cache (the default is 16 MiB).
    db.pragma(`cache_size = ${-BACKGROUND_CACHE_KIB}`);
    const tiles = cachedTiles(db);
    const tileRoot = (size: number): Hash => rootAt(size, tileSubtreeHash(treeSize, tiles));
    if (state !== undefined) checkTreeRoot(state, tileRoot, add);

    const to = Math.min(options.to ?? treeSize, treeSize, head);
    const start = Math.min(to, Math.max(0, options.from));
    const from = start - (start % TILE_WIDTH);
    const total = to - from;
    let checked = 0;
    const checkpoints: RangeResult['checkpoints'] = [];
    if (total > 0) {
      workers = new StoredLogWorkers({ path: options.path, threads: options.threads, lowPriority: options.lowPriority === true });
      const pool = workers;
      // Up to two chunks per thread in flight; results are merged in log order.
      const inFlight: Promise<RangeResult>[] = [];
      let next = from;
      const fill = () => {
        while (next < to && inFlight.length < pool.threads * 2) {
          const end = Math.min(to, next + CHUNK_LEAVES);
          const job = pool.run({ from: next, to: end, maxFindings });
          // Handled here too: after an abort or a failure the chunks still in flight are never awaited.
          job.catch(() => undefined);
          inFlight.push(job);
          next = end;
        }
      };
      fill();
      while (inFlight.length > 0) {
        if (options.signal?.aborted) throw new StoredLogCheckError('SELF_CHECK_ABORTED', 'the self-check was stopped');
        const result = await inFlight.shift()!;
        if (options.signal?.aborted) throw new StoredLogCheckError('SELF_CHECK_ABORTED', 'the self-check was stopped');
        fill();
        checked += result.checked;
        findingCount += result.findingCount - result.findings.length;
        for (const f of result.findings) add(fromWorker(f));
        for (const c of result.checkpoints) checkpoints.push(c);
        options.onProgress?.(checked, total);
      }
    } else {
      options.onProgress?.(0, 0);
    }
    checkUpperTiles(treeSize, from, to, tiles, db, add);
    if (latest !== undefined && (latest < from || latest >= to)) {
      const row = db.prepare('SELECT position, serial, envelope FROM events WHERE position = ?').get(latest) as { position: number; serial: string; envelope: string } | undefined;
      if (row !== undefined) checkpoints.push(row);
    }
    for (const c of checkpoints) checkCheckpoint(c, [options.publicKey, ...(options.rotatedPublicKeys ?? [])], treeSize, tileRoot, add);
    findings.sort(byFindingPosition);
    return {
      from,
      to,
      head,
      treeSize,
      checked,
      checkpoints: checkpoints.length,
      findings: findings.slice(0, maxFindings),
      findingCount,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } finally {
    await workers?.close();
    db.close();
  }
}

function fromWorker(f: WorkerFinding): StoredLogFinding {
  const level = f.level === undefined ? '' : ` (tile level ${f.level})`;
  const leaves = f.check === 'tile' ? { leaves: [f.position, f.position + TILE_WIDTH] as const } : {};
  return storedLogFinding({ check: f.check, code: f.code, position: f.position, serial: f.serial, expected: f.expected, calculated: f.calculated, message: `${MESSAGES[f.code]}${level}`, ...leaves });
}

/** Reads tiles, keeping the full ones (immutable once full) for the root computations. */
function cachedTiles(db: Database.Database): (level: number, idx: number) => Uint8Array | undefined {
  const table = new TileTable(db);
  const cache = new Map<string, Uint8Array>();
  return (level, idx) => {
    const key = `${level}/${idx}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const tile = table.read(level, idx);
    // At most 2 MiB of full tiles (the levels above 0: 256 tiles cover 16,777,216 leaves at level 1).
    if (tile !== undefined && tile.length === TILE_WIDTH * HASH_SIZE && cache.size < 256) cache.set(key, tile);
    return tile;
  };
}

/** The stored root and compact range against the root the tiles make at the tree's size. */
function checkTreeRoot(state: { size: number; compact_range: Buffer; root: Buffer }, tileRoot: (size: number) => Hash, add: (f: StoredLogFinding) => void): void {
  const stored = toHex(state.root);
  let calculated: string;
  try {
    calculated = toHex(tileRoot(state.size));
  } catch (error) {
    add(storedLogFinding({ check: 'tree', code: 'TILE_MISSING', position: null, serial: null, expected: stored, calculated: null, message: `the root of the stored tree cannot be made from its tiles: ${(error as Error).message}` }));
    return;
  }
  if (stored !== calculated) {
    add(storedLogFinding({ check: 'tree', code: 'TREE_ROOT_MISMATCH', position: null, serial: null, expected: stored, calculated }));
    return;
  }
  let rangeRoot: string;
  try {
    const range = CompactRange.fromBytes(state.compact_range);
    rangeRoot = range.size === state.size ? toHex(range.root()) : `size ${range.size}`;
  } catch (error) {
    rangeRoot = `unreadable: ${(error as Error).message}`;
  }
  if (rangeRoot !== stored) {
    add(storedLogFinding({ check: 'tree', code: 'TREE_ROOT_MISMATCH', position: null, serial: null, expected: stored, calculated: rangeRoot, message: "the tree's stored compact range does not make its stored root" }));
  }
}

/**
 * Tile levels 1 and up (the workers check level 0 against level 1): each full tile whose leaves meet
 * [from, to) is folded and compared with the node the level above stores. A few hundred folds per
 * million events.
 */
function checkUpperTiles(treeSize: number, from: number, to: number, readTile: (level: number, idx: number) => Uint8Array | undefined, db: Database.Database, add: (f: StoredLogFinding) => void): void {
  if (to <= from) return;
  const serialAt = db.prepare('SELECT serial FROM events WHERE position = ?').pluck();
  for (let level = 1; ; level++) {
    const fullTiles = Math.floor(nodesAtHeight(treeSize, level * TILE_HEIGHT) / TILE_WIDTH);
    if (fullTiles === 0) return;
    const leavesPerTile = TILE_WIDTH ** (level + 1);
    const first = Math.floor(from / leavesPerTile);
    const end = Math.min(fullTiles, Math.ceil(to / leavesPerTile));
    for (let idx = first; idx < end; idx++) {
      const tile = readTile(level, idx);
      const position = idx * leavesPerTile;
      const leaves = [position, position + leavesPerTile] as const;
      const serial = (serialAt.get(position) as string | undefined) ?? null;
      if (tile === undefined || tile.length !== TILE_WIDTH * HASH_SIZE) {
        add(storedLogFinding({ check: 'tile', code: 'TILE_MISSING', position, serial, expected: null, calculated: null, leaves, message: `${MESSAGES.TILE_MISSING} (tile level ${level})` }));
        continue;
      }
      const calculated = toHex(foldTile(tile));
      const up = readTile(level + 1, Math.floor(idx / TILE_WIDTH));
      const at = (idx % TILE_WIDTH) * HASH_SIZE;
      const expected = up !== undefined && up.length >= at + HASH_SIZE ? toHex(up.subarray(at, at + HASH_SIZE)) : null;
      if (expected === null) {
        add(storedLogFinding({ check: 'tile', code: 'TILE_MISSING', position, serial, expected: null, calculated, leaves, message: `${MESSAGES.TILE_MISSING} (tile level ${level + 1})` }));
      } else if (expected !== calculated) {
        add(storedLogFinding({ check: 'tile', code: 'TILE_MISMATCH', position, serial, expected, calculated, leaves, message: `${MESSAGES.TILE_MISMATCH} (tile level ${level + 1})` }));
      }
    }
  }
}

/** RFC 6962 MTH of the 256 hashes of a full tile: the node the tile level above stores for it. */
function foldTile(tile: Uint8Array): Hash {
  let hashes: Hash[] = [];
  for (let i = 0; i < TILE_WIDTH; i++) hashes.push(asHash(tile.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE)));
  while (hashes.length > 1) {
    const up: Hash[] = [];
    for (let i = 0; i < hashes.length; i += 2) up.push(nodeHash(hashes[i]!, hashes[i + 1]!));
    hashes = up;
  }
  return hashes[0]!;
}

/** Signature first (nothing of the note is trusted before), then its fields, then its root against the tiles. */
function checkCheckpoint(
  c: { readonly position: number; readonly serial: string; readonly envelope: string },
  publicKeys: readonly Uint8Array[],
  treeSize: number,
  tileRoot: (size: number) => Hash,
  add: (f: StoredLogFinding) => void,
): void {
  const at = { position: c.position, serial: c.serial };
  let data: Partial<CheckpointSignedData> | undefined;
  try {
    data = (JSON.parse(c.envelope) as { data?: Partial<CheckpointSignedData> }).data;
  } catch {
    data = undefined;
  }
  if (typeof data?.note !== 'string') {
    add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_MALFORMED', ...at, expected: null, calculated: null }));
    return;
  }
  // The key name is the origin the hub signed under then (HUB_CHECKPOINT_ORIGIN may have changed since);
  // only this hub's key makes the signature verify.
  const origin = data.note.slice(0, Math.max(0, data.note.indexOf('\n')));
  let signed;
  try {
    signed = verifyCheckpointByAny(data.note, origin, publicKeys);
  } catch (error) {
    add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_SIGNATURE_INVALID', ...at, expected: `signed by ${publicKeys.map(toHex).join(' or ')}`, calculated: (error as { code?: string }).code ?? 'INVALID' }));
    return;
  }
  const signedRoot = toHex(signed.root);
  if (data.size !== signed.size || data.rootHex !== signedRoot) {
    add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_FIELDS_MISMATCH', ...at, expected: `${signed.size} ${signedRoot}`, calculated: `${String(data.size)} ${String(data.rootHex)}` }));
  }
  if (signed.size > treeSize) {
    add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_ROOT_MISMATCH', ...at, expected: signedRoot, calculated: null, message: `the signed checkpoint covers ${signed.size} events but the stored tree only ${treeSize}` }));
    return;
  }
  let calculated: string;
  try {
    calculated = toHex(tileRoot(signed.size));
  } catch (error) {
    add(storedLogFinding({ check: 'checkpoint', code: 'TILE_MISSING', ...at, expected: signedRoot, calculated: null, message: `the root at this checkpoint's size cannot be made from the stored tiles: ${(error as Error).message}` }));
    return;
  }
  if (calculated !== signedRoot) add(storedLogFinding({ check: 'checkpoint', code: 'CHECKPOINT_ROOT_MISMATCH', ...at, expected: signedRoot, calculated }));
}

/**
 * The verified mark: the size up to which a self-check re-hashed every leaf and found it equal, kept in
 * the ledger file's `ledger_meta` (hub-internal, never an event). It saves work at the next start and
 * MUST NOT be trusted as evidence: whoever can edit the stopped file can reset it too.
 */
export class VerifiedMark {
  static readonly KEY = 'self_check_verified_through';
  private readonly db: Database.Database;
  private readonly stmt;

  /** Opens the ledger file (the store MUST have created it, with its ledger_meta table). */
  constructor(path: string) {
    this.db = new Database(path, { fileMustExist: true });
    this.db.pragma('busy_timeout = 5000');
    this.stmt = {
      get: this.db.prepare(`SELECT value FROM ledger_meta WHERE key = '${VerifiedMark.KEY}'`).pluck(),
      set: this.db.prepare(`INSERT INTO ledger_meta (key, value) VALUES ('${VerifiedMark.KEY}', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
      head: this.db.prepare('SELECT max(position) + 1 FROM events').pluck(),
    };
  }

  /** 0 when no check has passed yet (or the stored value is not a size). */
  get(): number {
    const value = Number(this.stmt.get.get() ?? 0);
    return Number.isSafeInteger(value) && value >= 0 ? value : 0;
  }

  set(size: number): void {
    this.stmt.set.run(String(size));
  }

  /** Events stored in the log now. */
  logHead(): number {
    return (this.stmt.head.get() as number | null) ?? 0;
  }

  close(): void {
    this.db.close();
  }
}

/** The note verified with the first of `publicKeys` it verifies with; the first key's error when none does. */
export function verifyCheckpointByAny(note: string, origin: string, publicKeys: readonly Uint8Array[]): ReturnType<typeof verifyCheckpoint> {
  let first: unknown;
  for (const publicKey of publicKeys) {
    try {
      return verifyCheckpoint(note, { name: origin, publicKey }, origin);
    } catch (error) {
      first ??= error;
    }
  }
  throw first ?? new Error('no checkpoint key to verify with');
}
