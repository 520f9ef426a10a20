import { AuditLogError } from './errors.js';
import {
  EMPTY_ROOT,
  type Hash,
  asHash,
  checkTreeSize,
  hashesEqual,
  isPowerOfTwo,
  nodeHash,
  splitPoint,
  toHex,
} from './merkle.js';

/** The leaves [start, end) under one node of the tree. */
export interface NodeRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Returns the hash of the perfect subtree over leaves [start, end): end − start is a power of two and
 * start is a multiple of it. A store serves this from persisted nodes (see CompactRange's onNode).
 * It MUST return exactly MTH(D[start:end]) and MUST NOT be asked for any other kind of range.
 */
export type SubtreeHashAccessor = (start: number, end: number) => Hash;

/** True when [start, end) is a perfect subtree: width 2^k and start a multiple of 2^k. */
export function isPerfectRange(start: number, end: number): boolean {
  return Number.isSafeInteger(start) && start >= 0 && isPowerOfTwo(end - start) && start % (end - start) === 0;
}

/**
 * True when [start, end) is a node of some tree, perfect or on a right border: start is a multiple of
 * the smallest power of two ≥ end − start. Only such ranges have an RFC 6962 hash of their own.
 */
export function isNodeRange(start: number, end: number): boolean {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start) return false;
  let p = 1;
  while (p < end - start) p *= 2;
  return start % p === 0;
}

/** The maximal perfect subtrees covering [start, end), left to right (a compact range's nodes). */
export function perfectSubtrees(start: number, end: number): NodeRange[] {
  // Precondition: 0 ≤ start ≤ end, both safe integers.
  checkTreeSize(start, 'range start');
  checkTreeSize(end, 'range end');
  if (end < start) throw new AuditLogError('SUBTREE_RANGE_INVALID', `range [${start}, ${end}) ends before it starts`);
  const out: NodeRange[] = [];
  let s = start;
  while (s < end) {
    let w = 1;
    while (w * 2 <= end - s) w *= 2;
    while (s % w !== 0) w /= 2;
    out.push({ start: s, end: s + w });
    s += w;
  }
  return out;
}

/**
 * MTH(D[start:end]) of a node range, from the perfect subtrees that cover it. A right-border node folds
 * its perfect pieces right to left, which is exactly where RFC 6962 splits it.
 */
export function subtreeRoot(start: number, end: number, subtreeHash: SubtreeHashAccessor): Hash {
  // Precondition: [start, end) is a node range (isNodeRange).
  if (!isNodeRange(start, end)) {
    throw new AuditLogError('SUBTREE_RANGE_INVALID', `[${start}, ${end}) is not a node of an RFC 6962 tree`);
  }
  const pieces = perfectSubtrees(start, end);
  let i = pieces.length - 1;
  let acc = fetchPerfect(pieces[i] as NodeRange, subtreeHash);
  for (i--; i >= 0; i--) acc = nodeHash(fetchPerfect(pieces[i] as NodeRange, subtreeHash), acc);
  return acc;
}

function fetchPerfect(r: NodeRange, subtreeHash: SubtreeHashAccessor): Hash {
  return asHash(subtreeHash(r.start, r.end), `hash of subtree [${r.start}, ${r.end})`);
}

/** The root of the tree of the first `size` leaves, from perfect subtree hashes. */
export function rootAt(size: number, subtreeHash: SubtreeHashAccessor): Hash {
  // Precondition: size is a non-negative safe integer.
  checkTreeSize(size);
  return size === 0 ? EMPTY_ROOT : subtreeRoot(0, size, subtreeHash);
}

/**
 * An accessor that recomputes each perfect subtree from its leaves: O(width) hashing per call. For a
 * store that keeps only leaf hashes, and as a reference in tests.
 */
