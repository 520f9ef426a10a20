import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryTree, generateSigningKey, leafHash, toHex, verifyConsistency, verifyInclusion } from '#audit-log';
import {
  MerkleTreeProjection,
  SqliteEventStore,
  checkpointAppendRequest,
  defaultCheckpointOrigin,
  signedCheckpointData,
  type AppendRequest,
  type CommitHook,
} from '#ledger';

const dir = mkdtempSync(join(tmpdir(), 'writer-tree-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `w-${++n}.sqlite`);
const meta = { actor: 'system:test', correlationId: 'c' };
const done = (i: number, text = 'é✓ 室蘭市'): AppendRequest => ({
  streamId: `s-${i % 11}`,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: 'Done', data: { i, text }, terminal: 'completed' }],
  metadata: meta,
});

/** The stored envelope texts, hashed by the library: the reference tree. */
function reference(path: string): MemoryTree {
  const db = new Database(path, { readonly: true });
  const texts = db.prepare('SELECT envelope FROM events ORDER BY position').pluck().all() as string[];
  db.close();
  return new MemoryTree(texts.map((t) => leafHash(t)));
}

/** Every tree table of a file, as comparable rows. */
function tables(path: string): { tiles: unknown[]; state: unknown; checkpoints: unknown[] } {
  const db = new Database(path, { readonly: true });
  const hex = (b: Buffer) => b.toString('hex');
  const tiles = (db.prepare('SELECT level, idx, hashes FROM tree_tiles ORDER BY level, idx').all() as { level: number; idx: number; hashes: Buffer }[]).map((t) => [
    t.level,
    t.idx,
    hex(t.hashes),
  ]);
  const s = db.prepare('SELECT size, compact_range, root FROM tree_state').get() as { size: number; compact_range: Buffer; root: Buffer } | undefined;
  const checkpoints = db.prepare('SELECT size, position, time_ms, hex(root), note FROM tree_checkpoints ORDER BY size').raw().all();
  db.close();
  return { tiles, state: s && [s.size, hex(s.compact_range), hex(s.root)], checkpoints };
}

/** The tables a projection rebuilt from the log alone writes into a separate file. */
function rebuiltTables(path: string): ReturnType<typeof tables> {
  const target = file();
  const rebuilt = new MerkleTreeProjection({ source: path, target, stepEvents: 333 });
  rebuilt.catchUp();
  rebuilt.close();
  return tables(target);
}

async function wave(store: SqliteEventStore, from: number, count: number, text?: string): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, k) => store.append(done(from + k, text))));
}

