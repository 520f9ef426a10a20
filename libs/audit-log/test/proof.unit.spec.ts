import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AuditLogError,
  EMPTY_ROOT,
  type Hash,
  MemoryTree,
  consistencyProof,
  consistencyProofRanges,
  hashFromHex,
  inclusionProof,
  inclusionProofRanges,
  isNodeRange,
  leafHash,
  nodeHash,
  perfectSubtrees,
  rootFromInclusionProof,
  rootFromLeafHashes,
  rootsFromConsistencyProof,
  subtreeHashFromLeaves,
  subtreeRoot,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from '../src/index.js';
import { LEAVES, MAX_SIZE, TREE, arbSize, flipBit, hex } from './fixtures.js';
import { CONSISTENCY_PROOFS, INCLUSION_PROOFS, LEAF_INPUTS, LEVELS, ROOTS } from './rfc6962-vectors.js';

const vectorLeaves = LEAF_INPUTS.map((h) => leafHash(Buffer.from(h, 'hex')));
const vectorTree = new MemoryTree(vectorLeaves);
const root = (size: number): Hash => hashFromHex(ROOTS[size]!.hex);
const code = (c: string) => expect.objectContaining({ code: c });

// RFC 9162 §2.1.3.1 and §2.1.4.1 verbatim over slices: an independent reference for generation.
function mth(d: readonly Hash[]): Hash {
  return rootFromLeafHashes(d);
}
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
function referencePath(m: number, d: readonly Hash[]): Hash[] {
  if (d.length <= 1) return [];
  const k = largestPowerOfTwoBelow(d.length);
  return m < k ? [...referencePath(m, d.slice(0, k)), mth(d.slice(k))] : [...referencePath(m - k, d.slice(k)), mth(d.slice(0, k))];
}
function referenceSubproof(m: number, d: readonly Hash[], b: boolean): Hash[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const k = largestPowerOfTwoBelow(d.length);
  return m <= k
    ? [...referenceSubproof(m, d.slice(0, k), b), mth(d.slice(k))]
    : [...referenceSubproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}
const referenceConsistency = (m: number, d: readonly Hash[]): Hash[] => (m === 0 ? [] : referenceSubproof(m, d, true));

describe('known proofs of the RFC 6962 test tree', () => {
  it.each(INCLUSION_PROOFS)('inclusion of leaf $index in size $size', ({ index, size, proof }) => {
    expect(hex(vectorTree.inclusionProof(index, size))).toEqual(proof);
    const hashes = proof.map((h) => hashFromHex(h));
    expect(toHex(rootFromInclusionProof(index, size, vectorLeaves[index]!, hashes))).toBe(ROOTS[size]!.hex);
    expect(() => verifyInclusion(index, size, vectorLeaves[index]!, hashes, root(size))).not.toThrow();
  });

  it.each(CONSISTENCY_PROOFS)('consistency from $size1 to $size2', ({ size1, size2, proof }) => {
    expect(hex(vectorTree.consistencyProof(size1, size2))).toEqual(proof);
    expect(() => verifyConsistency(size1, size2, proof.map((h) => hashFromHex(h)), root(size1), root(size2))).not.toThrow();
  });

  it('names the node ranges each proof needs, leaf upwards', () => {
    expect(inclusionProofRanges(5, 8)).toEqual([
      { start: 4, end: 5 },
      { start: 6, end: 8 },
      { start: 0, end: 4 },
    ]);
    // leaf 6 of 7 sits on the right border: it has no sibling at level 0
    expect(inclusionProofRanges(6, 7)).toEqual([
      { start: 4, end: 6 },
      { start: 0, end: 4 },
    ]);
    expect(consistencyProofRanges(6, 8)).toEqual([
      { start: 4, end: 6 },
      { start: 6, end: 8 },
      { start: 0, end: 4 },
    ]);
    // the right-border node [4, 7) is not perfect: generation folds [4, 6) and [6, 7)
    expect(consistencyProofRanges(3, 7)).toEqual([
      { start: 2, end: 3 },
      { start: 3, end: 4 },
      { start: 0, end: 2 },
      { start: 4, end: 7 },
    ]);
  });

  it('leaves the old root out of a consistency proof when the first size is a power of two (RFC 9162 §2.1.4.2 step 2)', () => {
    // [0, 4) is a node of the 8-tree: the verifier seeds with root(4), so the proof is only its sibling
    expect(hex(vectorTree.consistencyProof(4, 8))).toEqual([LEVELS[2]![1]!.hex]);
    expect(() => verifyConsistency(4, 8, [hashFromHex(LEVELS[2]![1]!.hex)], root(4), root(8))).not.toThrow();
    const { first, second } = rootsFromConsistencyProof(4, 8, [hashFromHex(LEVELS[2]![1]!.hex)], root(4));
    expect([toHex(first), toHex(second)]).toEqual([ROOTS[4]!.hex, ROOTS[8]!.hex]);
    // the seed is the claimed old root: a wrong one changes the new root that comes out
    expect(() => verifyConsistency(4, 8, [hashFromHex(LEVELS[2]![1]!.hex)], root(3), root(8))).toThrow(code('ROOT_MISMATCH'));
  });
});

describe('mismatch errors carry both values', () => {
  it('an inclusion proof checked against the wrong root names expected and calculated roots in hex', () => {
    const proof = vectorTree.inclusionProof(2, 5);
    expect(() => verifyInclusion(2, 5, vectorLeaves[2]!, proof, root(6))).toThrow(
      expect.objectContaining({
        code: 'ROOT_MISMATCH',
        expected: ROOTS[6]!.hex,
        calculated: ROOTS[5]!.hex,
        message: `root mismatch: expected ${ROOTS[6]!.hex}, calculated ${ROOTS[5]!.hex}`,
      }),
    );
  });

  it('a consistency proof says which root failed', () => {
    const proof = vectorTree.consistencyProof(6, 8);
    expect(() => verifyConsistency(6, 8, proof, root(5), root(8))).toThrow(
      expect.objectContaining({ code: 'ROOT_MISMATCH', expected: ROOTS[5]!.hex, calculated: ROOTS[6]!.hex, message: expect.stringMatching(/^first root mismatch/) }),
    );
    expect(() => verifyConsistency(6, 8, proof, root(6), root(7))).toThrow(
      expect.objectContaining({ code: 'ROOT_MISMATCH', expected: ROOTS[7]!.hex, calculated: ROOTS[8]!.hex, message: expect.stringMatching(/^second root mismatch/) }),
    );
  });

  it('a proof of the wrong length is PROOF_SIZE_INVALID with both lengths', () => {
    const proof = vectorTree.inclusionProof(0, 8);
    expect(() => verifyInclusion(0, 8, vectorLeaves[0]!, proof.slice(1), root(8))).toThrow(
      expect.objectContaining({ code: 'PROOF_SIZE_INVALID', expectedLength: 3, actualLength: 2 }),
    );
    expect(() => verifyConsistency(2, 5, [...vectorTree.consistencyProof(2, 5), root(1)], root(2), root(5))).toThrow(
      expect.objectContaining({ code: 'PROOF_SIZE_INVALID', expectedLength: 2, actualLength: 3 }),
    );
  });
});

describe('preconditions are checked first', () => {
  it('rejects indices and sizes outside the tree', () => {
    expect(() => verifyInclusion(0, 0, vectorLeaves[0]!, [], EMPTY_ROOT)).toThrow(code('INDEX_OUT_OF_RANGE'));
    expect(() => verifyInclusion(8, 8, vectorLeaves[0]!, [], root(8))).toThrow(code('INDEX_OUT_OF_RANGE'));
    expect(() => verifyInclusion(-1, 8, vectorLeaves[0]!, [], root(8))).toThrow(code('TREE_SIZE_INVALID'));
    expect(() => verifyInclusion(0, 1.5, vectorLeaves[0]!, [], root(8))).toThrow(code('TREE_SIZE_INVALID'));
    expect(() => inclusionProofRanges(3, 3)).toThrow(code('INDEX_OUT_OF_RANGE'));
    expect(() => verifyConsistency(5, 2, [], root(5), root(2))).toThrow(code('TREE_SIZE_INVALID'));
    expect(() => consistencyProofRanges(2 ** 53, 2 ** 53)).toThrow(code('TREE_SIZE_INVALID'));
    expect(() => vectorTree.inclusionProof(0, 9)).toThrow(code('TREE_SIZE_INVALID'));
  });

  it('rejects hashes that are not 32 bytes before hashing anything', () => {
    const short = new Uint8Array(31);
    expect(() => verifyInclusion(0, 1, short, [], root(1))).toThrow(code('HASH_LENGTH_INVALID'));
    expect(() => verifyInclusion(0, 1, vectorLeaves[0]!, [], short)).toThrow(code('HASH_LENGTH_INVALID'));
    expect(() => verifyInclusion(0, 2, vectorLeaves[0]!, [short], root(2))).toThrow(code('HASH_LENGTH_INVALID'));
    expect(() => verifyConsistency(1, 2, [short], root(1), root(2))).toThrow(code('HASH_LENGTH_INVALID'));
  });

  it('handles the trivial consistency cases strictly', () => {
    expect(() => verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)).not.toThrow();
    expect(() => verifyConsistency(0, 5, [], EMPTY_ROOT, root(5))).not.toThrow();
    expect(() => verifyConsistency(5, 5, [], root(5), root(5))).not.toThrow();
    // a size-0 checkpoint MUST carry the empty root, and equal sizes MUST have equal roots
    expect(() => verifyConsistency(0, 5, [], root(1), root(5))).toThrow(code('ROOT_MISMATCH'));
    expect(() => verifyConsistency(5, 5, [], root(5), root(4))).toThrow(code('ROOT_MISMATCH'));
    // and their proofs MUST be empty
    expect(() => verifyConsistency(5, 5, [root(5)], root(5), root(5))).toThrow(code('PROOF_SIZE_INVALID'));
    expect(() => verifyConsistency(0, 5, [root(5)], EMPTY_ROOT, root(5))).toThrow(code('PROOF_SIZE_INVALID'));
    expect(() => rootsFromConsistencyProof(5, 5, [], root(5))).toThrow(code('TREE_SIZE_INVALID'));
  });
});

