import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { NewEvent } from '#ledger';
import {
  NumberingError,
  individualNumberFromRandomBase,
  personNumberingDecider,
  personNumberingStreamId,
  type ChangeIndividualNumber,
  type ChangeReason,
  type IndividualNumberChanged,
  type IndividualNumberIssued,
  type IssueIndividualNumber,
  type LocalGovernmentCode,
  type MyNumber,
  type PersonNumberingEvent,
} from '#numbering';
import { inMemorySealer } from '#sealing';
import { deciderSpec, outcome } from './given-when-then.js';

const spec = deciderSpec(personNumberingDecider);

const FIRST = individualNumberFromRandomBase('12345678901'); // 123456789018
const SECOND = individualNumberFromRandomBase('98765432109');
const THIRD = individualNumberFromRandomBase('31415926535');
const MURORAN = '012050' as LocalGovernmentCode;
const RESIDENT = '20000000001';
/** What a numbering event seals (the sealer of libs/sealing takes it out of the stored text). */
const identifiersFor = (number: string) => ({ individualNumber: number, residentRecordCode: RESIDENT });

function issue(overrides: Partial<IssueIndividualNumber['data']> = {}): IssueIndividualNumber {
  return {
    type: 'IssueIndividualNumber',
    data: {
      subjectId: 'subj-aoyama',
      municipalityCode: MURORAN,
      municipalityKnown: true,
      number: FIRST,
      numberDigest: 'digest-first',
      residentDigest: 'resident-aoyama',
      identifiers: identifiersFor(overrides.number ?? FIRST),
      issuedAt: '2025-04-01T09:00:00.000Z',
      ...overrides,
    },
  };
}

function change(overrides: Partial<ChangeIndividualNumber['data']> = {}): ChangeIndividualNumber {
  return {
    type: 'ChangeIndividualNumber',
    data: {
      reason: 'leak',
      number: SECOND,
      numberDigest: 'digest-second',
      identifiers: identifiersFor(overrides.number ?? SECOND),
      changedAt: '2025-06-01T10:30:00.000Z',
      ...overrides,
    },
  };
}

const issued: IndividualNumberIssued = {
  type: 'IndividualNumberIssued',
  schemaVersion: 1,
  data: {
    subjectId: 'subj-aoyama',
    municipalityCode: MURORAN,
    numberDigest: 'digest-first',
    residentDigest: 'resident-aoyama',
    identifiers: identifiersFor(FIRST),
    issuedAt: '2025-04-01T09:00:00.000Z',
  },
  terminal: 'completed',
  claims: ['individual-number:digest-first'],
};

const changedToSecond: IndividualNumberChanged = {
  type: 'IndividualNumberChanged',
  schemaVersion: 1,
  data: {
    subjectId: 'subj-aoyama',
    previousNumberDigest: 'digest-first',
    numberDigest: 'digest-second',
    identifiers: identifiersFor(SECOND),
    reason: 'leak',
    changedAt: '2025-06-01T10:30:00.000Z',
  },
  terminal: 'completed',
  claims: ['individual-number:digest-second'],
};