describe("the Merkle tree kept by the ledger's writer (I3)", () => {
  it('covers exactly the committed log after every commit, with the same tiles, roots, proofs and checkpoints as a rebuild from the log', async () => {
    const path = file();
    const store = new SqliteEventStore({ path, nodeId: 1, tree: true });
    const tree = new MerkleTreeProjection({ source: path, maintainedByLedger: true });
    expect(tree.size).toBe(0);
    const key = generateSigningKey();
    const origin = defaultCheckpointOrigin(1);
    let appended = 0;
    let lastCheckpoint: { size: number; note: string } | undefined;
    // Waves that end on and around tile edges (256 leaves, 256² at level 1 is out of reach), with one
    // huge envelope (more UTF-8 bytes than the writer's first scratch buffer) and signed checkpoints.
    for (const [count, text] of [[1], [254], [1], [1], [300], [1, '署'.repeat(40_000)], [512], [255], [1]] as [number, string?][]) {
      const c = count;
      await wave(store, appended, c, text);
      appended += c;
      expect(tree.step()).toBe(c);
      expect(tree.size).toBe(await store.head());
      const ref = reference(path);
      expect(toHex(tree.root())).toBe(toHex(ref.root()));
      // A checkpoint of the size just reached, appended as an event: the writer records it too.
      const data = signedCheckpointData(origin, tree.size, tree.root(), 1_700_000_000_000 + appended, key.privateKey);
      await store.append(checkpointAppendRequest(data, meta));
      appended += 1;
      lastCheckpoint = { size: data.size, note: data.note };
      expect(tree.step()).toBe(1);
      expect(tree.latestCheckpoint()).toMatchObject(lastCheckpoint);
    }
    const size = tree.size;
    const ref = reference(path);
    for (const s of [1, 255, 256, 257, 511, 512, 513, size - 1, size]) {
      expect(toHex(tree.root(s))).toBe(toHex(ref.root(s)));
      for (const index of [0, s - 1, Math.floor(s / 3)]) verifyInclusion(index, s, ref.leafHash(index), tree.inclusionProof(index, s), ref.root(s));
      verifyConsistency(1, s, tree.consistencyProof(1, s), ref.root(1), ref.root(s));
      if (s > 256) verifyConsistency(256, s, tree.consistencyProof(256, s), ref.root(256), ref.root(s));
    }
    expect(tables(path)).toEqual(rebuiltTables(path));
    tree.close();
    await store.close();
  });

  it('rolls the tree back with the events of a transaction that fails, and goes on from the stored state', async () => {
    const path = file();
    let sabotage = false;
    const hook: CommitHook = { prepare: () => (sabotage ? [{ sql: 'INSERT INTO no_such_table VALUES (?)', rows: [[1]] }] : []) };
    const store = new SqliteEventStore({ path, nodeId: 2, tree: true, hooks: [hook] });
    await wave(store, 0, 300);
    sabotage = true;
    const failing = Promise.allSettled(Array.from({ length: 20 }, (_, k) => store.append(done(300 + k))));
    await new Promise((r) => setImmediate(r));
    sabotage = false;
    expect((await failing).every((r) => r.status === 'rejected')).toBe(true);
    expect(await store.head()).toBe(300);
    await wave(store, 300, 20);
    const tree = new MerkleTreeProjection({ source: path, maintainedByLedger: true });
    expect(tree.size).toBe(320);
    expect(toHex(tree.root())).toBe(toHex(reference(path).root()));
    expect(tables(path)).toEqual(rebuiltTables(path));
    tree.close();
    await store.close();
  });

  it('is built from the log when a ledger first keeps it, rebuilt when its tables were emptied, and continued after a restart', async () => {
    const path = file();
    const plain = new SqliteEventStore({ path, nodeId: 3 });
    await wave(plain, 0, 700);
    await plain.close();
    expect(() => new MerkleTreeProjection({ source: path, maintainedByLedger: true })).toThrow(expect.objectContaining({ code: 'TREE_NOT_KEPT' }));

    let store = new SqliteEventStore({ path, nodeId: 3, tree: true });
    await wave(store, 700, 100);
    await store.close();
    expect(tables(path)).toEqual(rebuiltTables(path));

    const db = new Database(path);
    db.exec('DELETE FROM tree_tiles; DELETE FROM tree_state; DELETE FROM tree_checkpoints;');
    db.close();
    store = new SqliteEventStore({ path, nodeId: 3, tree: true });
    await wave(store, 800, 57);
    const tree = new MerkleTreeProjection({ source: path, maintainedByLedger: true });
    expect(tree.size).toBe(857);
    expect(toHex(tree.root())).toBe(toHex(reference(path).root()));
    expect(tables(path)).toEqual(rebuiltTables(path));
    tree.close();
    await store.close();
  });

  it('refuses to open a ledger whose stored tree covers more events than the log holds (its tail was cut, I1)', async () => {
    const path = file();
    const store = new SqliteEventStore({ path, nodeId: 4, tree: true });
    await wave(store, 0, 40);
    await store.close();
    const raw = new Database(path);
    raw.exec('DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE position >= 30');
    raw.close();
    expect(() => new SqliteEventStore({ path, nodeId: 4, tree: true })).toThrow(
      expect.objectContaining({ code: 'TREE_AHEAD_OF_LOG', message: expect.stringContaining('covers 40 events but the log holds 30') }),
    );
  });
});