export function subtreeHashFromLeaves(getLeafHash: (index: number) => Hash): SubtreeHashAccessor {
  const perfect = (start: number, end: number): Hash => {
    if (end - start === 1) return asHash(getLeafHash(start), `leaf hash ${start}`);
    const mid = start + (end - start) / 2;
    return nodeHash(perfect(start, mid), perfect(mid, end));
  };
  return (start, end) => {
    if (!isPerfectRange(start, end)) throw new AuditLogError('SUBTREE_RANGE_INVALID', `[${start}, ${end}) is not a perfect subtree`);
    return perfect(start, end);
  };
}

// ---- which node ranges a proof needs (RFC 9162 §2.1.3.1 and §2.1.4.1) ----

/** The ranges whose hashes form the inclusion proof of leaf `index` in a tree of `size`, leaf upwards. */
export function inclusionProofRanges(index: number, size: number): NodeRange[] {
  // Precondition: 0 ≤ index < size.
  checkIndex(index, size);
  const topDown: NodeRange[] = [];
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      topDown.push({ start: lo + k, end: hi });
      hi = lo + k;
    } else {
      topDown.push({ start: lo, end: lo + k });
      lo += k;
    }
  }
  return topDown.reverse();
}

/** The ranges whose hashes form the consistency proof from size1 to size2, in RFC 9162 order. */
export function consistencyProofRanges(size1: number, size2: number): NodeRange[] {
  // Precondition: 0 ≤ size1 ≤ size2.
  checkSizes(size1, size2);
  if (size1 === 0 || size1 === size2) return [];
  const topDown: NodeRange[] = [];
  let lo = 0;
  let hi = size2;
  // SUBPROOF's flag b: stays true while the old tree is a left prefix of the subtree.
  let oldTreeIsPrefix = true;
  while (size1 !== hi) {
    const k = splitPoint(hi - lo);
    if (size1 - lo <= k) {
      topDown.push({ start: lo + k, end: hi });
      hi = lo + k;
    } else {
      topDown.push({ start: lo, end: lo + k });
      lo += k;
      oldTreeIsPrefix = false;
    }
  }
  if (!oldTreeIsPrefix) topDown.push({ start: lo, end: hi });
  return topDown.reverse();
}

// ---- proof generation ----

/** The inclusion proof of leaf `index` in the tree of the first `size` leaves. */
export function inclusionProof(index: number, size: number, subtreeHash: SubtreeHashAccessor): Hash[] {
  return inclusionProofRanges(index, size).map((r) => subtreeRoot(r.start, r.end, subtreeHash));
}

/** The consistency proof between the trees of the first size1 and size2 leaves. */
export function consistencyProof(size1: number, size2: number, subtreeHash: SubtreeHashAccessor): Hash[] {
  return consistencyProofRanges(size1, size2).map((r) => subtreeRoot(r.start, r.end, subtreeHash));
}

// ---- compute roots from proofs (RFC 9162 §2.1.3.2 and §2.1.4.2) ----

const isOdd = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

