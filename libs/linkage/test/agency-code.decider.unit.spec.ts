import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  agencyCodeClaim,
  agencyCodeDecider,
  agencyCodeFromRandomBytes,
  agencyCodeStreamId,
  legacyAgencyCodeStreamId,
  isAgencyCode,
  issuedCode,
  type AcquireAgencyCodeData,
  type AgencyCodeIssued,
  type AgencyId,
  type SubjectId,
} from '#linkage';
import { AOYAMA, CODE_A, MURORAN, PENSION, T0, T1, facts, sha256 } from './fixtures.js';
import { deciderSpec } from './given-when-then.js';

const spec = deciderSpec(agencyCodeDecider);
/** A candidate code and the digest its claim holds (the hub's is keyed; any digest will do here). */
const cand = (code: string) => ({ candidateCode: code, candidateCodeDigest: sha256(code) });

const acquire: AcquireAgencyCodeData = {
  subjectId: AOYAMA,
  agencyId: PENSION,
  agency: facts(PENSION, 'pension-service'),
  acquisitionNumber: 'JPS-2026-000123',
  ...cand(CODE_A),
  acquiredAt: T0,
};

const issued: AgencyCodeIssued = {
  type: 'AgencyCodeIssued',
  schemaVersion: 1,
  data: { subjectId: AOYAMA, agencyId: PENSION, agencyKind: 'pension-service', code: CODE_A, acquisitionNumber: 'JPS-2026-000123', issuedAt: T0 },
  terminal: 'completed',
  claims: [agencyCodeClaim(sha256(CODE_A))],
};

describe('AcquireAgencyCode (I7)', () => {
  test('given nothing, when the pension service acquires its code for Aoyama-san, then AgencyCodeIssued with a claim on the code', () => {
    spec.given([]).when({ type: 'AcquireAgencyCode', data: acquire }).then([issued]);
    expect(agencyCodeStreamId('0123abcd')).toBe('agency-code-0123abcd');
    expect(legacyAgencyCodeStreamId(AOYAMA, PENSION)).toBe(`agency-code-${AOYAMA}-${PENSION}`);
    // The claim holds the digest the caller gives, never the code (I10).
    expect(JSON.stringify(issued.claims)).not.toContain(CODE_A);
  });

  test('given an issued code, a retry with the same acquisition number decides nothing and the state answers the same code', () => {
    const given = spec.given([issued]);
    given.when({ type: 'AcquireAgencyCode', data: { ...acquire, ...cand(agencyCodeFromRandomBytes(new Uint8Array(16).fill(7))), acquiredAt: T1 } }).then([]);
    expect(issuedCode(given.state)).toBe(CODE_A);
  });

  test('given an issued code, a new acquisition number is recorded without a new code, and the same code is answered', () => {
    const given = spec.given([issued]);
    given
      .when({ type: 'AcquireAgencyCode', data: { ...acquire, acquisitionNumber: 'JPS-2027-000001', ...cand(agencyCodeFromRandomBytes(new Uint8Array(16).fill(9))), acquiredAt: T1 } })
      .then([{ type: 'AgencyCodeReacquired', schemaVersion: 1, data: { subjectId: AOYAMA, agencyId: PENSION, acquisitionNumber: 'JPS-2027-000001', reacquiredAt: T1 }, terminal: 'completed' }]);
    const after = spec.given([issued, { type: 'AgencyCodeReacquired', data: { subjectId: AOYAMA, agencyId: PENSION, acquisitionNumber: 'JPS-2027-000001', reacquiredAt: T1 } }]).state;
    expect(after).toMatchObject({ status: 'issued', code: CODE_A, acquisitionNumbers: ['JPS-2026-000123', 'JPS-2027-000001'] });
  });

  test('an unregistered or revoked agency cannot acquire codes', () => {
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, agency: undefined } }).thenFails('AGENCY_NOT_REGISTERED');
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, agency: facts(MURORAN, 'municipality') } }).thenFails('AGENCY_NOT_REGISTERED');
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, agency: facts(PENSION, 'pension-service', 'revoked') } }).thenFails('AGENCY_REVOKED');
  });

  test('I4: a My Number or resident record code never enters the event, not even as an acquisition number', () => {
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, acquisitionNumber: '123456789018' } }).thenFails('PERSONAL_IDENTIFIER_IN_EVENT', /My Number/);
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, acquisitionNumber: '12345678901' } }).thenFails('PERSONAL_IDENTIFIER_IN_EVENT');
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, subjectId: '123456789018' } }).thenFails('INVALID_SUBJECT_ID');
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, ...cand('123456789018') } }).thenFails('INVALID_AGENCY_CODE');
  });

  test('refuses malformed input', () => {
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, acquisitionNumber: '' } }).thenFails('INVALID_ACQUISITION_NUMBER');
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, acquisitionNumber: 'a b' } }).thenFails('INVALID_ACQUISITION_NUMBER');
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, agencyId: 'JPS' } }).thenFails('INVALID_AGENCY_ID');
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, acquiredAt: 'today' } }).thenFails('MALFORMED');
    spec.given([]).when({ type: 'AcquireAgencyCode', data: { ...acquire, ...cand(`${CODE_A.slice(0, 21)}B`) } }).thenFails('INVALID_AGENCY_CODE');
  });

  test('a command decided on another subject\'s stream is STREAM_MISMATCH', () => {
    spec.given([issued]).when({ type: 'AcquireAgencyCode', data: { ...acquire, subjectId: '00000000-0000-4000-8000-000000000000' } }).thenFails('STREAM_MISMATCH');
  });
});

