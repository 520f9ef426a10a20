import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryTree, leafHash, toHex, verifyConsistency, verifyInclusion } from '#audit-log';
import { MerkleTreeProjection } from '#ledger';

// The tree of a log the hub reads through the event-store port (KurrentDB): no source file, the caller
// feeds the stored texts in position order; the tiles live in the tree's own file.
const dir = mkdtempSync(join(tmpdir(), 'tree-fed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const texts = Array.from({ length: 1300 }, (_, i) => `{"n":${i},"text":"é✓"}`);

describe('MerkleTreeProjection fed through the port', () => {
  it('hashes the texts it is fed, in chunks, to the roots and proofs of the reference tree, and restarts from its file', () => {
    const target = join(dir, 'a.sqlite');
    const tree = new MerkleTreeProjection({ target });
    expect(tree.fed).toBe(true);
    for (let from = 0; from < 700; from += 97) expect(tree.feed(from, texts.slice(from, Math.min(700, from + 97)))).toBe(Math.min(97, 700 - from));
    const reference = new MemoryTree(texts.slice(0, 700).map((t) => leafHash(t)));
    expect(tree.size).toBe(700);
    expect(toHex(tree.root())).toBe(toHex(reference.root()));
    verifyInclusion(300, 700, leafHash(texts[300]!), tree.inclusionProof(300, 700), reference.root());
    tree.close();
    const again = new MerkleTreeProjection({ target });
    expect(again.size).toBe(700);
    // Texts it already hashed are skipped; only what is new is hashed.
    expect(again.feed(650, texts.slice(650, 1300))).toBe(600);
    const full = new MemoryTree(texts.map((t) => leafHash(t)));
    expect(toHex(again.root())).toBe(toHex(full.root()));
    verifyConsistency(700, 1300, again.consistencyProof(700, 1300), reference.root(), full.root());
    again.close();
  });

  it('refuses a hole, a source read, and a tree larger than the log it follows', () => {
    const tree = new MerkleTreeProjection({ target: join(dir, 'b.sqlite') });
    tree.feed(0, texts.slice(0, 10));
    expect(() => tree.feed(11, texts.slice(11, 12))).toThrow(expect.objectContaining({ code: 'LOG_GAP' }));
    expect(() => tree.envelopes(0, 1)).toThrow(expect.objectContaining({ code: 'TREE_FED' }));
    expect(() => tree.checkAgainstHead(9)).toThrow(expect.objectContaining({ code: 'TREE_AHEAD_OF_LOG' }));
    tree.checkAgainstHead(10);
    tree.close();
    expect(() => new MerkleTreeProjection({})).toThrow(TypeError);
  });
});
