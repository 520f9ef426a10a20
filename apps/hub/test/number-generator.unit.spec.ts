import { describe, expect, it } from 'vitest';
import { validateMyNumber } from '#numbering';
import { NumberGenerator, randomDigits } from '../src/numbering/number-generator.js';

describe('randomDigits', () => {
  it('rejects bytes 250..255 instead of folding them into 0..5 (no modulo bias)', () => {
    // 250..255 would map to 0..5 under a plain modulo; they must be skipped.
    const bytes = [250, 251, 252, 253, 254, 255, 9, 19, 249];
    const source = (size: number) => Buffer.from(bytes.splice(0, size));
    expect(randomDigits(3, source)).toBe('999');
  });

  it('asks for more bytes until it has enough digits', () => {
    let calls = 0;
    const source = (size: number) => {
      calls += 1;
      return Buffer.from(Array.from({ length: size }, (_, i) => (calls === 1 ? 255 : i)));
    };
    expect(randomDigits(4, source)).toBe('0123');
    expect(calls).toBe(2);
  });

  it('draws uniformly enough from node:crypto (each digit within 15% of 1/10 over 100k digits)', () => {
    const counts = new Array<number>(10).fill(0);
    for (const c of randomDigits(100_000)) counts[Number(c)]! += 1;
    for (const n of counts) expect(Math.abs(n - 10_000)).toBeLessThan(1_500);
  });
});

describe('NumberGenerator', () => {
  it('produces valid individual numbers and 12-digit corporate bases', () => {
    const g = new NumberGenerator();
    for (let i = 0; i < 200; i++) expect(validateMyNumber(g.individualNumber()).ok).toBe(true);
    expect(g.corporateNumberBase()).toMatch(/^\d{12}$/);
  });
});