describe('subtree ranges', () => {
  it('decomposes a range into maximal perfect subtrees', () => {
    expect(perfectSubtrees(0, 7)).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 6 },
      { start: 6, end: 7 },
    ]);
    expect(perfectSubtrees(3, 13)).toEqual([
      { start: 3, end: 4 },
      { start: 4, end: 8 },
      { start: 8, end: 12 },
      { start: 12, end: 13 },
    ]);
    expect(perfectSubtrees(5, 5)).toEqual([]);
  });

  it('computes a right-border node from its perfect pieces, and refuses ranges that are no node', () => {
    expect(toHex(subtreeRoot(0, 7, vectorTree.subtreeHash))).toBe(ROOTS[7]!.hex);
    expect(isNodeRange(4, 7)).toBe(true);
    expect(isNodeRange(2, 5)).toBe(false);
    expect(() => subtreeRoot(2, 5, vectorTree.subtreeHash)).toThrow(code('SUBTREE_RANGE_INVALID'));
    expect(() => vectorTree.subtreeHash(0, 3)).toThrow(code('SUBTREE_RANGE_INVALID'));
    expect(() => vectorTree.subtreeHash(8, 9)).toThrow(code('SUBTREE_RANGE_INVALID'));
  });

  it('checks what an accessor returns', () => {
    expect(() => inclusionProof(0, 2, () => new Uint8Array(3) as Hash)).toThrow(code('HASH_LENGTH_INVALID'));
  });
});

