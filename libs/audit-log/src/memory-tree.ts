import { CompactRange } from './compact-range.js';
import { AuditLogError } from './errors.js';
import { type Hash, asHash, checkTreeSize } from './merkle.js';
import { type SubtreeHashAccessor, consistencyProof, inclusionProof, isPerfectRange, rootAt } from './proof.js';

/**
 * An in-memory tree that keeps every perfect subtree hash, fed by CompactRange's onNode exactly as a
 * persistent store would be. Serves proofs and roots for any size up to its own. For tests and small logs.
 */
export class MemoryTree {
  /** levels[h][i] = hash of the perfect subtree [i·2^h, (i+1)·2^h). */
  private readonly levels: Hash[][] = [];
  private readonly range = CompactRange.empty();

  constructor(leafHashes: Iterable<Hash> = []) {
    for (const h of leafHashes) this.append(h);
  }

  get size(): number {
    return this.range.size;
  }

  append(leafHash: Hash): void {
    this.range.append(leafHash, (hash, start, end) => {
      const width = end - start;
      const level = Math.log2(width);
      (this.levels[level] ??= [])[start / width] = hash;
    });
  }

  /** The perfect subtree accessor over this tree; bound, so it can be passed around. */
  readonly subtreeHash: SubtreeHashAccessor = (start, end) => {
    // Precondition: [start, end) is a perfect subtree inside [0, size).
    if (!isPerfectRange(start, end) || end > this.size) {
      throw new AuditLogError('SUBTREE_RANGE_INVALID', `[${start}, ${end}) is not a perfect subtree of a tree of ${this.size} leaves`);
    }
    const width = end - start;
    return asHash(this.levels[Math.log2(width)]?.[start / width] as Hash, `subtree [${start}, ${end})`);
  };

  leafHash(index: number): Hash {
    return this.subtreeHash(index, index + 1);
  }

  /** The root of the first `size` leaves (default: all). */
  root(size: number = this.size): Hash {
    this.checkSize(size);
    return size === this.size ? this.range.root() : rootAt(size, this.subtreeHash);
  }

  inclusionProof(index: number, size: number = this.size): Hash[] {
    this.checkSize(size);
    return inclusionProof(index, size, this.subtreeHash);
  }

  consistencyProof(size1: number, size2: number = this.size): Hash[] {
    this.checkSize(size2);
    return consistencyProof(size1, size2, this.subtreeHash);
  }

  private checkSize(size: number): void {
    checkTreeSize(size);
    if (size > this.size) throw new AuditLogError('TREE_SIZE_INVALID', `tree size ${size} is beyond the ${this.size} leaves held`);
  }
}
