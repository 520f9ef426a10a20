import { describe, expect, it } from 'vitest';
import { BloomFilter, DEFAULT_FILTER_BYTES, DEFAULT_FILTER_HASHES, filterSize, keyHash } from '#ledger';

/** Distinct 53-bit hashes, as the ledger's keyHash makes them. */
const hashes = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => keyHash(`key-${from + i}`));

describe('BloomFilter: fixed memory, never a miss (I11)', () => {
  it('keeps its size whatever is added: 128 bytes after 100,000 keys, 4 MiB by default', () => {
    const small = new BloomFilter({ bytes: 128, hashes: 2 });
    for (const h of hashes(0, 100_000)) small.add(h);
    expect(small.bytes).toBe(128);
    expect(small.save().bits.byteLength).toBe(128);
    expect(small.count).toBe(100_000);
    const dflt = new BloomFilter();
    expect(dflt.bytes).toBe(DEFAULT_FILTER_BYTES);
    expect(dflt.hashes).toBe(DEFAULT_FILTER_HASHES);
    expect(DEFAULT_FILTER_BYTES).toBe(4 * 1024 * 1024);
  });

  it('a saturated filter still answers "maybe" for every key added (no false negative), and "maybe" for all others', () => {
    const filter = new BloomFilter({ bytes: 128, hashes: 3 });
    const added = hashes(0, 20_000);
    for (const h of added) filter.add(h);
    expect(filter.save().bits.every((b) => b === 0xff)).toBe(true);
    expect(filter.falsePositiveRate).toBeGreaterThan(0.999);
    expect(added.every((h) => filter.mayContain(h))).toBe(true);
    expect(hashes(1_000_000, 1000).every((h) => filter.mayContain(h))).toBe(true);
  });

  it('an overfull filter degrades: its measured false-positive rate follows (1 − e^(−kn/m))^k, and every added key is found', () => {
    // 8 KiB = 65,536 bits, 3 probes: ≈ 0.2 % at 3,000 keys, ≈ 42 % at 30,000.
    for (const [n, expected] of [
      [3_000, 0.0019],
      [30_000, 0.416],
    ] as const) {
      const filter = new BloomFilter({ bytes: 8192, hashes: 3 });
      const added = hashes(0, n);
      for (const h of added) filter.add(h);
      expect(added.every((h) => filter.mayContain(h))).toBe(true);
      const probes = hashes(10_000_000, 50_000);
      const measured = probes.filter((h) => filter.mayContain(h)).length / probes.length;
      expect(filter.falsePositiveRate).toBeCloseTo(expected, 2);
      expect(Math.abs(measured - filter.falsePositiveRate)).toBeLessThan(Math.max(0.002, filter.falsePositiveRate * 0.1));
    }
  });

  it('a saved filter is restored only with the same size and probes', () => {
    const filter = new BloomFilter({ bytes: 1024, hashes: 3 });
    for (const h of hashes(0, 500)) filter.add(h);
    const saved = filter.save();
    const restored = BloomFilter.restore(saved, { bytes: 1024, hashes: 3 })!;
    expect(restored.count).toBe(500);
    expect(hashes(0, 500).every((h) => restored.mayContain(h))).toBe(true);
    expect(BloomFilter.restore(saved, { bytes: 2048, hashes: 3 })).toBeUndefined();
    expect(BloomFilter.restore(saved, { bytes: 1024, hashes: 4 })).toBeUndefined();
    expect(BloomFilter.restore({ ...saved, count: -1 }, { bytes: 1024, hashes: 3 })).toBeUndefined();
  });

  it('sizes: rounded down to a power of two; out of range refused', () => {
    expect(filterSize({ bytes: 3000 })).toEqual({ bytes: 2048, hashes: DEFAULT_FILTER_HASHES });
    expect(filterSize({ bytes: 16 * 1024 * 1024, hashes: 7 })).toEqual({ bytes: 16 * 1024 * 1024, hashes: 7 });
    expect(() => filterSize({ bytes: 64 })).toThrow(RangeError);
    expect(() => filterSize({ bytes: 2 ** 29 })).toThrow(RangeError);
    expect(() => filterSize({ hashes: 0 })).toThrow(RangeError);
    expect(() => filterSize({ hashes: 17 })).toThrow(RangeError);
  });
});
