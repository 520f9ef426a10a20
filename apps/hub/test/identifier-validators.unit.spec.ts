import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { describe, expect, it } from 'vitest';
import { corporateNumberFromBase, individualNumberFromRandomBase, localGovernmentCodeCheckDigit } from '#numbering';
import {
  HasCorporateNumberForm,
  IsCorporateNumber,
  IsCorporateNumberBase,
  IsLocalGovernmentCode,
  IsMyNumber,
  IsResidentRecordCode,
} from '../src/http/identifier.validators.js';
import { IsDisplayText } from '../src/http/text.validators.js';
import { DtoValidationPipe, flatten } from '../src/http/validation.pipe.js';
import { ChangeIndividualNumberRequest, IssueIndividualNumberRequest } from '../src/numbering/dto/individual-number.dto.js';
import { DesignateCorporateNumberRequest } from '../src/numbering/dto/corporate-number.dto.js';
import { EventsQuery } from '../src/events/events.dto.js';

class Sample {
  @IsMyNumber() myNumber!: unknown;
  @IsCorporateNumber() corporateNumber!: unknown;
  @IsLocalGovernmentCode() municipality!: unknown;
  @IsResidentRecordCode() resident!: unknown;
  @IsCorporateNumberBase() base!: unknown;
  @HasCorporateNumberForm() form!: unknown;
  @IsDisplayText({ max: 10, surroundingSpace: 'trim' }) text!: unknown;
  @IsDisplayText({ max: 10, multiline: true }) body!: unknown;
}

const MY_NUMBER = individualNumberFromRandomBase('12345678901');
const CORPORATE = corporateNumberFromBase('430001012345');
const MUNICIPALITY = `01205${localGovernmentCodeCheckDigit('01205')}`;
const valid = { myNumber: MY_NUMBER, corporateNumber: CORPORATE, municipality: MUNICIPALITY, resident: '12345678901', base: '430001012345', form: CORPORATE, text: '株式会社', body: '一行目\n二行目' };

/** field → messages of a Sample built from `valid` with `patch`. */
function problems(patch: Record<string, unknown>): Record<string, string[]> {
  const errors = validateSync(plainToInstance(Sample, { ...valid, ...patch }));
  return Object.fromEntries(flatten(errors, '').reduce((m, e) => m.set(e.field, [...(m.get(e.field) ?? []), e.message]), new Map<string, string[]>()));
}

/** Replaces the check digit (at `index`) by the next digit, so it is certainly wrong. */
function wrongCheckDigit(value: string, index: number): { value: string; actual: number; expected: number } {
  const expected = Number(value[index]);
  const actual = (expected + 1) % 10;
  return { value: value.slice(0, index) + String(actual) + value.slice(index + 1), actual, expected };
}

describe('identifier validators', () => {
  it('accept valid identifiers', () => {
    expect(problems({})).toEqual({});
  });

  it('IsMyNumber names the expected check digit without echoing the number', () => {
    const bad = wrongCheckDigit(MY_NUMBER, 11);
    const p = problems({ myNumber: bad.value });
    expect(p['myNumber']).toEqual([`individual number check digit is ${bad.actual}, expected ${bad.expected}`]);
    expect(JSON.stringify(p)).not.toContain(bad.value);
  });

  it('IsMyNumber reports length, a non-digit position, full-width digits and a non-string', () => {
    expect(problems({ myNumber: '12345' })['myNumber']![0]).toMatch(/must be 12 ASCII digits .*got 5/);
    expect(problems({ myNumber: '12345678901a' })['myNumber']![0]).toMatch(/character 12 is not one/);
    expect(problems({ myNumber: '１２３４５６７８９０１８' })['myNumber']![0]).toMatch(/character 1 is not one.*full-width/);
    expect(problems({ myNumber: 123456789018 })['myNumber']).toEqual(['must be a string of ASCII digits']);
  });

  it('IsCorporateNumber checks the FIRST digit', () => {
    const bad = wrongCheckDigit(CORPORATE, 0);
    expect(problems({ corporateNumber: bad.value })['corporateNumber']).toEqual([
      `corporate number (first digit) check digit is ${bad.actual}, expected ${bad.expected}`,
    ]);
  });

  it('IsLocalGovernmentCode checks the last digit', () => {
    const bad = wrongCheckDigit(MUNICIPALITY, 5);
    expect(problems({ municipality: bad.value })['municipality']).toEqual([`local government code check digit is ${bad.actual}, expected ${bad.expected}`]);
    expect(problems({ municipality: '01205' })['municipality']![0]).toMatch(/6 ASCII digits/);
  });

  it('IsResidentRecordCode checks the form only (11 ASCII digits)', () => {
    expect(problems({ resident: '1234567890' })['resident']![0]).toBe('resident record code must be 11 ASCII digits (0-9); got 10');
    expect(problems({ resident: '1234567890x' })['resident']![0]).toMatch(/character 11/);
  });

  it('IsCorporateNumberBase and HasCorporateNumberForm check length and digits only', () => {
    expect(problems({ base: '43000101234' })['base']![0]).toMatch(/12 ASCII digits/);
    expect(problems({ form: wrongCheckDigit(CORPORATE, 0).value })).toEqual({});
    expect(problems({ form: '123' })['form']).toEqual(['must be 13 ASCII digits (0-9)']);
  });

  it('IsDisplayText refuses blank or invisible text, unpaired surrogates, over-long text (in code points) and control characters', () => {
    const invisible = 'must not be empty or only white space or invisible characters (zero-width, format or filler characters); give visible text';
    expect(problems({ text: ' \u3000 ' })['text']).toEqual([invisible]);
    expect(problems({ text: '\u200b\u200b', body: '\u200b\n\u2060' })).toEqual({ text: [invisible], body: [invisible] });
    expect(problems({ text: '𠮷'.repeat(10) })).toEqual({});
    expect(problems({ text: '𠮷'.repeat(11) })['text']).toEqual(['is 11 characters long; at most 10 are allowed']);
    expect(problems({ text: 'a\nb' })['text']).toEqual(['must not contain control characters or line breaks; remove U+000A']);
    expect(problems({ body: 'a\tb' })['body']).toEqual(['must not contain control characters other than line breaks (LF or CR LF); remove U+0009']);
    expect(problems({ text: 'a\ud800' })['text']).toEqual(['must be well-formed Unicode: character 2 is an unpaired UTF-16 surrogate (U+D800); send the text as valid UTF-8']);
    expect(problems({ text: 42 })['text']).toEqual(['must be a string']);
  });
});

