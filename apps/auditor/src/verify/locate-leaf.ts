import { AuditLogError, type Hash, hashesEqual, inclusionProofRanges, rootFromInclusionProof, verifyConsistency } from '#audit-log';

/**
 * The smallest prefix size m in (good, bad] whose first m leaves are not the signed ones, by binary search:
 * `intact(m)` says whether the first m leaves are. Precondition: prefix `good` is intact (0 always is),
 * prefix `bad` is not; intactness is monotone (a signed tree of m leaves fixes every leaf below m), so
 * leaf m − 1 is the first altered one.
 */
export async function firstAlteredPrefix(good: number, bad: number, intact: (m: number) => Promise<boolean>): Promise<number> {
  let [lo, hi] = [good, bad];
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (await intact(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Whether a prefix of m leaves, whose root was computed from the raw entries, is the prefix of the signed
 * tree (size, root): the consistency proof from m to size must lead from that root to the signed one.
 */
export function prefixMatches(m: number, prefixRoot: Hash, size: number, signedRoot: Hash, proof: readonly Uint8Array[]): boolean {
  if (m === size) return hashesEqual(prefixRoot, signedRoot);
  try {
    verifyConsistency(m, size, proof, prefixRoot, signedRoot);
    return true;
  } catch (error) {
    if (error instanceof AuditLogError) return false;
    throw error;
  }
}

/**
 * A leaf q whose inclusion proof in a tree of `size` carries leaf p's own hash, and where: p's sibling,
 * or, for the last leaf of an odd tree, the leaf before it. Leaves below p come first (they are known
 * intact when p is the first altered one). Undefined for a tree of one leaf.
 */
export function leafWitness(p: number, size: number): { readonly q: number; readonly index: number } | undefined {
  for (const q of [p ^ 1, p - 1, p + 1]) {
    if (q < 0 || q >= size || q === p) continue;
    const index = inclusionProofRanges(q, size).findIndex((r) => r.start === p && r.end === p + 1);
    if (index >= 0) return { q, index };
  }
  return undefined;
}

/**
 * Leaf p's hash in the signed tree (size, root), read from the inclusion proof of its witness q (see
 * leafWitness), once that proof, with q's leaf hash as computed from the raw entries, leads to the signed
 * root; undefined when it does not (q was altered too, or the proof is wrong): then nothing is known.
 */
export function signedLeafHash(p: number, size: number, root: Hash, q: number, qLeaf: Hash, qProof: readonly Uint8Array[]): Hash | undefined {
  const witness = leafWitness(p, size);
  if (witness?.q !== q) return undefined;
  try {
    if (!hashesEqual(rootFromInclusionProof(q, size, qLeaf, qProof), root)) return undefined;
  } catch (error) {
    if (error instanceof AuditLogError) return undefined;
    throw error;
  }
  return qProof[witness.index] as Hash;
}
