import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CompactRange, EMPTY_ROOT, type Hash, isPerfectRange, leafHash, nodeHash, rootFromLeafHashes, toHex } from '../src/index.js';
import { LEAVES, arbSize, hex } from './fixtures.js';
import { LEAF_INPUTS, LEVELS, ROOTS } from './rfc6962-vectors.js';

const vectorLeaves = LEAF_INPUTS.map((h) => leafHash(Buffer.from(h, 'hex')));
const code = (c: string) => expect.objectContaining({ code: c });

describe('compact range of the RFC 6962 test tree', () => {
  // transparency-dev/merkle testonly.CompactTrees(): the perfect roots after each append.
  const level = (h: number, i: number): string => LEVELS[h]![i]!.hex;
  const expected: string[][] = [
    [],
    [level(0, 0)],
    [level(1, 0)],
    [level(1, 0), level(0, 2)],
    [level(2, 0)],
    [level(2, 0), level(0, 4)],
    [level(2, 0), level(1, 2)],
    [level(2, 0), level(1, 2), level(0, 6)],
    [level(3, 0)],
  ];

  it.each(expected.map((hashes, size) => ({ size, hashes })))('holds the known perfect roots and root at size $size', ({ size, hashes }) => {
    const range = CompactRange.fromLeafHashes(vectorLeaves.slice(0, size));
    expect(range.size).toBe(size);
    expect(hex(range.hashes)).toEqual(hashes);
    expect(toHex(range.root())).toBe(ROOTS[size]!.hex);
  });

  it('reports every perfect subtree an append completes, bottom-up, the leaf first', () => {
    const range = CompactRange.fromLeafHashes(vectorLeaves.slice(0, 7));
    const completed: [number, number, string][] = [];
    range.append(vectorLeaves[7]!, (hash, start, end) => completed.push([start, end, toHex(hash)]));
    expect(completed).toEqual([
      [7, 8, level(0, 7)],
      [6, 8, level(1, 3)],
      [4, 8, level(2, 1)],
      [0, 8, level(3, 0)],
    ]);
  });
});

