import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT,
  type Hash,
  asHash,
  hashFromHex,
  isPowerOfTwo,
  leafHash,
  nodeHash,
  rootFromLeafHashes,
  splitPoint,
  toHex,
} from '../src/index.js';
import { LEAF_INPUTS, LEVELS, ROOTS } from './rfc6962-vectors.js';

const leaves = LEAF_INPUTS.map((h) => leafHash(Buffer.from(h, 'hex')));

// The RFC 6962 definition verbatim, with slices: an independent reference for the optimised code.
function referenceMth(hashes: readonly Hash[]): Hash {
  if (hashes.length === 0) return EMPTY_ROOT;
  if (hashes.length === 1) return hashes[0] as Hash;
  let k = 1;
  while (k * 2 < hashes.length) k *= 2;
  return nodeHash(referenceMth(hashes.slice(0, k)), referenceMth(hashes.slice(k)));
}

describe('known answers', () => {
  it('the empty root is SHA-256 of nothing', () => {
    // printf '' | sha256sum
    expect(toHex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(rootFromLeafHashes([]))).toBe(toHex(EMPTY_ROOT));
  });

  it('hashes a string leaf as 0x00 followed by its UTF-8 bytes', () => {
    // printf '\x00hello' | sha256sum
    expect(toHex(leafHash('hello'))).toBe('8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827');
    // printf '\x00\xe5\x80\x8b\xe4\xba\xba' | sha256sum   ("個人" in UTF-8)
    expect(toHex(leafHash('個人'))).toBe('f5d702315d16c73786a81b7fa3d5fc37c923d2c4ad41211a5ad55b225f196b4f');
  });

  it.each(LEVELS[0]!.map((v, i) => ({ ...v, input: LEAF_INPUTS[i] })))('leaf $input → $hex ($sh)', ({ input, hex }) => {
    expect(toHex(leafHash(Buffer.from(input ?? '', 'hex')))).toBe(hex);
  });

  it.each(
    LEVELS.slice(1).flatMap((level, h) => level.map((v, i) => ({ ...v, level: h + 1, i }))),
  )('node at level $level index $i → $hex ($sh)', ({ level, i, hex }) => {
    const children = LEVELS[level - 1]!;
    const left = hashFromHex(children[2 * i]!.hex);
    const right = hashFromHex(children[2 * i + 1]!.hex);
    expect(toHex(nodeHash(left, right))).toBe(hex);
  });

  it.each(ROOTS.map((v, size) => ({ ...v, size })))('root of the first $size leaves → $hex ($sh)', ({ size, hex }) => {
    expect(toHex(rootFromLeafHashes(leaves.slice(0, size)))).toBe(hex);
  });

  it('keeps leaf and node hashing apart: the same 64 bytes hash differently as a leaf and as a node', () => {
    const [a, b] = [leaves[0]!, leaves[1]!];
    expect(toHex(leafHash(Buffer.concat([a, b])))).not.toBe(toHex(nodeHash(a, b)));
  });
});

describe('leafHash', () => {
  it('returns a fresh buffer each call, so a kept hash is not overwritten by the next one', () => {
    const first = leafHash(Uint8Array.of(1));
    const copy = toHex(first);
    leafHash(Uint8Array.of(2));
    nodeHash(first, first);
    expect(toHex(first)).toBe(copy);
  });

  it('hashes a string and its UTF-8 bytes alike, and matches SHA-256(0x00 ‖ data) for any input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), (s) => {
        const expected = createHash('sha256').update(Buffer.concat([Buffer.of(0), Buffer.from(s, 'utf8')])).digest('hex');
        expect(toHex(leafHash(s))).toBe(expected);
        expect(toHex(leafHash(Buffer.from(s, 'utf8')))).toBe(expected);
      }),
    );
  });

  it('hashes inputs larger than its scratch buffer (64 KiB) correctly', () => {
    const big = Buffer.alloc(200_000, 0xab);
    const expected = createHash('sha256').update(Buffer.of(0)).update(big).digest('hex');
    expect(toHex(leafHash(big))).toBe(expected);
    // a smaller input right after MUST NOT see leftovers of the large one
    expect(toHex(leafHash(Uint8Array.of(0xab)))).toBe(createHash('sha256').update(Buffer.of(0, 0xab)).digest('hex'));
    // strings on both sides of the scratch limit (3 UTF-8 bytes per character here)
    for (const length of [21_844, 21_845, 21_846, 70_000]) {
      const text = '個'.repeat(length);
      expect(toHex(leafHash(text)), `${length} characters`).toBe(createHash('sha256').update(Buffer.of(0)).update(text, 'utf8').digest('hex'));
      expect(toHex(leafHash('個'))).toBe(createHash('sha256').update(Buffer.of(0)).update('個', 'utf8').digest('hex'));
    }
  });
});