/** The root that `proof` yields for `leafHash` at `index` in a tree of `size`. */
export function rootFromInclusionProof(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Hash {
  // Precondition: 0 ≤ index < size, every hash is 32 bytes, proof has the length (index, size) needs.
  checkIndex(index, size);
  let r = asHash(leafHash, 'leaf hash');
  const path = checkProof(proof, inclusionProofRanges(index, size).length);
  let fn = index;
  let sn = size - 1;
  for (const p of path) {
    if (sn === 0) throw shapeError();
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      // A leaf on the right border skips the levels where it has no sibling.
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw shapeError();
  return r;
}

/**
 * The roots of the old (size1) and new (size2) trees that `proof` yields when the old root is root1.
 * Only the new root carries information when size1 is a power of two (the old root is then the seed).
 */
export function rootsFromConsistencyProof(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
): { readonly first: Hash; readonly second: Hash } {
  // Precondition: 0 < size1 < size2, every hash is 32 bytes, proof has the length (size1, size2) needs.
  checkSizes(size1, size2);
  if (size1 === 0 || size1 === size2) {
    throw new AuditLogError('TREE_SIZE_INVALID', `a consistency proof from ${size1} to ${size2} is empty and yields no root`);
  }
  const first = asHash(root1, 'first root');
  const given = checkProof(proof, consistencyProofRanges(size1, size2).length);
  // RFC 9162 §2.1.4.2 step 2: an old tree of 2^k leaves is itself a node of the new tree.
  const path = isPowerOfTwo(size1) ? [first, ...given] : given;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0] as Hash;
  let sr = path[0] as Hash;
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Hash;
    if (sn === 0) throw shapeError();
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw shapeError();
  return { first: fr, second: sr };
}

// ---- compare roots ----

/** Throws ROOT_MISMATCH, carrying both values as hex, unless `calculated` equals the trusted `expected`. */
export function assertRootsEqual(expected: Uint8Array, calculated: Uint8Array, what = 'root'): void {
  // Precondition: both are 32-byte hashes.
  asHash(expected, `expected ${what}`);
  asHash(calculated, `calculated ${what}`);
  if (!hashesEqual(expected, calculated)) {
    const e = toHex(expected);
    const c = toHex(calculated);
    throw new AuditLogError('ROOT_MISMATCH', `${what} mismatch: expected ${e}, calculated ${c}`, { expected: e, calculated: c });
  }
}

// ---- verification = compute + compare ----

/** Verifies that `leafHash` is leaf `index` of the tree of `size` leaves whose root is `root`; throws otherwise. */
export function verifyInclusion(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  asHash(root, 'root');
  assertRootsEqual(root, rootFromInclusionProof(index, size, leafHash, proof));
}

/** Verifies that the tree (size1, root1) is a prefix of the tree (size2, root2); throws otherwise. */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  // Precondition: 0 ≤ size1 ≤ size2, both roots are 32 bytes.
  checkSizes(size1, size2);
  asHash(root1, 'first root');
  asHash(root2, 'second root');
  if (size1 === size2) {
    checkProof(proof, 0);
    assertRootsEqual(root1, root2, 'second root');
    return;
  }
  if (size1 === 0) {
    // Every tree extends the empty one, but a checkpoint of size 0 MUST carry the empty root.
    checkProof(proof, 0);
    assertRootsEqual(EMPTY_ROOT, root1, 'first root');
    return;
  }
  const { first, second } = rootsFromConsistencyProof(size1, size2, proof, root1);
  assertRootsEqual(root1, first, 'first root');
  assertRootsEqual(root2, second, 'second root');
}

// ---- preconditions ----

function checkIndex(index: number, size: number): void {
  checkTreeSize(size);
  checkTreeSize(index, 'leaf index');
  if (index >= size) throw new AuditLogError('INDEX_OUT_OF_RANGE', `leaf index ${index} is not in a tree of ${size} leaves`);
}

function checkSizes(size1: number, size2: number): void {
  checkTreeSize(size1, 'first tree size');
  checkTreeSize(size2, 'second tree size');
  if (size1 > size2) {
    throw new AuditLogError('TREE_SIZE_INVALID', `first tree size ${size1} is larger than second tree size ${size2}`);
  }
}

function checkProof(proof: readonly Uint8Array[], expectedLength: number): Hash[] {
  if (proof.length !== expectedLength) throw proofSizeError(expectedLength, proof.length);
  return proof.map((h, i) => asHash(h, `proof hash ${i}`));
}

function proofSizeError(expectedLength: number, actualLength: number): AuditLogError {
  return new AuditLogError('PROOF_SIZE_INVALID', `proof must have ${expectedLength} hashes, has ${actualLength}`, { expectedLength, actualLength });
}

// The RFC's own length checks; unreachable after checkProof, kept so the loops stand alone as in RFC 9162.
function shapeError(): AuditLogError {
  return new AuditLogError('PROOF_SIZE_INVALID', 'the proof does not fit the path from the leaf to the root of this tree size');
}
