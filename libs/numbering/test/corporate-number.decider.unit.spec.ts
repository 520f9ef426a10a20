import { describe, expect, test } from 'vitest';
import {
  CORPORATE_KIND_LABELS,
  CORPORATE_KINDS,
  MAX_CORPORATE_TEXT_LENGTH,
  corporateNumberDecider,
  corporateNumberStreamId,
  type ChangeCorporateNumber,
  type CloseCorporateNumber,
  type CorporateKind,
  type CorporateNumber,
  type CorporateNumberChanged,
  type CorporateNumberClosed,
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
    expect((event?.data as CorporateNumberDesignated['data']).name).toBe(name);
  });

  test('when the kind is not one of the eight, then INVALID_KIND', () => {
    spec.given([]).when(designate({ kind: 'kabushiki' as CorporateKind })).thenFails('INVALID_KIND', /stock-company, limited-company/);
  });

  test.each(CORPORATE_KINDS.map((k) => [k, CORPORATE_KIND_LABELS[k]]))('kind %s (%s) is accepted', (kind) => {
    const [event] = spec.given([]).when(designate({ kind })).thenEvents();
    expect((event?.data as CorporateNumberDesignated['data']).kind).toBe(kind);
  });

  test('every kind has its Japanese label', () => {
    expect(CORPORATE_KINDS.map((k) => CORPORATE_KIND_LABELS[k])).toEqual(['株式会社', '有限会社', '合名会社', '合資会社', '合同会社', '国の機関', '地方公共団体', 'その他']);
  });
});

describe('evolve', () => {
  test('initial state is undesignated; a designation is remembered', () => {
    expect(corporateNumberDecider.initialState()).toEqual({ status: 'undesignated' });
    expect(spec.given([designated]).state).toEqual({ status: 'designated', ...designated.data, history: [], closure: null });
  });

  test('the stream id is the corporate number', () => {
    expect(corporateNumberStreamId('4011001098993' as CorporateNumber)).toBe('corporate-number-4011001098993');
  });
});

const NUMBER = '4011001098993' as CorporateNumber;

function changeCmd(overrides: Partial<ChangeCorporateNumber['data']> = {}): ChangeCorporateNumber {
  return { type: 'ChangeCorporateNumber', data: { corporateNumber: NUMBER, name: '株式会社むろらん', reason: '商号変更', effectiveOn: '2026-06-01', changedAt: '2026-06-02T01:00:00.000Z', ...overrides } };
}

function closeCmd(overrides: Partial<CloseCorporateNumber['data']> = {}): CloseCorporateNumber {
  return { type: 'CloseCorporateNumber', data: { corporateNumber: NUMBER, reason: '清算の結了', closedOn: '2026-09-30', closedAt: '2026-10-01T02:00:00.000Z', ...overrides } };
}

const renamed: CorporateNumberChanged = {
  type: 'CorporateNumberChanged',
  schemaVersion: 1,
  data: { corporateNumber: NUMBER, name: { previous: '株式会社室蘭製作所', current: '株式会社むろらん' }, reason: '商号変更', effectiveOn: '2026-06-01', changedAt: '2026-06-02T01:00:00.000Z' },
  terminal: 'completed',
};

const moved: CorporateNumberChanged = {
  type: 'CorporateNumberChanged',
  schemaVersion: 1,
  data: { corporateNumber: NUMBER, location: { previous: '北海道室蘭市幸町1番2号', current: '北海道札幌市中央区北1条西2丁目' }, reason: '本店移転', effectiveOn: '2026-07-01', changedAt: '2026-07-01T03:00:00.000Z' },
  terminal: 'completed',
};

const closed: CorporateNumberClosed = {
  type: 'CorporateNumberClosed',
  schemaVersion: 1,
  data: { corporateNumber: NUMBER, reason: '清算の結了', closedOn: '2026-09-30', closedAt: '2026-10-01T02:00:00.000Z' },
  terminal: 'completed',
};

