import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { displayTextProblem } from '#text';
import {
  CORPORATE_KINDS,
  CORPORATE_TEXT,
  corporateNumberDecider,
  corporateNumberFromBase,
  individualNumberFromRandomBase,
  personNumberingDecider,
  type IndividualNumberIssued,
} from '#numbering';
import type { NewEvent } from '#ledger';
import { inMemorySealer } from '#sealing';
import { schemaValidator } from '../../../test/support/json-schema.js';

const SEALED_SECTION = 'schemas/events/sealed-section.v1.json';
/** The stored forms (schemaVersion 2: identifiers and subject sealed) and the forms of logs written before sealing (v1). */
const issuedSchema = schemaValidator('schemas/events/individual-number-issued.v2.json', [SEALED_SECTION]);
const changedSchema = schemaValidator('schemas/events/individual-number-changed.v2.json', [SEALED_SECTION]);
const issuedSchemaV1 = schemaValidator('schemas/events/individual-number-issued.v1.json');
const changedSchemaV1 = schemaValidator('schemas/events/individual-number-changed.v1.json');
const sealer = inMemorySealer();
/** A decided event as the hub stores it. */
const stored = (e: NewEvent | undefined) => (e === undefined ? undefined : sealer.seal('person-numbering-x', e).data);
const designatedSchema = schemaValidator('schemas/events/corporate-number-designated.v1.json');
const corporateChangedSchema = schemaValidator('schemas/events/corporate-number-changed.v1.json');
const corporateClosedSchema = schemaValidator('schemas/events/corporate-number-closed.v1.json');

const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
const resident = fc.stringMatching(/^[0-9]{11}$/);
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
        identifiers: { individualNumber: individualNumberFromRandomBase('12345678901'), residentRecordCode: '20000000001' },
        issuedAt: '2025-04-01T09:00:00.000Z',
      },
    },
    personNumberingDecider.initialState(),
  );
  if (event?.type !== 'IndividualNumberIssued') throw new Error('fixture: expected IndividualNumberIssued');
  return event.data;
}

