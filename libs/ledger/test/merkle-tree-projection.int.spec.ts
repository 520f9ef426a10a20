import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryTree, generateSigningKey, leafHash, toHex, verifyConsistency, verifyInclusion } from '#audit-log';
import {
  CHECKPOINT_SIGNED,
  LEDGER_DDL,
  MerkleTreeProjection,
  SqliteEventStore,
  checkpointAppendRequest,
  defaultCheckpointOrigin,
  signedCheckpointData,
  type AppendRequest,
} from '#ledger';

const dir = mkdtempSync(join(tmpdir(), 'tree-projection-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `t-${++n}.sqlite`);
const meta = { actor: 'system:test', correlationId: 'c' };
const done = (i: number): AppendRequest => ({
  streamId: `s-${i % 7}`,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: 'Done', data: { i, text: 'é✓' }, terminal: 'completed' }],
  metadata: meta,
});

async function ledger(events: number): Promise<string> {
  const path = file();
  const store = new SqliteEventStore({ path, nodeId: 1 });
  await Promise.all(Array.from({ length: events }, (_, i) => store.append(done(i))));
  await store.close();
  return path;
}

function storedLeaves(path: string): MemoryTree {
  const db = new Database(path, { readonly: true });
  const texts = db.prepare('SELECT envelope FROM events ORDER BY position').pluck().all() as string[];
  db.close();
  return new MemoryTree(texts.map((t) => leafHash(t)));
}

/** A bare log of `count` rows with arbitrary envelope texts: the tree only hashes the stored text. */
function bareLog(count: number): string {
  const path = file();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(LEDGER_DDL);
  const insert = db.prepare('INSERT INTO events (position, stream_id, stream_revision, serial, envelope) VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < count; i++) insert.run(i, `s-${i}`, 0, '20260401010000000001', `{"n":${i}}`);
  })();
  db.close();
  return path;
}