describe('ChangeCorporateNumber (商号・所在地の変更)', () => {
  test('given a designation, when the name changes, then CorporateNumberChanged with the previous and current name ends the serial', () => {
    spec.given([designated]).when(changeCmd()).then([renamed]);
  });

  test('given a designation, when the location changes, then only the location is in the event', () => {
    spec.given([designated]).when(changeCmd({ name: undefined, location: '北海道札幌市中央区北1条西2丁目', reason: '本店移転', effectiveOn: '2026-07-01', changedAt: '2026-07-01T03:00:00.000Z' })).then([moved]);
  });

  test('a name given unchanged beside a new location is left out of the event', () => {
    const [event] = spec.given([designated]).when(changeCmd({ name: '株式会社室蘭製作所', location: '北海道室蘭市中島町1丁目' })).thenEvents();
    expect(event?.data).not.toHaveProperty('name');
    expect(event?.data).toMatchObject({ location: { previous: '北海道室蘭市幸町1番2号', current: '北海道室蘭市中島町1丁目' } });
  });

  test('given a rename, when both change, then both are in one event, the previous name being the current one', () => {
    const [event] = spec.given([designated, renamed]).when(changeCmd({ name: '株式会社ムロラン', location: '北海道室蘭市東町', effectiveOn: '2026-06-01' })).thenEvents();
    expect(event?.data).toMatchObject({ name: { previous: '株式会社むろらん', current: '株式会社ムロラン' }, location: { previous: '北海道室蘭市幸町1番2号', current: '北海道室蘭市東町' } });
  });

  test('name, location and reason are stored trimmed', () => {
    const [event] = spec.given([designated]).when(changeCmd({ name: '\u3000株式会社むろらん ', reason: ' 商号変更\u3000' })).thenEvents();
    expect(event?.data).toMatchObject({ name: { current: '株式会社むろらん' }, reason: '商号変更' });
  });

  test('given no designation, when changed, then CORPORATE_NUMBER_NOT_FOUND', () => {
    spec.given([]).when(changeCmd()).thenFails('CORPORATE_NUMBER_NOT_FOUND', /no corporate number 4011001098993 has been designated/);
  });

  test('given a closure, when changed, then CORPORATE_NUMBER_CLOSED', () => {
    spec.given([designated, closed]).when(changeCmd({ effectiveOn: '2026-10-01', changedAt: '2026-10-02T00:00:00.000Z' })).thenFails('CORPORATE_NUMBER_CLOSED', /closed on 2026-09-30/);
  });

  test('when neither name nor location is given, or both are what the corporation already has, then NOTHING_TO_UPDATE', () => {
    spec.given([designated]).when(changeCmd({ name: undefined })).thenFails('NOTHING_TO_UPDATE', /new name, the new location, or both/);
    spec.given([designated]).when(changeCmd({ name: ' 株式会社室蘭製作所', location: '北海道室蘭市幸町1番2号' })).thenFails('NOTHING_TO_UPDATE', /already has/);
  });

  test.each([
    ['name', { name: '株式会社\nむろらん' }, 'INVALID_NAME', /name must not contain control characters/],
    ['location', { location: '' }, 'INVALID_LOCATION', /location must not be empty/],
    ['reason', { reason: '\u200b' }, 'INVALID_REASON', /reason must not be empty or only white space or invisible characters/],
    ['reason', { reason: 'x'.repeat(201) }, 'INVALID_REASON', /reason is 201 characters long/],
  ] as const)('when the %s breaks the text rule, then its code', (_field, overrides, code, message) => {
    spec.given([designated]).when(changeCmd(overrides)).thenFails(code, message);
  });

  test.each([
    ['not a calendar day', '2026-02-30', /effectiveOn must be a calendar day YYYY-MM-DD/],
    ['not in the form', '2026/06/01', /effectiveOn must be a calendar day/],
    ['before the designation (Japan time)', '2025-03-31', /before the designation on 2025-04-01/],
    ['after the day it is recorded (Japan time)', '2026-06-03', /after today \(2026-06-02, Japan time\)/],
  ])('when effectiveOn is %s, then INVALID_EFFECTIVE_DATE', (_case, effectiveOn, message) => {
    spec.given([designated]).when(changeCmd({ effectiveOn })).thenFails('INVALID_EFFECTIVE_DATE', message);
  });

  test('effectiveOn is judged in Japan time: 2026-06-02 is today at 2026-06-01T15:00Z', () => {
    spec.given([designated]).when(changeCmd({ effectiveOn: '2026-06-02', changedAt: '2026-06-01T15:00:00.000Z' })).thenEvents();
    spec.given([designated]).when(changeCmd({ effectiveOn: '2026-06-02', changedAt: '2026-06-01T14:59:59.999Z' })).thenFails('INVALID_EFFECTIVE_DATE', /after today/);
  });

  test('given a change effective on 2026-07-01, when a change effective earlier is recorded, then INVALID_EFFECTIVE_DATE (the history stays in order)', () => {
    spec.given([designated, moved]).when(changeCmd({ effectiveOn: '2026-06-30', changedAt: '2026-07-02T00:00:00.000Z' })).thenFails('INVALID_EFFECTIVE_DATE', /before the latest change, effective on 2026-07-01/);
    spec.given([designated, moved]).when(changeCmd({ effectiveOn: '2026-07-01', changedAt: '2026-07-02T00:00:00.000Z' })).thenEvents();
  });

  test('when the number has a wrong check digit, then CHECK_DIGIT_MISMATCH', () => {
    spec.given([designated]).when(changeCmd({ corporateNumber: '5011001098993' })).thenFails('CHECK_DIGIT_MISMATCH', /expected 4/);
  });
});

