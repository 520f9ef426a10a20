import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  agencyCodeDecider,
  agencyCodeFromRandomBytes,
  agencyRegistryDecider,
  authorizationTablesDecider,
  decideRefusal,
  decideUnauthenticatedRecord,
  displayTextMessage,
  noticeDecider,
  queryDecider,
  type AgencyCodeEvent,
  type AgencyId,
  type AgencyRegistryEvent,
  type QueryEvent,
  type QueryStreamEvent,
  type SubjectId,
} from '#linkage';
import type { NewEvent } from '#ledger';
import { inMemorySealer, sealSpecOf } from '#sealing';
import { CODE_B, HELLO_WORK, MURORAN, PENSION, TOKENS, facts, policy, rawTable, sha256, x25519Key } from './fixtures.js';
import { schemaValidator } from '../../../test/support/json-schema.js';

const TABLE_SCHEMA = 'schemas/authorization/authorization-table.schema.json';
const SEALED_SECTION = 'schemas/events/sealed-section.v1.json';
const schemaFor = (file: string, version: number) =>
  schemaValidator(`schemas/events/${file}.v${version}.json`, file === 'authorization-table-published' ? [TABLE_SCHEMA] : version >= 2 || ['request-refused', 'unauthenticated-requests-recorded', 'keys-shredded'].includes(file) ? [SEALED_SECTION] : []);
const FILES: readonly (readonly [string, string])[] = [
    ['AgencyRegistered', 'agency-registered'],
    ['AgencyUpdated', 'agency-updated'],
    ['AgencyCredentialRotated', 'agency-credential-rotated'],
    ['AgencyRevoked', 'agency-revoked'],
    ['AgencyCodeIssued', 'agency-code-issued'],
    ['AgencyCodeReacquired', 'agency-code-reacquired'],
    ['AuthorizationTablePublished', 'authorization-table-published'],
    ['QueryAccepted', 'query-accepted'],
    ['ProvisionRequested', 'provision-requested'],
    ['QueryDenied', 'query-denied'],
    ['ProvisionAnswered', 'provision-answered'],
    ['ProvisionRefused', 'provision-refused'],
    ['QueryCompleted', 'query-completed'],
    ['QueryFailed', 'query-failed'],
    ['NoticeSent', 'notice-sent'],
    ['RequestRefused', 'request-refused'],
    ['UnauthenticatedRequestsRecorded', 'unauthenticated-requests-recorded'],
];
/** The schema of each type's stored form: the version the sealer stores (v2 for types with personal fields). */
const STORED: Readonly<Record<string, ReturnType<typeof schemaValidator>>> = Object.fromEntries(FILES.map(([type, file]) => [type, schemaFor(file, sealSpecOf(type)?.storedVersion ?? 1)]));
/** The schemas of logs written before sealing (schemaVersion 1), still read. */
const V1: Readonly<Record<string, ReturnType<typeof schemaValidator>>> = Object.fromEntries(
  FILES.filter(([type]) => !['RequestRefused', 'UnauthenticatedRequestsRecorded'].includes(type)).map(([type, file]) => [type, schemaFor(file, 1)]),
);
const sealer = inMemorySealer();

/** Seals a decided event as the hub does before appending, and checks the stored form against its schema. */
function expectConforms(event: NewEvent): void {
  const stored = sealer.seal('stream-x', event);
  const validate = STORED[stored.type];
  expect(validate, `a schema for ${stored.type}`).toBeDefined();
  expect(validate!(stored.data).errors, stored.type).toBe('No errors');
}