describe('properties over sizes 0, 1, 2^k − 1, 2^k, 2^k + 1 and random sizes up to 5000', () => {
  const arbLeaf = arbSize(1).chain((size) => fc.record({ size: fc.constant(size), index: fc.nat({ max: size - 1 }) }));
  const arbSizes = fc.tuple(arbSize(), arbSize()).map(([a, b]) => ({ size1: Math.min(a, b), size2: Math.max(a, b) }));

  it('the tree root at every size is MTH of that prefix', () => {
    fc.assert(
      fc.property(arbSize(), (size) => {
        expect(toHex(TREE.root(size))).toBe(toHex(rootFromLeafHashes(LEAVES.slice(0, size))));
      }),
    );
  });

  it('generated inclusion proofs equal the RFC definition and verify', () => {
    fc.assert(
      fc.property(arbLeaf, ({ size, index }) => {
        const proof = TREE.inclusionProof(index, size);
        expect(hex(proof)).toEqual(hex(referencePath(index, LEAVES.slice(0, size))));
        expect(hex(inclusionProof(index, size, subtreeHashFromLeaves((i) => LEAVES[i]!)))).toEqual(hex(proof));
        verifyInclusion(index, size, LEAVES[index]!, proof, TREE.root(size));
      }),
    );
  });

  it('generated consistency proofs equal the RFC definition and verify', () => {
    fc.assert(
      fc.property(arbSizes, ({ size1, size2 }) => {
        const proof = TREE.consistencyProof(size1, size2);
        expect(hex(proof)).toEqual(hex(referenceConsistency(size1, LEAVES.slice(0, size2))));
        expect(hex(consistencyProof(size1, size2, subtreeHashFromLeaves((i) => LEAVES[i]!)))).toEqual(hex(proof));
        verifyConsistency(size1, size2, proof, TREE.root(size1), TREE.root(size2));
      }),
    );
  });

  it('altering one proof hash, the leaf, the index, the size or the root makes inclusion fail', () => {
    const alteration = fc.oneof(
      fc.record({ kind: fc.constant('proof' as const), at: fc.nat(), bit: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('leaf' as const), bit: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('index' as const), to: fc.nat({ max: MAX_SIZE - 1 }) }),
      fc.record({ kind: fc.constant('size' as const), to: fc.integer({ min: 1, max: MAX_SIZE }) }),
      fc.record({ kind: fc.constant('root' as const), bit: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(arbLeaf, alteration, ({ size, index }, alt) => {
        let proof = TREE.inclusionProof(index, size);
        let [i, n, leaf, r] = [index, size, LEAVES[index]!, TREE.root(size)];
        switch (alt.kind) {
          case 'proof':
            fc.pre(proof.length > 0);
            proof = proof.map((h, j) => (j === alt.at % proof.length ? flipBit(h, alt.bit) : h));
            break;
          case 'leaf':
            leaf = flipBit(leaf, alt.bit);
            break;
          case 'index':
            fc.pre(alt.to !== index);
            i = alt.to;
            break;
          case 'size':
            // a claimed size comes with its own root (both from one checkpoint)
            fc.pre(alt.to !== size);
            [n, r] = [alt.to, TREE.root(alt.to)];
            break;
          case 'root':
            r = flipBit(r, alt.bit);
            break;
          case 'drop':
            fc.pre(proof.length > 0);
            proof = proof.filter((_, j) => j !== alt.at % proof.length);
            break;
          case 'insert':
            proof = [...proof.slice(0, alt.at % (proof.length + 1)), LEAVES[0]!, ...proof.slice(alt.at % (proof.length + 1))];
            break;
        }
        expect(() => verifyInclusion(i, n, leaf, proof, r)).toThrow(AuditLogError);
      }),
    );
  });

  it('altering one proof hash, a size or a root makes consistency fail', () => {
    const alteration = fc.oneof(
      fc.record({ kind: fc.constant('proof' as const), at: fc.nat(), bit: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('size1' as const), to: fc.nat({ max: MAX_SIZE }) }),
      fc.record({ kind: fc.constant('size2' as const), to: fc.nat({ max: MAX_SIZE }) }),
      fc.record({ kind: fc.constant('root1' as const), bit: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('root2' as const), bit: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(arbSizes, alteration, ({ size1, size2 }, alt) => {
        let proof = TREE.consistencyProof(size1, size2);
        let [m, n, r1, r2] = [size1, size2, TREE.root(size1), TREE.root(size2)];
        switch (alt.kind) {
          case 'proof':
            fc.pre(proof.length > 0);
            proof = proof.map((h, j) => (j === alt.at % proof.length ? flipBit(h, alt.bit) : h));
            break;
          case 'size1':
            // sizes travel with their roots; the proof for (size1, size2) MUST NOT prove anything else
            fc.pre(alt.to !== size1 && alt.to <= size2);
            fc.pre(hex(TREE.consistencyProof(alt.to, size2)).join() !== hex(proof).join());
            [m, r1] = [alt.to, TREE.root(alt.to)];
            break;
          case 'size2':
            fc.pre(alt.to !== size2 && alt.to >= size1);
            fc.pre(hex(TREE.consistencyProof(size1, alt.to)).join() !== hex(proof).join());
            [n, r2] = [alt.to, TREE.root(alt.to)];
            break;
          case 'root1':
            r1 = flipBit(r1, alt.bit);
            break;
          case 'root2':
            // nothing binds the new root when the old tree is empty: every tree extends it
            fc.pre(size1 > 0);
            r2 = flipBit(r2, alt.bit);
            break;
          case 'drop':
            fc.pre(proof.length > 0);
            proof = proof.filter((_, j) => j !== alt.at % proof.length);
            break;
          case 'insert':
            proof = [...proof.slice(0, alt.at % (proof.length + 1)), LEAVES[0]!, ...proof.slice(alt.at % (proof.length + 1))];
            break;
        }
        expect(() => verifyConsistency(m, n, proof, r1, r2)).toThrow(AuditLogError);
      }),
    );
  });

  it('a proof hash swapped for its neighbour fails (order matters)', () => {
    fc.assert(
      fc.property(arbLeaf, fc.nat(), ({ size, index }, at) => {
        const proof = TREE.inclusionProof(index, size);
        fc.pre(proof.length >= 2);
        const j = at % (proof.length - 1);
        const swapped = [...proof];
        [swapped[j], swapped[j + 1]] = [proof[j + 1]!, proof[j]!];
        expect(() => verifyInclusion(index, size, LEAVES[index]!, swapped, TREE.root(size))).toThrow(code('ROOT_MISMATCH'));
      }),
    );
  });
});

describe('sizes beyond 32 bits', () => {
  // Bit operators in JS truncate to 32 bits; the arithmetic MUST stay exact up to 2^53 − 1.
  it('computes proof shapes for a tree of 2^40 + 3 leaves', () => {
    const size = 2 ** 40 + 3;
    const ranges = inclusionProofRanges(size - 1, size);
    expect(ranges).toEqual([
      { start: size - 3, end: size - 1 },
      { start: 0, end: 2 ** 40 },
    ]);
    expect(consistencyProofRanges(2 ** 40, size)).toEqual([{ start: 2 ** 40, end: size }]);
  });

  it('verifies a proof in a huge tree whose subtrees are synthetic', () => {
    // Leaves alternate a, b, so a perfect subtree's hash depends on its height (and, for leaves, parity).
    const [a, b] = [leafHash('a'), leafHash('b')];
    const byHeight: Hash[] = [a, nodeHash(a, b)];
    for (let h = 2; h <= 52; h++) byHeight.push(nodeHash(byHeight[h - 1]!, byHeight[h - 1]!));
    const accessor = (start: number, end: number): Hash => (end - start === 1 ? (start % 2 === 0 ? a : b) : byHeight[Math.log2(end - start)]!);
    const size = 2 ** 33 + 2 ** 31 + 5;
    const index = 2 ** 32 + 7;
    const proof = inclusionProof(index, size, accessor);
    const rootHash = subtreeRoot(0, size, accessor);
    expect(() => verifyInclusion(index, size, b, proof, rootHash)).not.toThrow();
    const otherSize = size - 2 ** 31;
    expect(() => verifyInclusion(index, otherSize, b, proof, subtreeRoot(0, otherSize, accessor))).toThrow(code('ROOT_MISMATCH'));
    expect(() => verifyInclusion(index + 1, size, b, proof, rootHash)).toThrow(code('ROOT_MISMATCH'));
  });
});