describe('DtoValidationPipe', () => {
  const pipe = new DtoValidationPipe();
  const body = (metatype: new () => unknown, value: unknown) => () => pipe.transform(value, { type: 'body', metatype });

  it('returns the DTO instance for a valid body', () => {
    const dto = body(IssueIndividualNumberRequest, { residentRecordCode: '12345678901', municipalityCode: MUNICIPALITY })();
    expect(dto).toBeInstanceOf(IssueIndividualNumberRequest);
  });

  it('lists every wrong field at once', () => {
    expect(body(ChangeIndividualNumberRequest, { residentRecordCode: 'x', reason: 'whim' })).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        errors: expect.arrayContaining([
          expect.objectContaining({ field: 'residentRecordCode' }),
          expect.objectContaining({ field: 'municipalityCode' }),
          { field: 'reason', message: 'must be one of leak, request, other' },
        ]),
      }),
    );
  });

  it('answers 422 CHECK_DIGIT_MISMATCH when only check digits are wrong, with the digits; 400 listing every field otherwise', () => {
    const wrong = wrongCheckDigit(MUNICIPALITY, 5);
    expect(body(IssueIndividualNumberRequest, { residentRecordCode: '12345678901', municipalityCode: wrong.value })).toThrow(
      expect.objectContaining({
        code: 'CHECK_DIGIT_MISMATCH',
        status: 422,
        message: `municipalityCode: local government code check digit is ${wrong.actual}, expected ${wrong.expected}`,
        extensions: { expected: wrong.expected, actual: wrong.actual, errors: [{ field: 'municipalityCode', message: expect.stringMatching(/check digit/) }] },
      }),
    );
    expect(body(IssueIndividualNumberRequest, { residentRecordCode: '1', municipalityCode: wrong.value })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', errors: [expect.objectContaining({ field: 'residentRecordCode' }), expect.objectContaining({ field: 'municipalityCode' })] }),
    );
    // A malformed number (not its check digit) stays a validation failure.
    expect(body(IssueIndividualNumberRequest, { residentRecordCode: '12345678901', municipalityCode: '01205' })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('refuses unknown fields and bodies that are not JSON objects', () => {
    expect(body(IssueIndividualNumberRequest, { residentRecordCode: '12345678901', municipalityCode: MUNICIPALITY, note: 1 })).toThrow(
      expect.objectContaining({ errors: [{ field: 'note', message: 'is not a known field' }] }),
    );
    expect(body(IssueIndividualNumberRequest, [1, 2])).toThrow(expect.objectContaining({ errors: [{ field: '(body)', message: 'the request body must be a JSON object' }] }));
    expect(body(IssueIndividualNumberRequest, 'text')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('checks the corporate designation body (kind, optional registry number)', () => {
    const ok = { name: '株式会社室蘭製作所', location: '北海道室蘭市', kind: 'stock-company' };
    expect(body(DesignateCorporateNumberRequest, ok)()).toBeInstanceOf(DesignateCorporateNumberRequest);
    expect(body(DesignateCorporateNumberRequest, { ...ok, kind: 'guild', registryNumber: '12' })).toThrow(
      expect.objectContaining({ errors: expect.arrayContaining([expect.objectContaining({ field: 'kind' }), expect.objectContaining({ field: 'registryNumber' })]) }),
    );
  });

  it('converts query integers strictly and applies defaults', () => {
    const query = (value: unknown) => () => pipe.transform(value, { type: 'query', metatype: EventsQuery });
    expect(query({})()).toMatchObject({ from: 0, limit: 100 });
    expect(query({ from: '5', limit: '1000' })()).toMatchObject({ from: 5, limit: 1000 });
    for (const bad of [{ limit: '0' }, { limit: '1001' }, { from: '-1' }, { from: '1.5' }, { from: '0x10' }, { limit: ['1', '2'] }]) {
      expect(query(bad)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    }
  });

  it('leaves custom parameters alone', () => {
    expect(pipe.transform('anything', { type: 'custom', metatype: String })).toBe('anything');
  });
});