describe('compact range properties', () => {
  it('its root equals rootFromLeafHashes at every size from 0 to 520', () => {
    const range = CompactRange.empty();
    expect(toHex(range.root())).toBe(toHex(EMPTY_ROOT));
    for (let n = 1; n <= 520; n++) {
      range.append(LEAVES[n - 1]!);
      expect(toHex(range.root())).toBe(toHex(rootFromLeafHashes(LEAVES.slice(0, n))));
    }
  });

  it('its root equals rootFromLeafHashes at sizes 2^k ± 1 and random sizes up to 5000', () => {
    fc.assert(
      fc.property(arbSize(), (size) => {
        const range = CompactRange.fromLeafHashes(LEAVES.slice(0, size));
        expect(range.size).toBe(size);
        expect(range.hashes).toHaveLength([...size.toString(2)].filter((b) => b === '1').length);
        expect(toHex(range.root())).toBe(toHex(rootFromLeafHashes(LEAVES.slice(0, size))));
      }),
    );
  });

  it('reports each perfect subtree exactly once with its true hash', () => {
    fc.assert(
      fc.property(arbSize(), (size) => {
        // Independent reference: pair up each level of the first `size` leaves.
        const levels: Hash[][] = [LEAVES.slice(0, size)];
        for (let h = 0; levels[h]!.length > 1; h++) {
          const below = levels[h]!;
          levels.push(Array.from({ length: Math.floor(below.length / 2) }, (_, i) => nodeHash(below[2 * i]!, below[2 * i + 1]!)));
        }
        const reported = new Map<string, string>();
        const notPerfect: string[] = [];
        let calls = 0;
        CompactRange.fromLeafHashes(LEAVES.slice(0, size), (hash, start, end) => {
          calls++;
          if (!isPerfectRange(start, end)) notPerfect.push(`${start}-${end}`);
          reported.set(`${start}-${end}`, toHex(hash));
        });
        const expected = new Map(levels.flatMap((level, h) => level.map((hash, i): [string, string] => [`${i * 2 ** h}-${(i + 1) * 2 ** h}`, toHex(hash)])));
        expect(notPerfect).toEqual([]);
        expect(reported).toEqual(expected);
        expect(calls).toBe(expected.size);
      }),
      { numRuns: 40 },
    );
  });

  it('round-trips through its JSON and binary forms, and keeps appending identically', () => {
    fc.assert(
      fc.property(arbSize(), fc.nat({ max: 40 }), (size, more) => {
        const range = CompactRange.fromLeafHashes(LEAVES.slice(0, size));
        const json = JSON.parse(JSON.stringify(range.serialize())) as ReturnType<CompactRange['serialize']>;
        const fromJson = CompactRange.parse(json);
        const fromBytes = CompactRange.fromBytes(range.toBytes());
        for (const copy of [fromJson, fromBytes]) {
          expect(copy.size).toBe(size);
          expect(hex(copy.hashes)).toEqual(hex(range.hashes));
          copy.appendMany(LEAVES.slice(size, size + more));
        }
        range.appendMany(LEAVES.slice(size, size + more));
        expect(toHex(fromJson.root())).toBe(toHex(range.root()));
        expect(toHex(fromBytes.root())).toBe(toHex(range.root()));
      }),
    );
  });

  it('clones are independent', () => {
    const range = CompactRange.fromLeafHashes(LEAVES.slice(0, 5));
    const copy = range.clone();
    copy.append(LEAVES[5]!);
    expect(range.size).toBe(5);
    expect(toHex(range.root())).toBe(toHex(rootFromLeafHashes(LEAVES.slice(0, 5))));
  });
});

describe('compact range validation', () => {
  it('rejects a persisted state whose hash count does not match its size', () => {
    const state = CompactRange.fromLeafHashes(LEAVES.slice(0, 6)).serialize();
    expect(() => CompactRange.parse({ size: 7, hashes: state.hashes })).toThrow(
      expect.objectContaining({ code: 'COMPACT_RANGE_INVALID', message: 'a compact range of size 7 has 3 hashes, got 2' }),
    );
    expect(() => CompactRange.parse({ size: -1, hashes: [] })).toThrow(code('COMPACT_RANGE_INVALID'));
    expect(() => CompactRange.parse({ size: 1.5, hashes: [] })).toThrow(code('COMPACT_RANGE_INVALID'));
    expect(() => CompactRange.parse({ size: 2, hashes: ['zz'] })).toThrow(code('HASH_LENGTH_INVALID'));
    expect(() => CompactRange.parse(null as unknown as { size: number; hashes: string[] })).toThrow(code('COMPACT_RANGE_INVALID'));
  });

  it('rejects binary forms of the wrong length', () => {
    const bytes = CompactRange.fromLeafHashes(LEAVES.slice(0, 6)).toBytes();
    expect(bytes).toHaveLength(8 + 2 * 32);
    expect(() => CompactRange.fromBytes(bytes.subarray(0, bytes.length - 1))).toThrow(code('COMPACT_RANGE_INVALID'));
    expect(() => CompactRange.fromBytes(new Uint8Array(7))).toThrow(code('COMPACT_RANGE_INVALID'));
    expect(() => CompactRange.fromBytes(new Uint8Array(8).fill(0xff))).toThrow(code('COMPACT_RANGE_INVALID'));
  });

  it('rejects a leaf hash that is not 32 bytes without changing its state', () => {
    const range = CompactRange.fromLeafHashes(LEAVES.slice(0, 3));
    expect(() => range.append(new Uint8Array(16) as Hash)).toThrow(code('HASH_LENGTH_INVALID'));
    expect(range.size).toBe(3);
  });
});