describe('IssueIndividualNumber', () => {
  test('given no events, when issued, then IndividualNumberIssued ends the serial and claims the number digest', () => {
    spec.given([]).when(issue()).then([issued]);
  });

  test('the event fits the ledger NewEvent shape', () => {
    const events: readonly NewEvent[] = spec.given([]).when(issue()).thenEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ schemaVersion: 1, terminal: 'completed', claims: ['individual-number:digest-first'] });
  });

  test('given an issued number, when issued again, then RESIDENT_ALREADY_NUMBERED', () => {
    spec.given([issued]).when(issue({ number: SECOND, numberDigest: 'digest-second' })).thenFails('RESIDENT_ALREADY_NUMBERED', /use ChangeIndividualNumber/);
  });

  test('given a changed number, when issued again, then RESIDENT_ALREADY_NUMBERED', () => {
    spec.given([issued, changedToSecond]).when(issue({ number: THIRD, numberDigest: 'digest-third' })).thenFails('RESIDENT_ALREADY_NUMBERED');
  });

  test('when the municipality is not in the list in force, then UNKNOWN_MUNICIPALITY', () => {
    spec.given([]).when(issue({ municipalityKnown: false })).thenFails('UNKNOWN_MUNICIPALITY', /012050 is not in the municipality list/);
  });

  test('when the municipality code has a wrong check digit, then UNKNOWN_MUNICIPALITY with both digits', () => {
    const when = spec.given([]).when(issue({ municipalityCode: '011001' }));
    when.thenFails('UNKNOWN_MUNICIPALITY', /011001: check digit is 1, expected 2/);
    expect(() => when.thenEvents()).toThrow(expect.objectContaining({ expected: 2, actual: 1 }));
  });

  test('when the municipality code is malformed, then UNKNOWN_MUNICIPALITY', () => {
    spec.given([]).when(issue({ municipalityCode: '01205' })).thenFails('UNKNOWN_MUNICIPALITY', /6 ASCII digits/);
  });

  test('when the generated number fails its check digit, then CHECK_DIGIT_MISMATCH without echoing the number', () => {
    const when = spec.given([]).when(issue({ number: '123456789012' as MyNumber }));
    when.thenFails('CHECK_DIGIT_MISMATCH', /check digit is 2, expected 8; check the number generator/);
    expect(() => when.thenEvents()).not.toThrow(/123456789012/);
    expect(() => when.thenEvents()).toThrow(expect.objectContaining({ expected: 8, actual: 2 }));
  });

  test('when the generated number is malformed, then MALFORMED', () => {
    spec.given([]).when(issue({ number: '12345678901' as MyNumber })).thenFails('MALFORMED', /12 ASCII digits/);
  });

  test.each([['numberDigest'], ['residentDigest'], ['subjectId']] as const)('when %s is empty, then MALFORMED', (field) => {
    spec.given([]).when(issue({ [field]: '' })).thenFails('MALFORMED', new RegExp(`${field} must be a non-empty string`));
  });

  test('when the "digest" is the plaintext number, then PLAINTEXT_NUMBER_IN_EVENT', () => {
    spec.given([]).when(issue({ numberDigest: FIRST })).thenFails('PLAINTEXT_NUMBER_IN_EVENT');
  });

  test('when the identifiers to seal name another number, or no resident record code, then MALFORMED', () => {
    spec.given([]).when(issue({ identifiers: identifiersFor(SECOND) })).thenFails('MALFORMED', /the number being issued/);
    spec.given([]).when(issue({ identifiers: { individualNumber: FIRST, residentRecordCode: 'x' } })).thenFails('MALFORMED', /resident record code/);
  });

  test('when the resident digest holds the plaintext number, then PLAINTEXT_NUMBER_IN_EVENT', () => {
    spec.given([]).when(issue({ residentDigest: `base64:${FIRST}` })).thenFails('PLAINTEXT_NUMBER_IN_EVENT', /pass its digest instead/);
  });
});

describe('ChangeIndividualNumber (番号変更)', () => {
  test('given an issued number, when changed, then IndividualNumberChanged links old and new digests', () => {
    spec.given([issued]).when(change()).then([changedToSecond]);
  });

  test('given a changed number, when changed again, then the previous digest is the second one', () => {
    spec
      .given([issued, changedToSecond])
      .when(change({ reason: 'request', number: THIRD, numberDigest: 'digest-third', identifiers: identifiersFor(THIRD), changedAt: '2026-01-05T00:00:00.000Z' }))
      .then([
        {
          type: 'IndividualNumberChanged',
          schemaVersion: 1,
          data: {
            subjectId: 'subj-aoyama',
            previousNumberDigest: 'digest-second',
            numberDigest: 'digest-third',
            identifiers: identifiersFor(THIRD),
            reason: 'request',
            changedAt: '2026-01-05T00:00:00.000Z',
          },
          terminal: 'completed',
          claims: ['individual-number:digest-third'],
        },
      ]);
  });

  test('given no events, when changed, then RESIDENT_NOT_NUMBERED', () => {
    spec.given([]).when(change()).thenFails('RESIDENT_NOT_NUMBERED', /issue one before changing it/);
  });

  test('given an issued number, when "changed" to the current number, then NUMBER_UNCHANGED', () => {
    spec.given([issued]).when(change({ numberDigest: 'digest-first' })).thenFails('NUMBER_UNCHANGED', /never issued again/);
  });

  test('given a changed number, when changed back to a previous number, then NUMBER_UNCHANGED', () => {
    spec.given([issued, changedToSecond]).when(change({ number: FIRST, numberDigest: 'digest-first' })).thenFails('NUMBER_UNCHANGED');
  });

  test('when the new number fails its check digit, then CHECK_DIGIT_MISMATCH', () => {
    spec.given([issued]).when(change({ number: '987654321090' as MyNumber })).thenFails('CHECK_DIGIT_MISMATCH');
  });

  test('when the reason is not one of leak, request, other, then MALFORMED', () => {
    spec.given([issued]).when(change({ reason: 'bored' as ChangeReason })).thenFails('MALFORMED', /leak, request, other/);
  });

  test('when the new digest is empty, then MALFORMED', () => {
    spec.given([issued]).when(change({ numberDigest: '' })).thenFails('MALFORMED');
  });

  test('when the new digest is the plaintext new number, then PLAINTEXT_NUMBER_IN_EVENT', () => {
    spec.given([issued]).when(change({ numberDigest: SECOND })).thenFails('PLAINTEXT_NUMBER_IN_EVENT');
  });
});

