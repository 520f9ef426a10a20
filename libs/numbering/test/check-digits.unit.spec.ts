import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  NumberingError,
  corporateNumberCheckDigit,
  corporateNumberFromBase,
  individualNumberCheckDigit,
  individualNumberFromRandomBase,
  individualNumberRemainder,
  localGovernmentCodeCheckDigit,
  validateCorporateNumber,
  validateLocalGovernmentCode,
  validateMyNumber,
  validateResidentRecordCode,
  valueOrThrow,
} from '#numbering';

const digits = (n: number) => fc.stringMatching(new RegExp(`^[0-9]{${n}}$`));
const replaceAt = (s: string, i: number, d: string) => s.slice(0, i) + d + s.slice(i + 1);

describe('individual number (個人番号)', () => {
  test('worked example: base 12345678901 gives 123456789018', () => {
    expect(individualNumberCheckDigit('12345678901')).toBe(8);
    expect(individualNumberFromRandomBase('12345678901')).toBe('123456789018');
    expect(validateMyNumber('123456789018')).toEqual({ ok: true, value: '123456789018' });
  });

  test.each([
    // [base, remainder of Σ Pn×Qn mod 11, check digit]; Pn counted from the right
    ['00000000000', 0, 0], // remainder 0 → 0
    ['00000000300', 1, 0], // P3 = 3, Q3 = 4: 12 mod 11 = 1 → 0
    ['00000000001', 2, 9], // P1 = 1, Q1 = 2
    ['00001000000', 2, 9], // P7 = 1, Q7 = 2 (weights restart at 2 after n = 6)
    ['00010000000', 3, 8], // P8 = 1, Q8 = 3
    ['10000000000', 6, 5], // P11 = 1, Q11 = 6
    ['00000100000', 7, 4], // P6 = 1, Q6 = 7
    ['00000000005', 10, 1], // 10 → 1
  ])('base %s: remainder %i, check digit %i', (base, remainder, cd) => {
    expect(individualNumberRemainder(base)).toBe(remainder);
    expect(individualNumberCheckDigit(base)).toBe(cd);
  });

  test('a wrong check digit names both digits and the number', () => {
    expect(validateMyNumber('123456789012')).toEqual({
      ok: false,
      code: 'CHECK_DIGIT_MISMATCH',
      message: 'individual number 123456789012: check digit is 2, expected 8',
      expected: 8,
      actual: 2,
    });
  });

  test.each([
    ['12345678901', /must be 12 ASCII digits \(0-9\); got 11/],
    ['1234567890180', /got 13/],
    ['', /got 0/],
    ['1234-5678-9018', /character 5 is not one/],
    ['１２３４５６７８９０１８', /character 1 is not one \(full-width digits/],
    [' 123456789018', /character 1 is not one/],
  ])('%j is MALFORMED and the message does not echo it', (input, message) => {
    const result = validateMyNumber(input);
    expect(result.ok).toBe(false);
    expect(result).toMatchObject({ code: 'MALFORMED', message: expect.stringMatching(message) });
    expect(result).not.toHaveProperty('expected');
    if (input.length > 0) expect(JSON.stringify(result)).not.toContain(input);
  });

  test('individualNumberFromRandomBase refuses anything but 11 ASCII digits', () => {
    expect(() => individualNumberFromRandomBase('1234567890')).toThrow(NumberingError);
    expect(() => individualNumberFromRandomBase('1234567890a')).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    expect(() => individualNumberFromRandomBase('123456789012')).toThrow(/must be 11 ASCII digits/);
  });

  test('property: every number built from 11 random digits validates', () => {
    fc.assert(
      fc.property(digits(11), (base) => {
        const n = individualNumberFromRandomBase(base);
        expect(n).toHaveLength(12);
        expect(n.startsWith(base)).toBe(true);
        expect(validateMyNumber(n).ok).toBe(true);
      }),
    );
  });

  test('property: a 12-digit string validates exactly when its last digit is the computed one', () => {
    fc.assert(
      fc.property(digits(12), (s) => {
        const computed = individualNumberCheckDigit(s.slice(0, 11));
        expect(validateMyNumber(s).ok).toBe(Number(s[11]) === computed);
      }),
    );
    // Half the generated strings would almost never be valid; also check candidates with the right digit.
    fc.assert(
      fc.property(digits(11), fc.integer({ min: 0, max: 9 }), (base, cd) => {
        expect(validateMyNumber(`${base}${cd}`).ok).toBe(cd === individualNumberCheckDigit(base));
      }),
    );
  });

  /*
   * Single-digit errors. Changing base digit Pn by Δ (1 ≤ |Δ| ≤ 9) changes the sum by Qn×Δ, and since
   * 11 is prime and 2 ≤ Qn ≤ 7, the remainder always changes. Remainders 0 and 1 both map to check digit
   * 0, so a single-digit change is MISSED EXACTLY WHEN the remainder moves between 0 and 1. A change of
   * the check digit itself is always detected. So about 2 in 11 valid numbers (those with remainder 0
   * or 1, check digit 0) have one undetectable single-digit neighbour per base position at most.
   */
  test('property: a single mutated digit is detected unless the base remainder moves between 0 and 1', () => {
    fc.assert(
      fc.property(digits(11), fc.integer({ min: 0, max: 11 }), fc.integer({ min: 1, max: 9 }), (base, i, shift) => {
        const valid = individualNumberFromRandomBase(base);
        const mutated = replaceAt(valid, i, String((Number(valid[i]) + shift) % 10));
        const before = individualNumberRemainder(valid);
        const after = individualNumberRemainder(mutated);
        const missed = i < 11 && before <= 1 && after <= 1;
        expect(validateMyNumber(mutated).ok).toBe(missed);
        if (i < 11) expect(after).not.toBe(before);
      }),
    );
  });

  test('the blind spot exists: 000000000000 and 000000003000 differ in one digit and both validate', () => {
    expect(validateMyNumber('000000000000').ok).toBe(true); // remainder 0
    expect(validateMyNumber('000000003000').ok).toBe(true); // remainder 1
  });

  test('exhaustively: 000000000000 has exactly 11 undetectable single-digit neighbours, one per base position', () => {
    const missed: string[] = [];
    for (let i = 0; i < 12; i++) {
      for (let d = 0; d <= 9; d++) {
        const m = replaceAt('000000000000', i, String(d));
        if (d !== 0 && validateMyNumber(m).ok) missed.push(m);
      }
    }
    // Base digit Pn = d is missed when Qn×d ≡ 1 (mod 11): d = 6,4,3,9,2,8 for Qn = 2..7.
    expect(missed).toHaveLength(11);
    expect(missed.every((m) => individualNumberRemainder(m) === 1 && m[11] === '0')).toBe(true);
    expect(missed).toContain('000000003000');
  });
});

describe('corporate number (法人番号)', () => {
  test('worked examples: 123456789012 gives 7123456789012; 4011001098993 validates', () => {
    expect(corporateNumberCheckDigit('123456789012')).toBe(7);
    expect(corporateNumberFromBase('123456789012')).toBe('7123456789012');
    expect(validateCorporateNumber('7123456789012')).toEqual({ ok: true, value: '7123456789012' });
    expect(validateCorporateNumber('4011001098993')).toEqual({ ok: true, value: '4011001098993' });
  });

  test('the check digit is the FIRST digit, and the message says so', () => {
    expect(validateCorporateNumber('5011001098993')).toEqual({
      ok: false,
      code: 'CHECK_DIGIT_MISMATCH',
      message: 'corporate number 5011001098993: check digit (the first digit) is 5, expected 4',
      expected: 4,
      actual: 5,
    });
    // Moving the check digit to the end is a common mistake.
    expect(validateCorporateNumber('0110010989934')).toMatchObject({ ok: false, code: 'CHECK_DIGIT_MISMATCH' });
  });

  test('a sum divisible by 9 gives check digit 9, never 0', () => {
    expect(corporateNumberCheckDigit('000000000000')).toBe(9);
    expect(corporateNumberCheckDigit('000000000009')).toBe(9);
    expect(validateCorporateNumber('0000000000000')).toMatchObject({ ok: false, expected: 9, actual: 0 });
  });

  test.each([['401100109899'], ['40110010989931'], ['4011001098９93'], ['T4011001098993']])('%j is MALFORMED', (input) => {
    expect(validateCorporateNumber(input)).toMatchObject({ ok: false, code: 'MALFORMED', message: expect.stringMatching(/^corporate number must be 13 ASCII digits/) });
  });

  test('corporateNumberFromBase refuses anything but 12 ASCII digits', () => {
    expect(() => corporateNumberFromBase('12345678901')).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });

  test('property: every number built from a 12-digit base validates', () => {
    fc.assert(
      fc.property(digits(12), (base) => {
        const n = corporateNumberFromBase(base);
        expect(n.slice(1)).toBe(base);
        expect(validateCorporateNumber(n).ok).toBe(true);
      }),
    );
  });

  test('property: a 13-digit string validates exactly when its first digit is the computed one', () => {
    fc.assert(
      fc.property(digits(13), (s) => {
        expect(validateCorporateNumber(s).ok).toBe(Number(s[0]) === corporateNumberCheckDigit(s.slice(1)));
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9 }), digits(12), (cd, base) => {
        expect(validateCorporateNumber(`${cd}${base}`).ok).toBe(cd === corporateNumberCheckDigit(base));
      }),
    );
  });

  // Weights 1 and 2 mod 9: Qn×Δ ≡ 0 (mod 9) only for Δ = ±9, so the only missed single-digit change is 0 ↔ 9 in the base.
  test('property: a single mutated digit is detected unless it swaps 0 and 9 in the base', () => {
    fc.assert(
      fc.property(digits(12), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 1, max: 9 }), (base, i, shift) => {
        const valid = corporateNumberFromBase(base);
        const from = Number(valid[i]);
        const to = (from + shift) % 10;
        const missed = i > 0 && Math.abs(to - from) === 9;
        expect(validateCorporateNumber(replaceAt(valid, i, String(to))).ok).toBe(missed);
      }),
    );
  });
});

