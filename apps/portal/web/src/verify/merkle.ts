// RFC 6962 / RFC 9162 Merkle hashing, as libs/audit-log computes it, on WebCrypto.
import { concatBytes, sha256, utf8 } from './bytes.js';

export const HASH_SIZE = 32;

/** RFC 6962 leaf hash of a stored envelope text: SHA-256(0x00 ‖ UTF-8 text). */
export function leafHash(text: string): Promise<Uint8Array> {
  return sha256(concatBytes(Uint8Array.of(0x00), utf8(text)));
}

/** RFC 6962 interior node: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(concatBytes(Uint8Array.of(0x01), left, right));
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** How many hashes the inclusion proof of leaf `index` in a tree of `size` has. */
export function inclusionProofLength(index: number, size: number): number {
  let n = 0;
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = largestPowerOfTwoBelow(hi - lo);
    if (index < lo + k) hi = lo + k;
    else lo += k;
    n++;
  }
  return n;
}

export class PathShapeError extends Error {}

/** The root an inclusion path yields for `leaf` at `index` in a tree of `size` (RFC 9162 §2.1.3.2). */
export async function rootFromInclusionProof(index: number, size: number, leaf: Uint8Array, path: readonly Uint8Array[]): Promise<Uint8Array> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    throw new PathShapeError(`leaf index ${index} is not in a tree of ${size} leaves`);
  }
  const expected = inclusionProofLength(index, size);
  if (path.length !== expected) throw new PathShapeError(`the path has ${path.length} hashes; a leaf at ${index} of ${size} needs ${expected}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (p.length !== HASH_SIZE) throw new PathShapeError(`a path hash is ${p.length} bytes, not ${HASH_SIZE}`);
    if (sn === 0) throw new PathShapeError('the path is longer than the way to the root');
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new PathShapeError('the path is shorter than the way to the root');
  return r;
}
