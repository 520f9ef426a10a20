import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { individualNumberFromRandomBase, type MyNumber } from '#numbering';

/**
 * `n` uniformly random decimal digits from node:crypto. Bytes ≥ 250 are rejected, so each digit is
 * `byte mod 10` over 0..249 (25 whole cycles): no modulo bias.
 */
export function randomDigits(n: number, source: (size: number) => Buffer = randomBytes): string {
  let out = '';
  while (out.length < n) {
    for (const byte of source(n - out.length + 4)) {
      if (byte >= 250) continue;
      out += String(byte % 10);
      if (out.length === n) break;
    }
  }
  return out;
}

/** Fresh numbers for the handlers; a provider, so tests can replace the random source. */
@Injectable()
export class NumberGenerator {
  /** A random 11-digit base completed with its check digit. Uniqueness is the ledger's claim, not this. */
  individualNumber(): MyNumber {
    return individualNumberFromRandomBase(randomDigits(11));
  }

  /** A random 12-digit corporate number base (for bodies without a registry number). */
  corporateNumberBase(): string {
    return randomDigits(12);
  }
}
