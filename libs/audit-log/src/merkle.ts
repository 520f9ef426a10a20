import { createHash, hash as oneShotHash } from 'node:crypto';
import { AuditLogError } from './errors.js';

declare const hashBrand: unique symbol;
/**
 * A 32-byte SHA-256 value of this tree; only `asHash` and the hashing functions produce one.
 * Hashes are shared (EMPTY_ROOT, CompactRange.hashes): they MUST NOT be written to.
 */
export type Hash = Uint8Array & { readonly [hashBrand]: 'Hash' };

export const HASH_SIZE = 32;

/** Checks that `bytes` is 32 bytes long and brands it; does not copy. */
export function asHash(bytes: Uint8Array, what = 'hash'): Hash {
  if (!(bytes instanceof Uint8Array) || bytes.length !== HASH_SIZE) {
    const got = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new AuditLogError('HASH_LENGTH_INVALID', `${what} must be ${HASH_SIZE} bytes, got ${got}`);
  }
  return bytes as Hash;
}

const HEX_HASH = /^[0-9a-fA-F]{64}$/;

/** Parses 64 hexadecimal digits into a hash. */
export function hashFromHex(hex: string, what = 'hash'): Hash {
  if (typeof hex !== 'string' || !HEX_HASH.test(hex)) {
    throw new AuditLogError('HASH_LENGTH_INVALID', `${what} must be 64 hexadecimal digits, got ${JSON.stringify(hex)}`);
  }
  return Buffer.from(hex, 'hex') as Uint8Array as Hash;
}

/** Lowercase hex of any bytes (hashes, key ids). */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Byte equality of two hashes (public values: no constant-time need). */
export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// RFC 6962 §2.1 domain separation: a leaf can never be reinterpreted as an interior node.
const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;
const LEAF_PREFIX_BYTES = Uint8Array.of(LEAF_PREFIX);

// Reused input buffers: leafHash and nodeHash run a million times in an audit, and node:crypto's
// one-shot `hash()` over a reused buffer needs no Hash object and no input copy per call.
const LEAF_SCRATCH_LIMIT = 64 * 1024;
const leafScratch = Buffer.alloc(LEAF_SCRATCH_LIMIT + 1);
const nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeScratch[0] = NODE_PREFIX;

/**
 * RFC 6962 leaf hash: SHA-256(0x00 ‖ data). A string is hashed as its UTF-8 bytes.
 * The result is a fresh buffer that the caller may keep.
 */
export function leafHash(data: Uint8Array | string): Hash {
  // '\0' + data encodes to 0x00 ‖ UTF-8(data).
  if (typeof data === 'string') return sha256('\u0000' + data);
  if (data.length <= LEAF_SCRATCH_LIMIT) {
    leafScratch[0] = LEAF_PREFIX;
    leafScratch.set(data, 1);
    return sha256(leafScratch.subarray(0, data.length + 1));
  }
  // Large inputs stream instead of being copied.
  return createHash('sha256').update(LEAF_PREFIX_BYTES).update(data).digest() as Uint8Array as Hash;
}

/** RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_SIZE);
  return sha256(nodeScratch);
}

/**
 * SHA-256 as a 32-byte buffer. node:crypto returns a latin1 string (one char per byte) several times
 * faster than a Buffer of its own, and a short string becomes a buffer from Node's pool cheaply.
 */
function sha256(input: Uint8Array | string): Hash {
  return Buffer.from(oneShotHash('sha256', input, 'binary'), 'latin1') as Uint8Array as Hash;
}

/** The root of the empty tree, SHA-256 of the empty string (RFC 6962 §2.1). */
export const EMPTY_ROOT: Hash = oneShotHash('sha256', new Uint8Array(0), 'buffer') as Uint8Array as Hash;

/** Checks a tree size or index: a non-negative safe integer. */
export function checkTreeSize(n: number, what = 'tree size'): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new AuditLogError('TREE_SIZE_INVALID', `${what} must be a non-negative safe integer, got ${String(n)}`);
  }
}

/** The largest power of two strictly below n (n ≥ 2): where RFC 6962 splits a tree of n leaves. */
export function splitPoint(n: number): number {
  // Precondition: n is a safe integer ≥ 2.
  if (!Number.isSafeInteger(n) || n < 2) throw new AuditLogError('TREE_SIZE_INVALID', `cannot split a tree of ${String(n)} leaves`);
  if (n <= 0x80000000) return 2 ** (31 - Math.clz32(n - 1));
  let k = 0x80000000;
  while (k * 2 < n) k *= 2;
  return k;
}

/** True when n is 2^k for some k ≥ 0 (works beyond 32 bits, unlike n & (n - 1)). */
export function isPowerOfTwo(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/** MTH(D[n]) of RFC 6962 §2.1 over leaf hashes; EMPTY_ROOT for none. */
export function rootFromLeafHashes(hashes: readonly Hash[]): Hash {
  if (hashes.length === 0) return EMPTY_ROOT;
  for (let i = 0; i < hashes.length; i++) asHash(hashes[i] as Uint8Array, `leaf hash ${i}`);
  return mth(hashes, 0, hashes.length);
}

// Ranges instead of slices: no copying, recursion depth is log2(n).
function mth(hashes: readonly Hash[], lo: number, hi: number): Hash {
  if (hi - lo === 1) return hashes[lo] as Hash;
  const k = splitPoint(hi - lo);
  return nodeHash(mth(hashes, lo, lo + k), mth(hashes, lo + k, hi));
}