describe('local government code (全国地方公共団体コード)', () => {
  test.each([
    ['011002', 'Sapporo', 2],
    ['131016', 'Chiyoda-ku', 6],
    ['012050', 'Muroran: 11 − 1 = 10 gives 0', 0],
    ['092011', 'Utsunomiya: 11 − 0 = 11 gives 1', 1],
  ])('%s (%s) validates, check digit %i', (code, _label, cd) => {
    expect(localGovernmentCodeCheckDigit(code.slice(0, 5))).toBe(cd);
    expect(validateLocalGovernmentCode(code)).toEqual({ ok: true, value: code });
  });

  test('a wrong check digit names both digits', () => {
    expect(validateLocalGovernmentCode('011001')).toEqual({
      ok: false,
      code: 'CHECK_DIGIT_MISMATCH',
      message: 'local government code 011001: check digit is 1, expected 2',
      expected: 2,
      actual: 1,
    });
  });

  test.each([['01100'], ['0110020'], ['01100A']])('%j is MALFORMED', (input) => {
    expect(validateLocalGovernmentCode(input)).toMatchObject({ ok: false, code: 'MALFORMED' });
  });

  test('property: a 6-digit string validates exactly when its last digit is the computed one', () => {
    fc.assert(
      fc.property(digits(5), fc.integer({ min: 0, max: 9 }), (base, cd) => {
        expect(validateLocalGovernmentCode(`${base}${cd}`).ok).toBe(cd === localGovernmentCodeCheckDigit(base));
      }),
    );
  });
});

