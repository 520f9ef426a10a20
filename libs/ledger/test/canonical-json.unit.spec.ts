import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize, canonicalizeReference } from '#ledger';

/** The outcome of a serializer as a comparable value: its text, or the message it threw. */
function outcome(f: (v: unknown) => string | undefined, value: unknown): { text?: string; error?: string } {
  try {
    return { text: f(value) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

describe('canonicalize (the ledger fast path) equals the RFC 8785 library', () => {
  it('for any JSON value, including non-ASCII and integer-like keys', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalize(value)).toBe(canonicalizeReference(value));
      }),
      { numRuns: 3000 },
    );
  });

  it('for any JS value at all (undefined members, dates, sparse arrays, NaN, class instances…)', () => {
    fc.assert(
      fc.property(fc.anything({ withDate: true, withNullPrototype: true, withSparseArray: true, withBoxedValues: true, withMap: true, withSet: true }), (value) => {
        expect(outcome(canonicalize, value)).toEqual(outcome(canonicalizeReference, value));
      }),
      { numRuns: 3000 },
    );
  });

  it('on the cases where a key-sorting serializer usually goes wrong', () => {
    const tricky: unknown[] = [
      { '10': 1, '9': 2, b: 1, a: 2, é: 3, '€': 4, '\u{1F600}': 5, A: 6, '': 7 },
      { n: [1e21, 1e-7, -0, 0.1 + 0.2, 2 ** 53, -1.5e-300] },
      { s: 'lone \ud800 surrogate, "quotes", back\\slash, \u0000 \u001f \u2028' },
      { u: undefined, f: () => 1, k: 1 },
      Object.assign(new Array<number>(3), { 0: 1, 2: 3 }),
      [undefined, () => 1],
      { at: new Date('2026-11-22T00:00:00Z'), nested: { toJSON: () => ({ z: 1, a: 2 }) } },
      Object.assign(Object.create(null) as object, { b: 1, a: 2 }),
      { deep: JSON.parse('['.repeat(70) + ']'.repeat(70)) as unknown },
      Array.from({ length: 40 }, (_, i) => ({ [`k${(i * 7) % 40}`]: i })).reduce((a, b) => Object.assign(a as object, b), {}),
    ];
    for (const value of tricky) expect(outcome(canonicalize, value)).toEqual(outcome(canonicalizeReference, value));
    expect(canonicalize({ b: 1, a: { '10': 1, '9': 2 } })).toBe('{"a":{"10":1,"9":2},"b":1}');
  });
});
