import fc from 'fast-check';
import { type Hash, MemoryTree, leafHash } from '../src/index.js';

/** Leaves of the shared property-test tree: distinct, deterministic. */
export const MAX_SIZE = 5000;
export const LEAVES: readonly Hash[] = Array.from({ length: MAX_SIZE }, (_, i) => leafHash(`event ${i}`));
export const TREE = new MemoryTree(LEAVES);

// The sizes where split logic changes (0, 1, 2^k − 1, 2^k, 2^k + 1), plus any size.
const EDGE_SIZES = [0, 1, ...Array.from({ length: 12 }, (_, i) => 2 ** (i + 1)).flatMap((p) => [p - 1, p, p + 1])];
export const arbSize = (min = 0): fc.Arbitrary<number> =>
  fc.oneof(fc.constantFrom(...EDGE_SIZES.filter((s) => s >= min && s <= MAX_SIZE)), fc.integer({ min, max: MAX_SIZE }));

/** A copy of `hash` with one bit flipped. */
export function flipBit(hash: Uint8Array, bit: number): Hash {
  const copy = new Uint8Array(hash);
  copy[Math.floor(bit / 8) % copy.length]! ^= 1 << bit % 8;
  return copy as Hash;
}

export const hex = (hashes: readonly Uint8Array[]): string[] => hashes.map((h) => Buffer.from(h).toString('hex'));