const instant = fc.date({ min: new Date('2019-07-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
// Display text as the deciders take it (no surrounding space, no control or invisible characters such as U+FFA0).
const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => displayTextMessage('text', s) === undefined);
const digest = fc.stringMatching(/^[0-9a-f]{64}$/);
const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64url'));
const code = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(agencyCodeFromRandomBytes);
const subject = fc.uuid({ version: 4 }).map((u) => u as SubjectId);
// Hyphens only inside a label and never two in a row: a label such as `xn--` is an IDNA label that the URL parser refuses.
const host = fc.stringMatching(/^[a-z][a-z0-9]{0,20}(-[a-z0-9]{1,5})?\.example$/);

describe('linkage event payloads, sealed as stored, conform to schemas/events/*', () => {
  test('property: the agency registry\'s events', () => {
    fc.assert(
      fc.property(text, fc.constantFrom('municipality', 'jasso', 'hello-work'), host, key, digest, digest, instant, text, (name, kind, h, k, d1, d2, at, reason) => {
        fc.pre(d1 !== d2);
        const events: AgencyRegistryEvent[] = [];
        const run = (command: Parameters<typeof agencyRegistryDecider.decide>[0]): void => {
          const state = events.reduce(agencyRegistryDecider.evolve, agencyRegistryDecider.initialState());
          events.push(...agencyRegistryDecider.decide(command, state));
        };
        // A municipality is registered with its code, as the hub does when one is given.
        const municipality = kind === 'municipality' ? { municipalityCode: '012050' } : {};
        run({ type: 'RegisterAgency', data: { agencyId: 'agency-x', name, kind, endpoint: `https://${h}:8443/node`, publicKey: k, credentialDigest: d1, credentialClaimDigest: sha256(`claim:${d1}`), ...municipality, registeredAt: at } });
        run({ type: 'UpdateAgency', data: { endpoint: `grpcs://${h}:50051`, updatedAt: at } });
        run({ type: 'RotateAgencyCredential', data: { credentialDigest: d2, credentialClaimDigest: sha256(`claim:${d2}`), rotatedAt: at } });
        run({ type: 'RevokeAgency', data: { reason, revokedAt: at } });
        expect(events.map((e) => e.type)).toEqual(['AgencyRegistered', 'AgencyUpdated', 'AgencyCredentialRotated', 'AgencyRevoked']);
        events.forEach(expectConforms);
      }),
    );
  });

  test('property: AgencyCodeIssued and AgencyCodeReacquired', () => {
    fc.assert(
      fc.property(subject, code, fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/), instant, (s, c, a1, a2, at) => {
        fc.pre(a1 !== a2 && !/^\d{11,12}$/.test(a1) && !/^\d{11,12}$/.test(a2));
        const base = { subjectId: s, agencyId: PENSION, agency: facts(PENSION, 'pension-service'), candidateCode: c, candidateCodeDigest: sha256(c), acquiredAt: at };
        const issued = agencyCodeDecider.decide({ type: 'AcquireAgencyCode', data: { ...base, acquisitionNumber: a1 } }, agencyCodeDecider.initialState());
        const state = issued.reduce(agencyCodeDecider.evolve, agencyCodeDecider.initialState());
        const again: readonly AgencyCodeEvent[] = agencyCodeDecider.decide({ type: 'AcquireAgencyCode', data: { ...base, acquisitionNumber: a2 } }, state);
        [...issued, ...again].forEach(expectConforms);
      }),
    );
  });

  test('AuthorizationTablePublished embeds a table that conforms to the table schema', () => {
    const [event] = authorizationTablesDecider.decide(
      { type: 'PublishAuthorizationTable', data: { table: rawTable(), digest: sha256('t'), publishedAt: '2026-01-10T00:00:00.000Z' } },
      authorizationTablesDecider.initialState(),
    );
    expectConforms(event!);
    expect(STORED['AuthorizationTablePublished']!({ ...event!.data, table: { ...(event!.data as { table: object }).table, rows: [] } }).valid).toBe(false);
  });

  test('property: the query lifecycle\'s events, allowed and denied', () => {
    const p = policy();
    fc.assert(
      fc.property(
        subject,
        code,
        digest,
        fc.option(key, { nil: undefined }),
        fc.constantFrom('translated', 'unknown-code', 'no-code-at-provider'),
        fc.constantFrom<[string, 'municipality' | 'hello-work']>([MURORAN, 'municipality'], [HELLO_WORK, 'hello-work']),
        fc.constantFrom<'answer' | 'refuse' | 'fail'>('answer', 'refuse', 'fail'),
        instant,
        fc.option(fc.record({ batchId: fc.uuid(), size: fc.integer({ min: 1, max: 100000 }) }), { nil: undefined }),
        (s, providerCode, answerDigest, pk, status, [providerId, providerKind], end, at, batch) => {
          const translation = status === 'translated' ? { status, subjectId: s, providerCode } : status === 'unknown-code' ? { status } : { status, subjectId: s };
          const submitted = queryDecider.decide(
            {
              type: 'SubmitQuery',
              data: {
                queryId: 'q-1',
                requesterAgencyId: PENSION,
                requester: facts(PENSION, 'pension-service'),
                presentedCredentialDigest: sha256(TOKENS[PENSION]!),
                providerAgencyId: providerId,
                provider: facts(providerId as typeof MURORAN, providerKind),
                procedureCode: 'pre-twenty-disability-pension-income-check',
                itemCodes: ['local-tax'],
                requesterCode: CODE_B,
                policy: p,
                translation,
                ...(pk === undefined ? {} : { requesterPublicKey: pk }),
                ...(batch === undefined ? {} : { batch: { batchId: batch.batchId, index: batch.size - 1, size: batch.size } }),
                submittedAt: at,
              },
            },
            queryDecider.initialState(),
          );
          const events: QueryEvent[] = [...submitted];
          if (submitted[0]?.type === 'QueryAccepted') {
            const state = submitted.reduce((st, e) => queryDecider.evolve(st, e as QueryStreamEvent), queryDecider.initialState());
            const ending =
              end === 'answer'
                ? { type: 'RecordProvisionAnswer' as const, data: { queryId: 'q-1', providerAgencyId: providerId, answerDigest, answerSize: 2048, encrypted: true, answeredAt: at } }
                : end === 'refuse'
                  ? { type: 'RecordProvisionRefusal' as const, data: { queryId: 'q-1', providerAgencyId: providerId, reason: 'NOT_HELD' as const, refusedAt: at } }
                  : { type: 'FailQuery' as const, data: { queryId: 'q-1', reason: 'PROVIDER_TIMEOUT' as const, failedAt: at } };
            events.push(...queryDecider.decide(ending, state));
          }
          events.forEach(expectConforms);
        },
      ),
    );
  });
});

describe('the schemas of logs written before sealing (v1) hold the invariants on their own', () => {
  const issued = {
    subjectId: '6f1c2a9e-3b7d-4c10-9e2a-5d8b7c6a4f30',
    agencyId: MURORAN,
    agencyKind: 'municipality',
    code: CODE_B,
    acquisitionNumber: 'MRN-000001',
    issuedAt: '2026-04-01T09:00:00.000Z',
  };

  test('I4: AgencyCodeIssued refuses a My Number or resident record code in any field', () => {
    expect(V1['AgencyCodeIssued']!(issued).valid).toBe(true);
    expect(V1['AgencyCodeIssued']!({ ...issued, acquisitionNumber: '123456789018' }).valid).toBe(false);
    expect(V1['AgencyCodeIssued']!({ ...issued, code: '123456789018' }).valid).toBe(false);
    expect(V1['AgencyCodeIssued']!({ ...issued, subjectId: '12345678901' }).valid).toBe(false);
    expect(V1['AgencyCodeIssued']!({ ...issued, myNumber: '123456789018' }).valid).toBe(false);
  });

  test('I7: QueryAccepted has no place for the provider\'s code; I5: ProvisionAnswered has none for the answer', () => {
    const accepted = {
      queryId: 'q',
      requesterAgencyId: PENSION,
      requesterKind: 'pension-service',
      providerAgencyId: MURORAN,
      providerKind: 'municipality',
      procedureCode: 'pre-twenty-disability-pension-income-check',
      itemCodes: ['local-tax'],
      tableVersion: 1,
      subjectId: issued.subjectId,
      requesterCodeDigest: sha256('x'),
      acceptedAt: issued.issuedAt,
    };
    expect(V1['QueryAccepted']!(accepted).valid).toBe(true);
    expect(V1['QueryAccepted']!({ ...accepted, providerCode: CODE_B }).valid).toBe(false);
    const answered = { queryId: 'q', providerAgencyId: MURORAN, answerDigest: sha256('a'), answerSize: 10, encrypted: false, answeredAt: issued.issuedAt };
    expect(V1['ProvisionAnswered']!(answered).valid).toBe(true);
    expect(V1['ProvisionAnswered']!({ ...answered, answer: 'taxable income 1,234,000' }).valid).toBe(false);
  });

  test('AgencyRegistered refuses a plaintext token where the digest goes, and an endpoint with user info', () => {
    const registered = { agencyId: MURORAN, name: '室蘭市', kind: 'municipality', endpoint: 'https://node.muroran.example', publicKey: x25519Key('m'), credentialDigest: sha256('t'), registeredAt: issued.issuedAt };
    expect(V1['AgencyRegistered']!(registered).valid).toBe(true);
    expect(V1['AgencyRegistered']!({ ...registered, credentialDigest: 'token-of-muroran-city' }).valid).toBe(false);
    expect(V1['AgencyRegistered']!({ ...registered, endpoint: 'https://a:b@node.muroran.example' }).valid).toBe(false);
  });

  test('property: a notice', () => {
    fc.assert(
      fc.property(fc.uuid({ version: 7 }), subject, fc.constantFrom(MURORAN, PENSION), text, text, instant, (noticeId, subjectId, agencyId, title, body, sentAt) => {
        const events = noticeDecider.decide({ type: 'SendNotice', data: { noticeId, subjectId, agencyId: agencyId as AgencyId, title, body, sentAt } }, noticeDecider.initialState());
        expect(events).toHaveLength(1);
        for (const e of events) expectConforms(e);
      }),
    );
  });
});

describe('I10: the stored (sealed) forms have no place for a personal field in clear', () => {
  const personal = { subjectId: '6f1c2a9e-3b7d-4c10-9e2a-5d8b7c6a4f30', requesterCode: CODE_B, providerCode: CODE_B, code: CODE_B, requesterCodeDigest: sha256('x'), credentialDigest: sha256('t'), title: 't', answerPublicKey: x25519Key('k') };

  test.each(FILES.filter(([type]) => (sealSpecOf(type)?.fields.length ?? 0) > 0).map(([type]) => type))('%s', (type) => {
    const validate = STORED[type]!;
    const fields = sealSpecOf(type)!.fields.map((f) => f.name);
    for (const [name, value] of Object.entries(personal)) {
      if (!fields.includes(name) && name !== 'requesterCodeDigest') continue;
      // Whatever else the data holds, a personal field in clear makes it invalid.
      const result = validate({ [name]: value });
      expect(result.valid, `${type}.${name}`).toBe(false);
      expect(result.errors).toMatch(new RegExp(`additional properties|${name}`));
    }
  });

  test('a refusal names the proven agency and, apart, the claimed one; never a credential or a value', () => {
    const [e] = decideRefusal({
      refusalId: 'r-1',
      command: 'SubmitQuery',
      reason: 'CREDENTIAL_MISMATCH',
      caller: { kind: 'agency', agencyId: MURORAN, credential: 'current' },
      claimedAgencyId: PENSION,
      refusedAt: '2026-12-01T00:00:00.000Z',
    });
    expectConforms(e!);
    expect(e!.data).toMatchObject({ agencyId: MURORAN, claimedAgencyId: PENSION, credential: 'current' });
    const [v] = decideRefusal({ refusalId: 'r-2', command: 'SendNotice', reason: 'VALIDATION_FAILED', caller: { kind: 'agency', agencyId: MURORAN, credential: 'current' }, fields: ['title', 'x y'], presented: { code: CODE_B }, refusedAt: '2026-12-01T00:00:00.000Z' });
    expect(v!.data.fields).toEqual(['title']);
    expectConforms(v!);
    expect(JSON.stringify(sealer.seal('refusal-r-2', v!))).not.toContain(CODE_B);
  });

  test('an aggregated record of unidentified requests', () => {
    const [e] = decideUnauthenticatedRecord({ recordId: 'u-1', intervalStart: '2026-12-01T00:00:00.000Z', intervalEnd: '2026-12-01T00:01:00.000Z', count: 1000, reasons: { UNAUTHENTICATED: 1000 }, commands: { SubmitBulkQuery: 1000 }, sources: 1, source: '203.0.113.9' });
    expectConforms(e!);
    expect(JSON.stringify(sealer.seal('unauthenticated-u-1', e!))).not.toContain('203.0.113.9');
  });
});