describe('MerkleTreeProjection', () => {
  it('hashes the stored envelope text of every event and serves roots and proofs at every size', async () => {
    const path = await ledger(600);
    const tree = new MerkleTreeProjection({ source: path, stepEvents: 97 });
    expect(tree.size).toBe(0);
    expect(tree.catchUp()).toBe(600);
    const reference = storedLeaves(path);
    expect(toHex(tree.root())).toBe(toHex(reference.root()));
    for (const size of [1, 2, 3, 255, 256, 257, 511, 512, 513, 599, 600]) {
      expect(toHex(tree.root(size))).toBe(toHex(reference.root(size)));
      for (const index of [0, size - 1, Math.floor(size / 2)]) {
        const proof = tree.inclusionProof(index, size);
        expect(proof.map(toHex)).toEqual(reference.inclusionProof(index, size).map(toHex));
        verifyInclusion(index, size, reference.leafHash(index), proof, reference.root(size));
      }
      for (const from of [1, 7, 256, Math.max(1, size - 1)].filter((s) => s <= size)) {
        verifyConsistency(from, size, tree.consistencyProof(from, size), reference.root(from), reference.root(size));
      }
    }
    expect(() => tree.root(601)).toThrow(expect.objectContaining({ code: 'TREE_SIZE_NOT_REACHED' }));
    tree.close();
  });

  it('restarts from its persisted state and goes on from there', async () => {
    const path = await ledger(300);
    const first = new MerkleTreeProjection({ source: path, stepEvents: 50 });
    first.step();
    first.step();
    expect(first.size).toBe(100);
    const rootAt100 = toHex(first.root());
    first.close();
    const second = new MerkleTreeProjection({ source: path });
    expect(second.size).toBe(100);
    expect(toHex(second.root())).toBe(rootAt100);
    second.catchUp();
    expect(toHex(second.root())).toBe(toHex(storedLeaves(path).root()));
    second.close();
  });

  it('rebuilds from the log when its state is missing', async () => {
    const path = await ledger(260);
    const tree = new MerkleTreeProjection({ source: path });
    tree.catchUp();
    const root = toHex(tree.root());
    tree.close();
    const raw = new Database(path);
    raw.exec('DELETE FROM tree_state');
    raw.close();
    const rebuilt = new MerkleTreeProjection({ source: path });
    expect(rebuilt.size).toBe(0);
    rebuilt.catchUp();
    expect(toHex(rebuilt.root())).toBe(root);
    expect(toHex(rebuilt.root(257))).toBe(toHex(storedLeaves(path).root(257)));
    rebuilt.close();
  });

  it('refuses to open when the log is shorter than the tree (events were removed)', async () => {
    const path = await ledger(20);
    const tree = new MerkleTreeProjection({ source: path });
    tree.catchUp();
    tree.close();
    const raw = new Database(path);
    raw.exec('DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE position >= 15');
    raw.close();
    expect(() => new MerkleTreeProjection({ source: path })).toThrow(expect.objectContaining({ code: 'TREE_AHEAD_OF_LOG', message: expect.stringContaining('covers 20 events but the log holds 15') }));
  });

  it('stops at a missing position instead of hashing past it', async () => {
    const path = await ledger(20);
    const raw = new Database(path);
    raw.exec('DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE position = 12');
    raw.close();
    const tree = new MerkleTreeProjection({ source: path, stepEvents: 10 });
    tree.step();
    expect(() => tree.step()).toThrow(expect.objectContaining({ code: 'LOG_GAP', message: expect.stringContaining('no event at position 12') }));
    expect(tree.size).toBe(12);
    expect(() => tree.step()).toThrow(expect.objectContaining({ code: 'LOG_GAP' }));
    expect(tree.size).toBe(12);
    tree.close();
  });

  it('persists tiles above the first level (65,536 leaves and more) and serves any size from them', () => {
    const count = 65_536 + 300;
    const path = bareLog(count);
    const tree = new MerkleTreeProjection({ source: path, stepEvents: 8192 });
    tree.catchUp();
    const reference = new MemoryTree(Array.from({ length: count }, (_, i) => leafHash(`{"n":${i}}`)));
    for (const size of [65_535, 65_536, 65_537, count]) expect(toHex(tree.root(size))).toBe(toHex(reference.root(size)));
    const proof = tree.inclusionProof(70, count);
    verifyInclusion(70, count, reference.leafHash(70), proof, reference.root());
    verifyConsistency(65_535, count, tree.consistencyProof(65_535, count), reference.root(65_535), reference.root());
    tree.close();
    const reopened = new MerkleTreeProjection({ source: path });
    expect(toHex(reopened.root(65_536))).toBe(toHex(reference.root(65_536)));
    reopened.close();
  });

  it('indexes the CheckpointSigned events of the log', async () => {
    const path = file();
    const store = new SqliteEventStore({ path, nodeId: 1 });
    for (let i = 0; i < 5; i++) await store.append(done(i));
    const tree = new MerkleTreeProjection({ source: path });
    tree.catchUp();
    const { privateKey } = generateSigningKey();
    const origin = defaultCheckpointOrigin(1);
    const data = signedCheckpointData(origin, tree.size, tree.root(), 1_700_000_000_000, privateKey);
    const appended = await store.append(checkpointAppendRequest(data, meta));
    tree.catchUp();
    expect(tree.latestCheckpoint()).toMatchObject({ size: 5, position: appended.firstPosition, timeMs: 1_700_000_000_000, note: data.note });
    expect(toHex(tree.checkpoint(5)!.root)).toBe(data.rootHex);
    expect(tree.checkpoint(4)).toBeUndefined();
    const [event] = await store.readAll({ fromPosition: appended.firstPosition });
    expect(event).toMatchObject({ type: CHECKPOINT_SIGNED, streamId: '$checkpoints', terminal: 'completed' });
    await store.close();
    tree.close();
  });
});