describe('CloseCorporateNumber (閉鎖)', () => {
  test('given a designation, when closed, then CorporateNumberClosed ends the serial', () => {
    spec.given([designated, renamed]).when(closeCmd()).then([closed]);
  });

  test('given no designation, then CORPORATE_NUMBER_NOT_FOUND; given a closure, then CORPORATE_NUMBER_CLOSED', () => {
    spec.given([]).when(closeCmd()).thenFails('CORPORATE_NUMBER_NOT_FOUND', /has been designated/);
    spec.given([designated, closed]).when(closeCmd({ closedAt: '2026-10-02T00:00:00.000Z' })).thenFails('CORPORATE_NUMBER_CLOSED', /was closed on 2026-09-30/);
  });

  test('the reason follows the text rule; closedOn is a calendar day from the latest change to today (Japan time)', () => {
    spec.given([designated]).when(closeCmd({ reason: '清算\u0007' })).thenFails('INVALID_REASON', /control characters/);
    spec.given([designated]).when(closeCmd({ closedOn: '2026-9-30' })).thenFails('INVALID_EFFECTIVE_DATE', /closedOn must be a calendar day/);
    spec.given([designated, moved]).when(closeCmd({ closedOn: '2026-06-30' })).thenFails('INVALID_EFFECTIVE_DATE', /closedOn 2026-06-30 is before the latest change/);
    spec.given([designated]).when(closeCmd({ closedOn: '2026-10-02' })).thenFails('INVALID_EFFECTIVE_DATE', /after today \(2026-10-01/);
  });

  test('given a closure, a designation again is still CORPORATE_NUMBER_ALREADY_DESIGNATED (a number is never reused)', () => {
    spec.given([designated, closed]).when(designate()).thenFails('CORPORATE_NUMBER_ALREADY_DESIGNATED', /already designated/);
  });
});

describe('evolve: the current name and location, the history and the closure', () => {
  test('changes move the current name and location and append to the history, oldest first; a closure is remembered', () => {
    expect(spec.given([designated, renamed, moved, closed]).state).toEqual({
      status: 'designated',
      ...designated.data,
      name: '株式会社むろらん',
      location: '北海道札幌市中央区北1条西2丁目',
      history: [
        { name: renamed.data.name, reason: '商号変更', effectiveOn: '2026-06-01', changedAt: '2026-06-02T01:00:00.000Z' },
        { location: moved.data.location, reason: '本店移転', effectiveOn: '2026-07-01', changedAt: '2026-07-01T03:00:00.000Z' },
      ],
      closure: { reason: '清算の結了', closedOn: '2026-09-30', closedAt: '2026-10-01T02:00:00.000Z' },
    });
  });
});