describe('event payloads, sealed as stored, conform to schemas/events/*', () => {
  test('property: IndividualNumberIssued and IndividualNumberChanged data from the decider validate once sealed', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{11}$/), fc.stringMatching(/^[0-9]{11}$/), hex, hex, hex, resident, isoTime, isoTime, (b1, b2, d1, d2, r, code, t1, t2) => {
        fc.pre(d1 !== d2);
        const [n1, n2] = [individualNumberFromRandomBase(b1), individualNumberFromRandomBase(b2)];
        const issued = personNumberingDecider.decide(
          { type: 'IssueIndividualNumber', data: { subjectId: 'subj', municipalityCode: '131016', municipalityKnown: true, number: n1, numberDigest: d1, residentDigest: r, identifiers: { individualNumber: n1, residentRecordCode: code }, issuedAt: t1 } },
          personNumberingDecider.initialState(),
        );
        const state = issued.reduce(personNumberingDecider.evolve, personNumberingDecider.initialState());
        const changed = personNumberingDecider.decide(
          { type: 'ChangeIndividualNumber', data: { reason: 'leak', number: n2, numberDigest: d2, identifiers: { individualNumber: n2, residentRecordCode: code }, changedAt: t2 } },
          state,
        );
        expect(issuedSchema(stored(issued[0])).errors).toBe('No errors');
        expect(changedSchema(stored(changed[0])).errors).toBe('No errors');
      }),
    );
  });

  test('property: CorporateNumberDesignated data from the decider validates', () => {
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 });
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{12}$/), text, text, fc.constantFrom(...CORPORATE_KINDS), isoTime, (base, name, location, kind, at) => {
        // Text the shared rule refuses (blank, invisible only, control characters) has no event to check.
        fc.pre(displayTextProblem(name, CORPORATE_TEXT) === undefined && displayTextProblem(location, CORPORATE_TEXT) === undefined);
        const [event] = corporateNumberDecider.decide(
          { type: 'DesignateCorporateNumber', data: { corporateNumber: corporateNumberFromBase(base), name, location, kind, designatedAt: at } },
          corporateNumberDecider.initialState(),
        );
        expect(designatedSchema(event?.data).errors).toBe('No errors');
      }),
    );
  });

  test('the stored issued schema refuses a plaintext number as digest, identifiers or a subject in clear, and unknown fields', () => {
    const data = stored({ type: 'IndividualNumberIssued', data: issuedData() }) as Record<string, unknown>;
    expect(issuedSchema(data).errors).toBe('No errors');
    expect(issuedSchema({ ...data, numberDigest: '123456789018' }).valid).toBe(false);
    expect(issuedSchema({ ...data, identifiers: { individualNumber: '123456789018' } }).valid).toBe(false);
    expect(issuedSchema({ ...data, subjectId: 'subj-1' }).valid).toBe(false);
    expect(issuedSchema({ ...data, number: '123456789018' }).valid).toBe(false);
    expect(issuedSchema({ ...data, sealed: {} }).valid).toBe(false);
    expect(issuedSchema({ ...data, issuedAt: 'yesterday' }).valid).toBe(false);
  });

  test('the v1 issued schema (logs written before sealing) still refuses a plaintext number as digest or ciphertext', () => {
    const data = { subjectId: 'subj-1', municipalityCode: '012050', numberDigest: 'a'.repeat(64), residentDigest: 'b'.repeat(64), sealed: { myNumber: 'Y3QxMjM=', keyId: 'kek-1' }, issuedAt: '2025-04-01T09:00:00.000Z' };
    expect(issuedSchemaV1(data).valid).toBe(true);
    expect(issuedSchemaV1({ ...data, numberDigest: '123456789018' }).valid).toBe(false);
    expect(issuedSchemaV1({ ...data, sealed: { myNumber: '123456789018' } }).valid).toBe(false);
  });

  test('the changed schemas refuse an unknown reason', () => {
    const data = { subjectId: 's', previousNumberDigest: 'a'.repeat(64), numberDigest: 'b'.repeat(64), sealed: { myNumber: 'Y3Q=' }, reason: 'leak', changedAt: '2025-06-01T10:30:00.000Z' };
    expect(changedSchemaV1(data).valid).toBe(true);
    expect(changedSchemaV1({ ...data, reason: 'bored' }).valid).toBe(false);
    const v2 = stored({ type: 'IndividualNumberChanged', data: { subjectId: 's', previousNumberDigest: 'a'.repeat(64), numberDigest: 'b'.repeat(64), identifiers: { individualNumber: '123456789018', residentRecordCode: '20000000001' }, reason: 'leak', changedAt: '2025-06-01T10:30:00.000Z' } }) as Record<string, unknown>;
    expect(changedSchema(v2).errors).toBe('No errors');
    expect(changedSchema({ ...v2, reason: 'bored' }).valid).toBe(false);
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

  test('property: CorporateNumberChanged and CorporateNumberClosed data from the decider validate', () => {
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 });
    const day = fc.date({ min: new Date('2026-01-01T00:00:00Z'), max: new Date('2026-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
    const visible = (t: string) => t.trim().length > 0 && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u.test(t);
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{12}$/), text, fc.option(text, { nil: undefined }), text, day, (base, name, location, reason, effectiveOn) => {
        fc.pre(visible(name) && visible(reason) && (location === undefined || visible(location)));
        const corporateNumber = corporateNumberFromBase(base);
        const state = corporateNumberDecider.evolve(corporateNumberDecider.initialState(), {
          type: 'CorporateNumberDesignated',
          data: { corporateNumber, name: '株式会社室蘭製作所', location: '北海道室蘭市', kind: 'stock-company', designatedAt: '2025-04-01T00:00:00.000Z' },
        });
        let changed;
        try {
          [changed] = corporateNumberDecider.decide(
            { type: 'ChangeCorporateNumber', data: { corporateNumber, name, ...(location === undefined ? {} : { location }), reason, effectiveOn, changedAt: '2027-01-01T00:00:00.000Z' } },
            state,
          );
        } catch {
          return; // unchanged values (NOTHING_TO_UPDATE) or text the decider refuses: no event to check
        }
        expect(corporateChangedSchema(changed?.data).errors).toBe('No errors');
        const [closedEvent] = corporateNumberDecider.decide({ type: 'CloseCorporateNumber', data: { corporateNumber, reason, closedOn: effectiveOn, closedAt: '2027-01-01T00:00:00.000Z' } }, state);
        expect(corporateClosedSchema(closedEvent?.data).errors).toBe('No errors');
      }),
    );
  });

  test('the changed and closed schemas refuse a change of nothing, an impossible day, an untrimmed reason and unknown fields', () => {
    const changed = { corporateNumber: '4011001098993', name: { previous: '株式会社室蘭製作所', current: '株式会社むろらん' }, reason: '商号変更', effectiveOn: '2026-06-01', changedAt: '2026-06-02T01:00:00.000Z' };
    expect(corporateChangedSchema(changed).valid).toBe(true);
    const { name: _name, ...nothing } = changed;
    expect(corporateChangedSchema(nothing).valid).toBe(false);
    expect(corporateChangedSchema({ ...changed, effectiveOn: '2026-13-01' }).valid).toBe(false);
    expect(corporateChangedSchema({ ...changed, reason: ' 商号変更' }).valid).toBe(false);
    expect(corporateChangedSchema({ ...changed, name: { current: 'x' } }).valid).toBe(false);
    const closed = { corporateNumber: '4011001098993', reason: '清算の結了', closedOn: '2026-09-30', closedAt: '2026-10-01T02:00:00.000Z' };
    expect(corporateClosedSchema(closed).valid).toBe(true);
    expect(corporateClosedSchema({ ...closed, successor: '1' }).valid).toBe(false);
    expect(corporateClosedSchema({ ...closed, reason: '' }).valid).toBe(false);
  });
});