describe('rootFromLeafHashes', () => {
  it('equals the RFC 6962 definition for every size up to 300', () => {
    const hs = Array.from({ length: 300 }, (_, i) => leafHash(`leaf ${i}`));
    for (let n = 0; n <= hs.length; n++) expect(toHex(rootFromLeafHashes(hs.slice(0, n)))).toBe(toHex(referenceMth(hs.slice(0, n))));
  });

  it('rejects a leaf hash that is not 32 bytes', () => {
    expect(() => rootFromLeafHashes([leaves[0]!, new Uint8Array(31) as Hash])).toThrow(
      expect.objectContaining({ code: 'HASH_LENGTH_INVALID', message: 'leaf hash 1 must be 32 bytes, got 31 bytes' }),
    );
  });
});

describe('splitPoint and isPowerOfTwo', () => {
  it.each([
    [2, 1],
    [3, 2],
    [4, 2],
    [5, 4],
    [8, 4],
    [9, 8],
    [2 ** 31, 2 ** 30],
    [2 ** 31 + 1, 2 ** 31],
    [2 ** 40, 2 ** 39],
    [2 ** 40 + 1, 2 ** 40],
    [Number.MAX_SAFE_INTEGER, 2 ** 52],
  ])('splits %d leaves at %d', (n, k) => {
    expect(splitPoint(n)).toBe(k);
  });

  it('rejects sizes that cannot be split', () => {
    expect(() => splitPoint(1)).toThrow(expect.objectContaining({ code: 'TREE_SIZE_INVALID' }));
    expect(() => splitPoint(2.5)).toThrow(expect.objectContaining({ code: 'TREE_SIZE_INVALID' }));
  });

  it('recognises powers of two beyond 32 bits', () => {
    expect([1, 2, 4, 2 ** 31, 2 ** 32, 2 ** 52].every(isPowerOfTwo)).toBe(true);
    expect([0, 3, 6, 2 ** 32 + 2, -2, 0.5].some(isPowerOfTwo)).toBe(false);
  });
});

describe('hash values', () => {
  it('asHash accepts exactly 32 bytes', () => {
    expect(asHash(new Uint8Array(32))).toHaveLength(32);
    expect(() => asHash(new Uint8Array(33), 'root')).toThrow(expect.objectContaining({ code: 'HASH_LENGTH_INVALID', message: 'root must be 32 bytes, got 33 bytes' }));
  });

  it('hashFromHex accepts exactly 64 hex digits', () => {
    expect(toHex(hashFromHex(ROOTS[3]!.hex))).toBe(ROOTS[3]!.hex);
    expect(toHex(hashFromHex(ROOTS[3]!.hex.toUpperCase()))).toBe(ROOTS[3]!.hex);
    for (const bad of ['', 'ab', `${ROOTS[3]!.hex}00`, `${ROOTS[3]!.hex.slice(0, 63)}g`]) {
      expect(() => hashFromHex(bad)).toThrow(expect.objectContaining({ code: 'HASH_LENGTH_INVALID' }));
    }
  });
});
