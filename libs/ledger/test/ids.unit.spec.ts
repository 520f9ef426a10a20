import { describe, expect, it } from 'vitest';
import { uuidv7 } from '#ledger';

describe('uuidv7 (RFC 9562)', () => {
  it('carries the millisecond time, version 7 and variant 10, and random bits that differ between calls', () => {
    const at = Date.UTC(2026, 10, 22, 3, 0, 0, 123);
    const ids = Array.from({ length: 2000 }, () => uuidv7(at));
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(at);
    }
    expect(new Set(ids).size).toBe(ids.length);
    // The two variant-free random bits under the variant digit take every value.
    expect(new Set(ids.map((id) => id[19])).size).toBe(4);
  });

  it('sorts by time across milliseconds', () => {
    const a = uuidv7(1_000);
    const b = uuidv7(1_001);
    expect(a < b).toBe(true);
    expect(uuidv7(0).startsWith('00000000-0000-7')).toBe(true);
  });

  it('refuses a time that does not fit 48 bits', () => {
    expect(() => uuidv7(2 ** 48)).toThrow(/48-bit/);
    expect(() => uuidv7(-1)).toThrow(/48-bit/);
  });
});
