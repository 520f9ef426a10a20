/**
 * A Bloom filter over 53-bit key hashes: "definitely absent" or "maybe present". The ledger consults it
 * before the database so that the common case (a new key, a new stream) costs no read. It grows by
 * rebuilding: the caller re-adds every key when `needsGrowth` says the false-positive rate would rise.
 */
export class BloomFilter {
  private readonly bits: Uint32Array;
  private readonly mask: number;
  private count = 0;

  /** Sized for `capacity` keys at about 1% false positives (10 bits and 7 probes a key). */
  constructor(readonly capacity: number) {
    const wanted = Math.max(1024, capacity * 10);
    let size = 1024;
    while (size < wanted) size *= 2;
    this.bits = new Uint32Array(size / 32);
    this.mask = size - 1;
  }

  add(hash: number): void {
    let h1 = hash >>> 0;
    const h2 = Math.floor(hash / 0x100000000) | 1;
    for (let i = 0; i < 7; i++) {
      const bit = h1 & this.mask;
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
      h1 = (h1 + h2) >>> 0;
    }
    this.count += 1;
  }

  mayContain(hash: number): boolean {
    let h1 = hash >>> 0;
    const h2 = Math.floor(hash / 0x100000000) | 1;
    for (let i = 0; i < 7; i++) {
      const bit = h1 & this.mask;
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
      h1 = (h1 + h2) >>> 0;
    }
    return true;
  }

  get needsGrowth(): boolean {
    return this.count > this.capacity;
  }

  /** The filter as stored beside the ledger at a clean close (see SavedFilters). */
  save(): SavedFilter {
    return { capacity: this.capacity, count: this.count, bits: Buffer.from(this.bits.buffer, this.bits.byteOffset, this.bits.byteLength) };
  }

  /** A filter as saved; undefined when the bytes do not fit its capacity (then it is rebuilt). */
  static restore(saved: SavedFilter): BloomFilter | undefined {
    const filter = new BloomFilter(saved.capacity);
    if (saved.bits.byteLength !== filter.bits.byteLength || !Number.isSafeInteger(saved.count) || saved.count < 0) return undefined;
    new Uint8Array(filter.bits.buffer).set(saved.bits);
    filter.count = saved.count;
    return filter;
  }
}

export interface SavedFilter {
  readonly capacity: number;
  readonly count: number;
  readonly bits: Buffer;
}
