import type { Brand } from '#ledger';
import { NumberingError } from './errors.js';

/** 個人番号: 12 ASCII digits, the last a mod-11 check digit. Personal data: never log, never put in an event. */
export type MyNumber = Brand<string, 'MyNumber'>;
/** 法人番号: 13 ASCII digits, the FIRST a mod-9 check digit. Public. */
export type CorporateNumber = Brand<string, 'CorporateNumber'>;
/** 住民票コード: 11 ASCII digits. Personal data: never log, never put in an event. */
export type ResidentRecordCode = Brand<string, 'ResidentRecordCode'>;
/** 全国地方公共団体コード: 6 ASCII digits, the last a mod-11 check digit. */
export type LocalGovernmentCode = Brand<string, 'LocalGovernmentCode'>;

export type ValidationFailureCode = 'MALFORMED' | 'CHECK_DIGIT_MISMATCH';

export interface ValidationSuccess<T> {
  readonly ok: true;
  readonly value: T;
}

export interface ValidationFailure {
  readonly ok: false;
  readonly code: ValidationFailureCode;
  readonly message: string;
  /** For CHECK_DIGIT_MISMATCH: the check digit the rule computes. */
  readonly expected?: number;
  /** For CHECK_DIGIT_MISMATCH: the check digit the input carried. */
  readonly actual?: number;
}

export type Validation<T> = ValidationSuccess<T> | ValidationFailure;

/** Turns a failed validation into a thrown NumberingError with the same code, message and digits. */
export function valueOrThrow<T>(result: Validation<T>): T {
  if (result.ok) return result.value;
  throw new NumberingError(result.code, result.message, { expected: result.expected, actual: result.actual });
}

const ZERO = 48; // '0'

/** Why `input` is not `length` ASCII digits, or undefined when it is. Never echoes the input: it may be personal data. */
function formProblem(what: string, input: string, length: number): string | undefined {
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c < ZERO || c > ZERO + 9) {
      return `${what} must be ${length} ASCII digits (0-9); character ${i + 1} is not one (full-width digits and separators are not accepted)`;
    }
  }
  if (input.length !== length) return `${what} must be ${length} ASCII digits (0-9); got ${input.length}`;
  return undefined;
}

function digitAt(s: string, i: number): number {
  return s.charCodeAt(i) - ZERO;
}

function requireDigits(what: string, input: string, length: number): void {
  const problem = formProblem(what, input, length);
  if (problem !== undefined) throw new NumberingError('MALFORMED', problem);
}

/**
 * Check digit of an individual number from its 11-digit base: 11 − (Σ Pn×Qn mod 11), where Pn is the
 * n-th digit from the right and Qn = n+1 (n ≤ 6) or n−5 (n ≥ 7); a remainder of 0 or 1 gives 0.
 * Throws NumberingError MALFORMED when `base11` is not 11 ASCII digits.
 */
export function individualNumberCheckDigit(base11: string): number {
  requireDigits('individual number base', base11, 11);
  return individualCheckDigitFromRemainder(individualNumberRemainder(base11));
}

/** Σ Pn×Qn mod 11 over the first 11 digits of `s` (no form check). Exported for the mutation analysis in tests. */
export function individualNumberRemainder(s: string): number {
  let sum = 0;
  for (let n = 1; n <= 11; n++) {
    sum += digitAt(s, 11 - n) * (n <= 6 ? n + 1 : n - 5);
  }
  return sum % 11;
}

function individualCheckDigitFromRemainder(r: number): number {
  return r <= 1 ? 0 : 11 - r;
}

/**
 * Check digit of a corporate number from its 12-digit base: 9 − (Σ Pn×Qn mod 9), where Pn is the n-th
 * digit from the right and Qn = 1 for odd n, 2 for even n. The result is always 1..9.
 * Throws NumberingError MALFORMED when `base12` is not 12 ASCII digits.
 */