describe('evolve', () => {
  test('initial state is unnumbered', () => {
    expect(personNumberingDecider.initialState()).toEqual({ status: 'unnumbered' });
  });

  test('the state keeps every previous digest, oldest first', () => {
    const changedToThird: IndividualNumberChanged = {
      ...changedToSecond,
      data: { ...changedToSecond.data, previousNumberDigest: 'digest-second', numberDigest: 'digest-third', changedAt: '2026-01-05T00:00:00.000Z' },
    };
    expect(spec.given([issued, changedToSecond, changedToThird]).state).toEqual({
      status: 'numbered',
      subjectId: 'subj-aoyama',
      municipalityCode: MURORAN,
      residentDigest: 'resident-aoyama',
      currentNumberDigest: 'digest-third',
      previousNumberDigests: ['digest-first', 'digest-second'],
      issuedAt: '2025-04-01T09:00:00.000Z',
      lastChangedAt: '2026-01-05T00:00:00.000Z',
    });
  });

  test('a change without an issuance leaves the state unnumbered', () => {
    expect(spec.given([changedToSecond]).state).toEqual({ status: 'unnumbered' });
  });

  test('evolve accepts a stored event narrowed to type and data', () => {
    const stored = { type: 'IndividualNumberIssued' as const, data: issued.data };
    expect(personNumberingDecider.evolve(personNumberingDecider.initialState(), stored)).toMatchObject({ status: 'numbered' });
  });

  test('an unknown event type is a loud error naming only the type', () => {
    const bogus = { type: 'IndividualNumberRevoked', data: { number: FIRST } } as unknown as PersonNumberingEvent;
    expect(() => personNumberingDecider.evolve(personNumberingDecider.initialState(), bogus)).toThrow('unreachable: unhandled type "IndividualNumberRevoked"');
  });

  test('the stream id is derived from the resident digest only', () => {
    expect(personNumberingStreamId('resident-aoyama')).toBe('person-numbering-resident-aoyama');
  });
});

describe('I4: no stored event carries the plaintext number or resident record code', () => {
  const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
  // Events are stored as the hub stores them: sealed (libs/sealing); `identifiers` is the one field that holds the numbers.
  const sealer = inMemorySealer();
  const stored = (events: readonly NewEvent[]) => events.map((e) => sealer.seal('person-numbering-x', e));

  test('property: honest inputs always yield events that, sealed, never contain either plaintext number or the resident record code', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9]{11}$/),
        fc.stringMatching(/^[0-9]{11}$/),
        fc.stringMatching(/^[0-9]{11}$/),
        hex,
        hex,
        hex,
        fc.constantFrom<ChangeReason>('leak', 'request', 'other'),
        (base1, base2, residentCode, d1, d2, resident, reason) => {
          fc.pre(d1 !== d2);
          const first = individualNumberFromRandomBase(base1);
          const second = individualNumberFromRandomBase(base2);
          fc.pre(first !== second);
          const ids = (n: string) => ({ individualNumber: n, residentRecordCode: residentCode });
          const issuedEvents = spec.given([]).when(issue({ subjectId: '5b0c1c8e-9a43-4d0e-8f65-0c3f2a1b9d77', number: first, numberDigest: d1, residentDigest: resident, identifiers: ids(first) })).thenEvents();
          const changedEvents = spec.given(issuedEvents).when(change({ number: second, numberDigest: d2, identifiers: ids(second), reason })).thenEvents();
          expect(issuedEvents).toHaveLength(1);
          expect(changedEvents).toHaveLength(1);
          // As decided, the numbers are in `identifiers` only.
          for (const e of [...issuedEvents, ...changedEvents]) {
            const { identifiers, ...rest } = e.data as { identifiers: unknown };
            expect(identifiers).toBeDefined();
            expect(JSON.stringify(rest)).not.toContain(first);
            expect(JSON.stringify(rest)).not.toContain(second);
          }
          const json = JSON.stringify(stored([...issuedEvents, ...changedEvents]));
          expect(json).not.toContain(first);
          expect(json).not.toContain(second);
          expect(json).not.toContain(residentCode);
        },
      ),
    );
  });

  test('property: a plaintext number smuggled into any field is refused, never emitted', () => {
    const fields = ['numberDigest', 'residentDigest', 'subjectId'] as const;
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{11}$/), fc.constantFrom(...fields), fc.string({ maxLength: 8 }), hex, (base, field, noise, digest) => {
        const number = individualNumberFromRandomBase(base);
        const smuggled = `${noise}${number}${noise}`;
        const cmd = issue({ number, numberDigest: digest, identifiers: identifiersFor(number), [field]: smuggled });
        const result = outcome(() => spec.given([]).when(cmd).thenEvents());
        expect(result.ok).toBe(false);
        expect(result.ok ? undefined : result.error).toBeInstanceOf(NumberingError);
        expect(result.ok ? undefined : (result.error as NumberingError).code).toBe('PLAINTEXT_NUMBER_IN_EVENT');
        expect(result.ok ? '' : (result.error as Error).message).not.toContain(number);
      }),
    );
  });
});
