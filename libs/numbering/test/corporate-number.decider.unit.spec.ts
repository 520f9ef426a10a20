import { describe, expect, test } from 'vitest';
import {
  CORPORATE_KIND_LABELS,
  CORPORATE_KINDS,
  MAX_CORPORATE_TEXT_LENGTH,
  corporateNumberDecider,
  corporateNumberStreamId,
  type CorporateKind,
  type CorporateNumber,
  type CorporateNumberDesignated,
  type DesignateCorporateNumber,
} from '#numbering';
import { deciderSpec } from './given-when-then.js';

const spec = deciderSpec(corporateNumberDecider);

function designate(overrides: Partial<DesignateCorporateNumber['data']> = {}): DesignateCorporateNumber {
  return {
    type: 'DesignateCorporateNumber',
    data: {
      corporateNumber: '4011001098993',
      name: '株式会社室蘭製作所',
      location: '北海道室蘭市幸町1番2号',
      kind: 'stock-company',
      designatedAt: '2025-04-01T09:00:00.000Z',
      ...overrides,
    },
  };
}

const designated: CorporateNumberDesignated = {
  type: 'CorporateNumberDesignated',
  schemaVersion: 1,
  data: {
    corporateNumber: '4011001098993' as CorporateNumber,
    name: '株式会社室蘭製作所',
    location: '北海道室蘭市幸町1番2号',
    kind: 'stock-company',
    designatedAt: '2025-04-01T09:00:00.000Z',
  },
  terminal: 'completed',
};

describe('DesignateCorporateNumber', () => {
  test('given no events, when designated, then CorporateNumberDesignated (public data, no claim) ends the serial', () => {
    spec.given([]).when(designate()).then([designated]);
  });

  test('given a designation, when designated again, then CORPORATE_NUMBER_ALREADY_DESIGNATED', () => {
    spec.given([designated]).when(designate({ name: '別の会社' })).thenFails('CORPORATE_NUMBER_ALREADY_DESIGNATED', /4011001098993 was already designated on 2025-04-01/);
  });

  test('when the first digit is not the check digit, then CHECK_DIGIT_MISMATCH with both digits', () => {
    const when = spec.given([]).when(designate({ corporateNumber: '5011001098993' }));
    when.thenFails('CHECK_DIGIT_MISMATCH', /check digit \(the first digit\) is 5, expected 4/);
    expect(() => when.thenEvents()).toThrow(expect.objectContaining({ expected: 4, actual: 5 }));
  });

  test('when the number is not 13 digits, then MALFORMED', () => {
    spec.given([]).when(designate({ corporateNumber: '011001098993' })).thenFails('MALFORMED', /13 ASCII digits/);
  });

  test('name and location are stored trimmed, including the ideographic space U+3000', () => {
    const [event] = spec.given([]).when(designate({ name: '\u3000株式会社室蘭製作所 ', location: ' 北海道室蘭市幸町1番2号\u3000' })).thenEvents();
    expect(event?.data).toMatchObject({ name: '株式会社室蘭製作所', location: '北海道室蘭市幸町1番2号' });
  });

  test.each([
    ['empty', '', /name must not be empty/],
    ['blank', ' \u3000\t', /name must not be empty/],
    ['over 200 characters', 'あ'.repeat(MAX_CORPORATE_TEXT_LENGTH + 1), /name is 201 characters long; at most 200/],
    ['with a line break', '株式会社\n室蘭', /name must not contain control characters or line breaks; remove U\+000A/],
    ['only zero-width spaces', '\u200b\u200b', /name must not be empty or only white space or invisible characters/],
    ['with an unpaired surrogate', '株式会社\ud800', /name must be well-formed Unicode: character 5 is an unpaired UTF-16 surrogate/],
  ])('when the name is %s, then INVALID_NAME', (_case, name, message) => {
    spec.given([]).when(designate({ name })).thenFails('INVALID_NAME', message);
  });

  test.each([
    ['empty', '', /location must not be empty/],
    ['over 200 characters', 'x'.repeat(201), /location is 201 characters long/],
    ['with a control character', '室蘭市\u0007', /location must not contain control characters/],
    ['only Hangul fillers', '\u3164\uffa0', /location must not be empty or only white space or invisible characters/],
  ])('when the location is %s, then INVALID_LOCATION', (_case, location, message) => {
    spec.given([]).when(designate({ location })).thenFails('INVALID_LOCATION', message);
  });

  test('exactly 200 characters is accepted, counted in code points (𠮷 is one character, two UTF-16 units)', () => {
    const name = '𠮷'.repeat(MAX_CORPORATE_TEXT_LENGTH);
    expect(name.length).toBe(400);
    const [event] = spec.given([]).when(designate({ name, location: 'y'.repeat(200) })).thenEvents();
    expect(event?.data.name).toBe(name);
  });

  test('when the kind is not one of the eight, then INVALID_KIND', () => {
    spec.given([]).when(designate({ kind: 'kabushiki' as CorporateKind })).thenFails('INVALID_KIND', /stock-company, limited-company/);
  });

  test.each(CORPORATE_KINDS.map((k) => [k, CORPORATE_KIND_LABELS[k]]))('kind %s (%s) is accepted', (kind) => {
    const [event] = spec.given([]).when(designate({ kind })).thenEvents();
    expect(event?.data.kind).toBe(kind);
  });

  test('every kind has its Japanese label', () => {
    expect(CORPORATE_KINDS.map((k) => CORPORATE_KIND_LABELS[k])).toEqual(['株式会社', '有限会社', '合名会社', '合資会社', '合同会社', '国の機関', '地方公共団体', 'その他']);
  });
});

describe('evolve', () => {
  test('initial state is undesignated; a designation is remembered', () => {
    expect(corporateNumberDecider.initialState()).toEqual({ status: 'undesignated' });
    expect(spec.given([designated]).state).toEqual({ status: 'designated', ...designated.data });
  });

  test('the stream id is the corporate number', () => {
    expect(corporateNumberStreamId('4011001098993' as CorporateNumber)).toBe('corporate-number-4011001098993');
  });
});