describe('resident record code (住民票コード)', () => {
  test('only the form is checked: 11 ASCII digits', () => {
    expect(validateResidentRecordCode('12345678901')).toEqual({ ok: true, value: '12345678901' });
    expect(validateResidentRecordCode('1234567890')).toMatchObject({ ok: false, code: 'MALFORMED', message: expect.stringMatching(/^resident record code must be 11 ASCII digits/) });
    expect(validateResidentRecordCode('1234567890x')).toMatchObject({ ok: false, code: 'MALFORMED' });
  });

  test('property: never a CHECK_DIGIT_MISMATCH; any 11 digits pass', () => {
    fc.assert(
      fc.property(digits(11), (s) => {
        expect(validateResidentRecordCode(s).ok).toBe(true);
      }),
    );
  });
});

describe('valueOrThrow', () => {
  test('returns the value of a success', () => {
    expect(valueOrThrow(validateMyNumber('123456789018'))).toBe('123456789018');
  });

  test('throws a NumberingError carrying the failure code and digits', () => {
    const run = () => valueOrThrow(validateLocalGovernmentCode('011001'));
    expect(run).toThrow(NumberingError);
    expect(run).toThrow(expect.objectContaining({ code: 'CHECK_DIGIT_MISMATCH', expected: 2, actual: 1, name: 'NumberingError' }));
    expect(run).toThrow('local government code 011001: check digit is 1, expected 2');
  });
});
