import { AuditLogError } from './errors.js';
import { EMPTY_ROOT, HASH_SIZE, type Hash, asHash, hashFromHex, nodeHash, toHex } from './merkle.js';

/**
 * Told about every perfect subtree [start, end) that an append completes, bottom-up, the new leaf
 * itself first. A store that persists these can serve any proof later (SubtreeHashAccessor).
 */
export type OnNodeCompleted = (hash: Hash, start: number, end: number) => void;

/** The persisted form of a compact range: JSON-safe. */
export interface CompactRangeState {
  readonly size: number;
  /** Roots of the perfect subtrees covering [0, size), largest (leftmost) first, lowercase hex. */
  readonly hashes: readonly string[];
}

/**
 * The incremental state of an RFC 6962 tree over leaves [0, size): the roots of the perfect subtrees
 * that cover it, one per set bit of size, largest first (transparency-dev's compact range from 0).
 * O(log n) memory; append is amortised O(1) hashing. Mutable on purpose: an auditor appends 10^6 leaves.
 */
export class CompactRange {
  private constructor(
    private count: number,
    private readonly nodes: Hash[],
  ) {}

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  static fromLeafHashes(leafHashes: Iterable<Hash>, onNode?: OnNodeCompleted): CompactRange {
    const range = CompactRange.empty();
    range.appendMany(leafHashes, onNode);
    return range;
  }

  /** The number of leaves covered. */
  get size(): number {
    return this.count;
  }

  /** The perfect subtree roots, largest first. Read-only view: MUST NOT be mutated by the caller. */
  get hashes(): readonly Hash[] {
    return this.nodes;
  }

  /** Appends one leaf hash and merges the perfect subtrees it completes. */
  append(leafHash: Hash, onNode?: OnNodeCompleted): void {
    // Precondition: leafHash is 32 bytes; size + 1 is a safe integer.
    asHash(leafHash, 'leaf hash');
    if (this.count >= Number.MAX_SAFE_INTEGER) throw new AuditLogError('TREE_SIZE_INVALID', 'the tree is full');
    let hash = leafHash;
    let start = this.count;
    let width = 1;
    onNode?.(hash, start, start + 1);
    // Each trailing 1 bit of the old size is a perfect subtree of equal width waiting on its right sibling.
    for (let n = this.count; n % 2 === 1; n = Math.floor(n / 2)) {
      hash = nodeHash(this.nodes.pop() as Hash, hash);
      start -= width;
      width *= 2;
      onNode?.(hash, start, start + width);
    }
    this.nodes.push(hash);
    this.count++;
  }

  appendMany(leafHashes: Iterable<Hash>, onNode?: OnNodeCompleted): void {
    for (const h of leafHashes) this.append(h, onNode);
  }

  /** MTH of leaves [0, size): the perfect roots folded right to left; EMPTY_ROOT when empty. */
  root(): Hash {
    const n = this.nodes.length;
    if (n === 0) return EMPTY_ROOT;
    let acc = this.nodes[n - 1] as Hash;
    for (let i = n - 2; i >= 0; i--) acc = nodeHash(this.nodes[i] as Hash, acc);
    return acc;
  }

  /** An independent copy (appending to one does not change the other). */
  clone(): CompactRange {
    return new CompactRange(this.count, [...this.nodes]);
  }

  serialize(): CompactRangeState {
    return { size: this.count, hashes: this.nodes.map(toHex) };
  }

  /** Rebuilds a range from `serialize()` output; rejects a state whose hash count does not match its size. */
  static parse(state: CompactRangeState): CompactRange {
    // Precondition: size is a safe integer ≥ 0 and hashes has exactly popcount(size) 64-digit hex entries.
    if (typeof state !== 'object' || state === null || !Array.isArray(state.hashes)) {
      throw new AuditLogError('COMPACT_RANGE_INVALID', 'compact range state must be an object { size, hashes[] }');
    }
    checkStateSize(state.size);
    const expected = popcount(state.size);
    if (state.hashes.length !== expected) {
      throw new AuditLogError('COMPACT_RANGE_INVALID', `a compact range of size ${state.size} has ${expected} hashes, got ${state.hashes.length}`);
    }
    return new CompactRange(
      state.size,
      state.hashes.map((h, i) => hashFromHex(h, `compact range hash ${i}`)),
    );
  }

  /** Binary form: size as 8-byte big-endian, then the 32-byte hashes, largest subtree first. */
  toBytes(): Uint8Array {
    const out = Buffer.alloc(8 + HASH_SIZE * this.nodes.length);
    out.writeBigUInt64BE(BigInt(this.count), 0);
    this.nodes.forEach((h, i) => out.set(h, 8 + HASH_SIZE * i));
    return out;
  }

  static fromBytes(bytes: Uint8Array): CompactRange {
    // Precondition: 8 + 32·popcount(size) bytes, size ≤ 2^53 − 1.
    if (bytes.length < 8) throw new AuditLogError('COMPACT_RANGE_INVALID', `compact range bytes must be at least 8 long, got ${bytes.length}`);
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const big = buf.readBigUInt64BE(0);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new AuditLogError('COMPACT_RANGE_INVALID', `compact range size ${big} exceeds 2^53 − 1`);
    const size = Number(big);
    const count = popcount(size);
    if (bytes.length !== 8 + HASH_SIZE * count) {
      throw new AuditLogError('COMPACT_RANGE_INVALID', `a compact range of size ${size} is ${8 + HASH_SIZE * count} bytes, got ${bytes.length}`);
    }
    const nodes: Hash[] = [];
    for (let i = 0; i < count; i++) nodes.push(asHash(new Uint8Array(bytes.subarray(8 + HASH_SIZE * i, 8 + HASH_SIZE * (i + 1)))));
    return new CompactRange(size, nodes);
  }
}

function checkStateSize(size: unknown): asserts size is number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new AuditLogError('COMPACT_RANGE_INVALID', `compact range size must be a non-negative safe integer, got ${String(size)}`);
  }
}

function popcount(n: number): number {
  let bits = 0;
  for (; n > 0; n = Math.floor(n / 2)) bits += n % 2;
  return bits;
}