describe('agency codes: properties', () => {
  const subject = fc.uuid({ version: 4 }).map((u) => u as SubjectId);
  const bytes16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
  const agencyIds = [PENSION, MURORAN, 'sapporo-city', 'hello-work-muroran'] as AgencyId[];

  test('property: agencyCodeFromRandomBytes is a bijection onto well-formed codes (base64url of the same 16 bytes)', () => {
    fc.assert(
      fc.property(bytes16, (b) => {
        const code = agencyCodeFromRandomBytes(b);
        expect(isAgencyCode(code)).toBe(true);
        expect(code).toBe(Buffer.from(b).toString('base64url'));
      }),
    );
    expect(() => agencyCodeFromRandomBytes(new Uint8Array(15))).toThrow(expect.objectContaining({ code: 'INVALID_AGENCY_CODE' }));
  });

  test('property: codes of two agencies for one subject differ, and equal codes claim the same key so the ledger refuses the second', () => {
    fc.assert(
      fc.property(subject, fc.uniqueArray(fc.constantFrom(...agencyIds), { minLength: 2, maxLength: 4 }), fc.array(bytes16, { minLength: 4, maxLength: 4 }), (s, agencies, draws) => {
        const events = agencies.map((a, i) => {
          const [e] = agencyCodeDecider.decide(
            { type: 'AcquireAgencyCode', data: { ...acquire, subjectId: s, agencyId: a, agency: facts(a, 'municipality'), ...cand(agencyCodeFromRandomBytes(draws[i]!)) } },
            agencyCodeDecider.initialState(),
          );
          return e as AgencyCodeIssued;
        });
        for (let i = 0; i < events.length; i++) {
          for (let j = i + 1; j < events.length; j++) {
            const [a, b] = [events[i]!, events[j]!];
            // Distinct draws give distinct codes; a colliding draw shows up as a shared claim, which the ledger refuses.
            expect(a.data.code === b.data.code).toBe(a.claims![0] === b.claims![0]);
            if (Buffer.compare(Buffer.from(draws[i]!), Buffer.from(draws[j]!)) !== 0) expect(a.data.code).not.toBe(b.data.code);
          }
        }
      }),
    );
  });

  test('property: an issued event holds nothing shaped like a My Number or resident record code', () => {
    fc.assert(
      fc.property(subject, bytes16, fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/), (s, b, acq) => {
        fc.pre(!/^\d{11,12}$/.test(acq));
        const [e] = agencyCodeDecider.decide({ type: 'AcquireAgencyCode', data: { ...acquire, subjectId: s, acquisitionNumber: acq, ...cand(agencyCodeFromRandomBytes(b)) } }, agencyCodeDecider.initialState());
        for (const value of Object.values(e!.data)) expect(String(value)).not.toMatch(/^\d{11,12}$/);
      }),
    );
  });
});
