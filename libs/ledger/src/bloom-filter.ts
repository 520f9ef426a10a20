/**
 * A Bloom filter over 53-bit key hashes: "definitely absent" or "maybe present". The ledger consults it
 * before the database so that the common case (a new key, a new stream) costs no read.
 *
 * Its size is fixed when it is made and never grows with the log (I11): as keys accumulate past what the
 * size suits, the false-positive rate rises, (1 − e^(−k·n/m))^k for n keys in m bits with k probes, and
 * more look-ups go on to the SQLite index that confirms them; none is ever missed, because every key added
 * stays in the filter. A saturated filter (every bit set) answers "maybe" to all and costs one indexed read
 * per look-up, which is what the ledger did without a filter.
 */
export class BloomFilter {
  private readonly words: Uint32Array;
  private readonly mask: number;
  /** Probes per key. */
  readonly hashes: number;
  private added = 0;

  constructor(options: BloomFilterOptions = {}) {
    const size = filterSize(options);
    this.words = new Uint32Array(size.bytes / 4);
    this.mask = size.bytes * 8 - 1;
    this.hashes = size.hashes;
  }

  add(hash: number): void {
    let h1 = hash >>> 0;
    const h2 = Math.floor(hash / 0x100000000) | 1;
    for (let i = 0; i < this.hashes; i++) {
      const bit = h1 & this.mask;
      this.words[bit >>> 5]! |= 1 << (bit & 31);
      h1 = (h1 + h2) >>> 0;
    }
    this.added += 1;
  }

  mayContain(hash: number): boolean {
    let h1 = hash >>> 0;
    const h2 = Math.floor(hash / 0x100000000) | 1;
    for (let i = 0; i < this.hashes; i++) {
      const bit = h1 & this.mask;
      if ((this.words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
      h1 = (h1 + h2) >>> 0;
    }
    return true;
  }

  /** Keys added (a key added twice counts twice). */
  get count(): number {
    return this.added;
  }

  /** Memory the filter holds: fixed at construction. */
  get bytes(): number {
    return this.words.byteLength;
  }

  /** The expected false-positive rate at the keys added so far: (1 − e^(−k·n/m))^k. */
  get falsePositiveRate(): number {
    return (1 - Math.exp((-this.hashes * this.added) / (this.bytes * 8))) ** this.hashes;
  }

  /** The filter as stored beside the ledger at a clean close (see saved-filters.ts). */
  save(): SavedFilter {
    return { hashes: this.hashes, count: this.added, bits: Buffer.from(this.words.buffer, this.words.byteOffset, this.words.byteLength) };
  }

  /** A filter as saved, when it has the size and probes `options` ask for; else undefined (then it is rebuilt). */
  static restore(saved: SavedFilter, options: BloomFilterOptions = {}): BloomFilter | undefined {
    const filter = new BloomFilter(options);
    if (saved.bits.byteLength !== filter.bytes || saved.hashes !== filter.hashes || !Number.isSafeInteger(saved.count) || saved.count < 0) return undefined;
    new Uint8Array(filter.words.buffer).set(saved.bits);
    filter.added = saved.count;
    return filter;
  }
}

export interface BloomFilterOptions {
  /**
   * Bytes of memory, fixed whatever the length of the log: rounded down to a power of two, at least 128
   * (default 4 MiB, `DEFAULT_FILTER_BYTES`).
   */
  readonly bytes?: number;
  /** Probes per key, 1 to 16 (default 3, `DEFAULT_FILTER_HASHES`). */
  readonly hashes?: number;
}

/**
 * 4 MiB (2^25 bits) per filter, 12 MiB for the ledger's three (they took ≈ 18 MiB at 3,000,000 events when
 * they grew with the log, and would have taken ≈ 260 MiB at 30,000,000). With 3 probes the false-positive
 * rate is ≈ 1.3 % at 3,000,000 keys (1,000,000 people: 3 events, 3 streams and 3 claims each), ≈ 20 % at
 * 10,000,000 and ≈ 80 % at 30,000,000 (10,000,000 people); past that nearly every look-up of a new key also
 * reads the index (one B-tree probe, as without a filter), and memory stays 4 MiB.
 */
export const DEFAULT_FILTER_BYTES = 4 * 1024 * 1024;
export const DEFAULT_FILTER_HASHES = 3;

/** The size and probes a filter of `options` has (validated). */
export function filterSize(options: BloomFilterOptions = {}): { bytes: number; hashes: number } {
  const wanted = options.bytes ?? DEFAULT_FILTER_BYTES;
  const hashes = options.hashes ?? DEFAULT_FILTER_HASHES;
  // 2^31 bits is where the 32-bit probe arithmetic ends.
  if (!Number.isSafeInteger(wanted) || wanted < 128 || wanted > 2 ** 28) throw new RangeError(`a ledger filter takes 128 bytes to 256 MiB, not ${String(options.bytes)}`);
  if (!Number.isInteger(hashes) || hashes < 1 || hashes > 16) throw new RangeError(`a ledger filter takes 1 to 16 probes per key, not ${String(options.hashes)}`);
  return { bytes: 2 ** Math.floor(Math.log2(wanted)), hashes };
}

export interface SavedFilter {
  readonly hashes: number;
  readonly count: number;
  readonly bits: Buffer;
}