export function corporateNumberCheckDigit(base12: string): number {
  requireDigits('corporate number base', base12, 12);
  let sum = 0;
  for (let n = 1; n <= 12; n++) {
    sum += digitAt(base12, 12 - n) * (n % 2 === 1 ? 1 : 2);
  }
  return 9 - (sum % 9);
}

/**
 * Check digit of a local government code from its 5-digit base: the last digit of
 * 11 − (Σ digits weighted 6,5,4,3,2 mod 11), i.e. 10 gives 0 and 11 gives 1.
 * Throws NumberingError MALFORMED when `base5` is not 5 ASCII digits.
 */
export function localGovernmentCodeCheckDigit(base5: string): number {
  requireDigits('local government code base', base5, 5);
  let sum = 0;
  for (let i = 0; i < 5; i++) sum += digitAt(base5, i) * (6 - i);
  return (11 - (sum % 11)) % 10;
}

/** Validates a 12-digit individual number (個人番号). The mismatch message echoes the number back to its sender. */
export function validateMyNumber(input: string): Validation<MyNumber> {
  const problem = formProblem('individual number', input, 12);
  if (problem !== undefined) return { ok: false, code: 'MALFORMED', message: problem };
  const expected = individualCheckDigitFromRemainder(individualNumberRemainder(input));
  const actual = digitAt(input, 11);
  if (actual !== expected) {
    return {
      ok: false,
      code: 'CHECK_DIGIT_MISMATCH',
      message: `individual number ${input}: check digit is ${actual}, expected ${expected}`,
      expected,
      actual,
    };
  }
  return { ok: true, value: input as MyNumber };
}

/** Validates a 13-digit corporate number (法人番号); its check digit is the FIRST digit. */
export function validateCorporateNumber(input: string): Validation<CorporateNumber> {
  const problem = formProblem('corporate number', input, 13);
  if (problem !== undefined) return { ok: false, code: 'MALFORMED', message: problem };
  const expected = corporateNumberCheckDigit(input.slice(1));
  const actual = digitAt(input, 0);
  if (actual !== expected) {
    return {
      ok: false,
      code: 'CHECK_DIGIT_MISMATCH',
      message: `corporate number ${input}: check digit (the first digit) is ${actual}, expected ${expected}`,
      expected,
      actual,
    };
  }
  return { ok: true, value: input as CorporateNumber };
}

/** Validates a 6-digit local government code (全国地方公共団体コード). */
export function validateLocalGovernmentCode(input: string): Validation<LocalGovernmentCode> {
  const problem = formProblem('local government code', input, 6);
  if (problem !== undefined) return { ok: false, code: 'MALFORMED', message: problem };
  const expected = localGovernmentCodeCheckDigit(input.slice(0, 5));
  const actual = digitAt(input, 5);
  if (actual !== expected) {
    return {
      ok: false,
      code: 'CHECK_DIGIT_MISMATCH',
      message: `local government code ${input}: check digit is ${actual}, expected ${expected}`,
      expected,
      actual,
    };
  }
  return { ok: true, value: input as LocalGovernmentCode };
}

/**
 * Validates the form of a resident record code (住民票コード): 11 ASCII digits. Its check-digit rule is
 * not public, so only the form is checked; CHECK_DIGIT_MISMATCH is never returned.
 */
export function validateResidentRecordCode(input: string): Validation<ResidentRecordCode> {
  const problem = formProblem('resident record code', input, 11);
  if (problem !== undefined) return { ok: false, code: 'MALFORMED', message: problem };
  return { ok: true, value: input as ResidentRecordCode };
}

/**
 * Completes 11 randomly drawn digits into a valid individual number. The caller owns the random source
 * (and the uniqueness claim); this function only appends the check digit.
 */
export function individualNumberFromRandomBase(digits11: string): MyNumber {
  return `${digits11}${individualNumberCheckDigit(digits11)}` as MyNumber;
}

/** Completes a 12-digit base into a valid corporate number by PREFIXING its check digit. */
export function corporateNumberFromBase(base12: string): CorporateNumber {
  return `${corporateNumberCheckDigit(base12)}${base12}` as CorporateNumber;
}
