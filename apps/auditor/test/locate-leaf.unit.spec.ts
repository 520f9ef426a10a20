import { describe, expect, it } from 'vitest';
import { MemoryTree, leafHash, toHex, type Hash } from '#audit-log';
import { firstAlteredPrefix, leafWitness, prefixMatches, signedLeafHash } from '../src/verify/locate-leaf.js';

const leaves = (n: number): Hash[] => Array.from({ length: n }, (_, i) => leafHash(`event ${i}`));

/** The signed tree, and the tree of the raw entries with the leaves at `altered` changed. */
function logs(size: number, altered: readonly number[]) {
  const signed = new MemoryTree(leaves(size));
  const raw = new MemoryTree(leaves(size).map((h, i) => (altered.includes(i) ? leafHash(`event ${i}, altered`) : h)));
  const intact = async (m: number) => prefixMatches(m, raw.root(m), size, signed.root(), signed.consistencyProof(m, size));
  return { signed, raw, intact };
}

describe('locating the first altered leaf against a signed tree', () => {
  it('bisects to exactly the altered leaf, for every leaf of every tree up to 40 leaves', async () => {
    for (let size = 1; size <= 40; size++) {
      for (let p = 0; p < size; p++) {
        const { intact } = logs(size, [p]);
        expect(await firstAlteredPrefix(0, size, intact), `leaf ${p} of ${size}`).toBe(p + 1);
      }
    }
  });

  it('finds the first of two altered leaves, starting from a verified prefix', async () => {
    const { intact } = logs(37, [21, 30]);
    expect(await firstAlteredPrefix(16, 37, intact)).toBe(22);
  });

  it("reads the signed hash of the altered leaf from its witness's inclusion proof", () => {
    for (let size = 2; size <= 40; size++) {
      for (let p = 0; p < size; p++) {
        const { signed, raw } = logs(size, [p]);
        const w = leafWitness(p, size)!;
        expect(w.q).not.toBe(p);
        const expected = signedLeafHash(p, size, signed.root(), w.q, raw.leafHash(w.q), signed.inclusionProof(w.q, size));
        expect(toHex(expected!), `leaf ${p} of ${size}`).toBe(toHex(signed.leafHash(p)));
      }
    }
    expect(leafWitness(0, 1)).toBeUndefined();
  });

  it('says nothing when the witness was altered too, or its proof does not lead to the signed root', () => {
    const { signed, raw } = logs(16, [6, 7]);
    const w = leafWitness(6, 16)!;
    expect(w.q).toBe(7);
    expect(signedLeafHash(6, 16, signed.root(), 7, raw.leafHash(7), signed.inclusionProof(7, 16))).toBeUndefined();
    const forged = signed.inclusionProof(7, 16).map((h, i) => (i === w.index ? leafHash('something else') : h));
    expect(signedLeafHash(6, 16, signed.root(), 7, signed.leafHash(7), forged)).toBeUndefined();
  });
});
