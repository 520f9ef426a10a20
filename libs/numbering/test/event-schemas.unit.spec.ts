import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  CORPORATE_KINDS,
  corporateNumberDecider,
  corporateNumberFromBase,
  individualNumberFromRandomBase,
  personNumberingDecider,
  type IndividualNumberIssued,
} from '#numbering';
import { schemaValidator } from './json-schema.js';

const issuedSchema = schemaValidator('schemas/events/individual-number-issued.v1.json');
const changedSchema = schemaValidator('schemas/events/individual-number-changed.v1.json');
const designatedSchema = schemaValidator('schemas/events/corporate-number-designated.v1.json');

const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
const sealed = fc.dictionary(fc.constantFrom('myNumber', 'residentRecordCode', 'keyId'), fc.base64String({ minLength: 4, maxLength: 64 }), { minKeys: 1 });
const isoTime = fc.date({ min: new Date('2015-10-05T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());

function issuedData(): IndividualNumberIssued['data'] {
  const [event] = personNumberingDecider.decide(
    {
      type: 'IssueIndividualNumber',
      data: {
        subjectId: 'subj-1',
        municipalityCode: '012050',
        municipalityKnown: true,
        number: individualNumberFromRandomBase('12345678901'),
        numberDigest: 'a'.repeat(64),
        residentDigest: 'b'.repeat(64),
        sealed: { myNumber: 'Y3QxMjM=', keyId: 'kek-1' },
        issuedAt: '2025-04-01T09:00:00.000Z',
      },
    },
    personNumberingDecider.initialState(),
  );
  if (event?.type !== 'IndividualNumberIssued') throw new Error('fixture: expected IndividualNumberIssued');
  return event.data;
}

describe('event payloads conform to schemas/events/*.v1.json', () => {
  test('property: IndividualNumberIssued and IndividualNumberChanged data from the decider validate', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{11}$/), fc.stringMatching(/^[0-9]{11}$/), hex, hex, hex, sealed, sealed, isoTime, isoTime, (b1, b2, d1, d2, r, s1, s2, t1, t2) => {
        fc.pre(d1 !== d2);
        const issued = personNumberingDecider.decide(
          { type: 'IssueIndividualNumber', data: { subjectId: 'subj', municipalityCode: '131016', municipalityKnown: true, number: individualNumberFromRandomBase(b1), numberDigest: d1, residentDigest: r, sealed: s1, issuedAt: t1 } },
          personNumberingDecider.initialState(),
        );
        const state = issued.reduce(personNumberingDecider.evolve, personNumberingDecider.initialState());
        const changed = personNumberingDecider.decide(
          { type: 'ChangeIndividualNumber', data: { reason: 'leak', number: individualNumberFromRandomBase(b2), numberDigest: d2, sealed: s2, changedAt: t2 } },
          state,
        );
        expect(issuedSchema(issued[0]?.data).errors).toBe('No errors');
        expect(changedSchema(changed[0]?.data).errors).toBe('No errors');
      }),
    );
  });

  test('property: CorporateNumberDesignated data from the decider validates', () => {
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 });
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{12}$/), text, text, fc.constantFrom(...CORPORATE_KINDS), isoTime, (base, name, location, kind, at) => {
        fc.pre(name.trim().length > 0 && location.trim().length > 0 && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u.test(name + location));
        const [event] = corporateNumberDecider.decide(
          { type: 'DesignateCorporateNumber', data: { corporateNumber: corporateNumberFromBase(base), name, location, kind, designatedAt: at } },
          corporateNumberDecider.initialState(),
        );
        expect(designatedSchema(event?.data).errors).toBe('No errors');
      }),
    );
  });

  test('the issued schema refuses a plaintext number as digest or ciphertext, and unknown fields', () => {
    const data = issuedData();
    expect(issuedSchema(data).valid).toBe(true);
    expect(issuedSchema({ ...data, numberDigest: '123456789018' }).valid).toBe(false);
    expect(issuedSchema({ ...data, residentDigest: '12345678901' }).valid).toBe(false);
    expect(issuedSchema({ ...data, sealed: { myNumber: '123456789018' } }).valid).toBe(false);
    expect(issuedSchema({ ...data, number: '123456789018' }).valid).toBe(false);
    expect(issuedSchema({ ...data, sealed: {} }).valid).toBe(false);
    expect(issuedSchema({ ...data, issuedAt: 'yesterday' }).valid).toBe(false);
  });

  test('the changed schema refuses an unknown reason', () => {
    const data = { subjectId: 's', previousNumberDigest: 'a'.repeat(64), numberDigest: 'b'.repeat(64), sealed: { myNumber: 'Y3Q=' }, reason: 'leak', changedAt: '2025-06-01T10:30:00.000Z' };
    expect(changedSchema(data).valid).toBe(true);
    expect(changedSchema({ ...data, reason: 'bored' }).valid).toBe(false);
  });

  test('the designated schema mirrors the decider rules on number, name and location', () => {
    const data = { corporateNumber: '4011001098993', name: '株式会社室蘭製作所', location: '北海道室蘭市', kind: 'stock-company', designatedAt: '2025-04-01T09:00:00.000Z' };
    expect(designatedSchema(data).valid).toBe(true);
    expect(designatedSchema({ ...data, corporateNumber: '0110010989934' }).valid).toBe(false); // check digit is never 0
    expect(designatedSchema({ ...data, name: ' 株式会社室蘭製作所' }).valid).toBe(false);
    expect(designatedSchema({ ...data, name: 'あ'.repeat(201) }).valid).toBe(false);
    expect(designatedSchema({ ...data, name: '𠮷'.repeat(200) }).valid).toBe(true);
    expect(designatedSchema({ ...data, location: '室蘭\n市' }).valid).toBe(false);
    expect(designatedSchema({ ...data, kind: 'kabushiki' }).valid).toBe(false);
  });
});
