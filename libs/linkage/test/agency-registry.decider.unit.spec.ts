import { describe, expect, test } from 'vitest';
import {
  agencyCredentialClaim,
  municipalityAgencyClaim,
  agencyFacts,
  agencyRegistryDecider,
  agencyStreamId,
  type AgencyRegistered,
  type RegisterAgencyData,
} from '#linkage';
import { MURORAN, T0, T1, T2, sha256, x25519Key } from './fixtures.js';
import { deciderSpec } from './given-when-then.js';

const spec = deciderSpec(agencyRegistryDecider);
const TOKEN_DIGEST = sha256('token-of-muroran-city');
const KEY = x25519Key('muroran');

const register: RegisterAgencyData = {
  agencyId: MURORAN,
  name: '室蘭市',
  kind: 'municipality',
  endpoint: 'https://node.muroran.example:8443',
  publicKey: KEY,
  credentialDigest: TOKEN_DIGEST,
  registeredAt: T0,
};

const registered: AgencyRegistered = {
  type: 'AgencyRegistered',
  schemaVersion: 1,
  data: { ...register, agencyId: MURORAN, kind: 'municipality', credentialDigest: TOKEN_DIGEST },
  terminal: 'completed',
  claims: [agencyCredentialClaim(TOKEN_DIGEST)],
};

describe('RegisterAgency', () => {
  test('given nothing, when Muroran City registers, then AgencyRegistered with a claim on its credential digest', () => {
    spec.given([]).when({ type: 'RegisterAgency', data: register }).then([registered]);
    expect(agencyStreamId(MURORAN)).toBe('agency-muroran-city');
    expect(registered.claims).toEqual([`agency-credential:${TOKEN_DIGEST}`]);
  });

  test('given a registered agency, registering again is AGENCY_ALREADY_REGISTERED', () => {
    spec.given([registered]).when({ type: 'RegisterAgency', data: register }).thenFails('AGENCY_ALREADY_REGISTERED', /already registered/);
  });

  test('an unknown kind is UNKNOWN_AGENCY_KIND and names the known kinds', () => {
    spec.given([]).when({ type: 'RegisterAgency', data: { ...register, kind: 'ministry' } }).thenFails('UNKNOWN_AGENCY_KIND', /municipality, prefecture, pension-service/);
  });

  const invalid: readonly [string, Partial<RegisterAgencyData>, string][] = [
    ['an agency id with capitals', { agencyId: 'Muroran' }, 'INVALID_AGENCY_ID'],
    ['an empty name', { name: '' }, 'INVALID_NAME'],
    ['a name with a line break', { name: '室蘭\n市' }, 'INVALID_NAME'],
    ['a name of zero-width spaces only', { name: '\u200b\u200b' }, 'INVALID_NAME'],
    ['a name with an unpaired surrogate', { name: '室蘭\ud800' }, 'INVALID_NAME'],
    ['an endpoint that is not a URL', { endpoint: 'node.muroran' }, 'INVALID_ENDPOINT'],
    ['an ftp endpoint', { endpoint: 'ftp://node.muroran.example' }, 'INVALID_ENDPOINT'],
    ['an endpoint with user info', { endpoint: 'https://admin:secret@node.muroran.example' }, 'INVALID_ENDPOINT'],
    ['a public key of 31 bytes', { publicKey: KEY.slice(0, 42) }, 'INVALID_PUBLIC_KEY'],
    ['a plaintext token instead of its digest', { credentialDigest: 'token-of-muroran-city' }, 'INVALID_CREDENTIAL_DIGEST'],
    ['a bad time', { registeredAt: '2026-04-01' }, 'MALFORMED'],
  ];
  test.each(invalid)('refuses %s', (_name, change, code) => {
    spec.given([]).when({ type: 'RegisterAgency', data: { ...register, ...change } }).thenFails(code as never);
  });

  test('a municipality registered with its code: the code is in the event and the state, and claimed (one agency per code)', () => {
    const withCode = { ...register, municipalityCode: '012050' };
    const [event] = spec.given([]).when({ type: 'RegisterAgency', data: withCode }).thenEvents();
    expect(event).toEqual({ ...registered, data: { ...registered.data, municipalityCode: '012050' }, claims: [agencyCredentialClaim(TOKEN_DIGEST), municipalityAgencyClaim('012050')] });
    expect(agencyRegistryDecider.evolve(agencyRegistryDecider.initialState(), event!)).toMatchObject({ status: 'active', agency: { municipalityCode: '012050' } });
    expect(municipalityAgencyClaim('012050')).toBe('municipality-agency:012050');
  });

  test('a municipality code is refused for another kind of agency, and when it is not 6 digits', () => {
    spec.given([]).when({ type: 'RegisterAgency', data: { ...register, kind: 'hello-work', municipalityCode: '012050' } }).thenFails('MUNICIPALITY_CODE_NOT_ALLOWED', /only a municipality agency/);
    spec.given([]).when({ type: 'RegisterAgency', data: { ...register, municipalityCode: '01205' } }).thenFails('INVALID_MUNICIPALITY_CODE', /6 digits/);
  });

  test('accepts grpc endpoints', () => {
    const [event] = spec.given([]).when({ type: 'RegisterAgency', data: { ...register, endpoint: 'grpcs://node.muroran.example:50051' } }).thenEvents();
    expect(event?.type).toBe('AgencyRegistered');
  });
});

describe('UpdateAgency', () => {
  test('records only what changed', () => {
    spec
      .given([registered])
      .when({ type: 'UpdateAgency', data: { name: '室蘭市', endpoint: 'https://node2.muroran.example', updatedAt: T1 } })
      .then([{ type: 'AgencyUpdated', schemaVersion: 1, data: { agencyId: MURORAN, changes: { endpoint: 'https://node2.muroran.example' }, updatedAt: T1 }, terminal: 'completed' }]);
  });

  test('an update that changes nothing is NOTHING_TO_UPDATE', () => {
    spec.given([registered]).when({ type: 'UpdateAgency', data: { name: '室蘭市', updatedAt: T1 } }).thenFails('NOTHING_TO_UPDATE');
  });

  test('an unregistered agency cannot be updated: AGENCY_NOT_REGISTERED', () => {
    spec.given([]).when({ type: 'UpdateAgency', data: { name: '室蘭', updatedAt: T1 } }).thenFails('AGENCY_NOT_REGISTERED');
  });

  test('the state carries the new values', () => {
    const state = spec.given([registered, { type: 'AgencyUpdated', data: { agencyId: MURORAN, changes: { publicKey: x25519Key('new') }, updatedAt: T1 } }]).state;
    expect(state).toMatchObject({ status: 'active', agency: { publicKey: x25519Key('new'), name: '室蘭市', updatedAt: T1 } });
  });
});

describe('RotateAgencyCredential', () => {
  const next = sha256('a fresh token');
  test('records the new digest and claims it', () => {
    spec
      .given([registered])
      .when({ type: 'RotateAgencyCredential', data: { credentialDigest: next, rotatedAt: T1 } })
      .then([{ type: 'AgencyCredentialRotated', schemaVersion: 1, data: { agencyId: MURORAN, credentialDigest: next, rotatedAt: T1 }, terminal: 'completed', claims: [agencyCredentialClaim(next)] }]);
  });

  test('the same token again is CREDENTIAL_UNCHANGED', () => {
    spec.given([registered]).when({ type: 'RotateAgencyCredential', data: { credentialDigest: TOKEN_DIGEST, rotatedAt: T1 } }).thenFails('CREDENTIAL_UNCHANGED');
  });

  test('after rotation the facts carry the new digest', () => {
    const state = spec.given([registered, { type: 'AgencyCredentialRotated', data: { agencyId: MURORAN, credentialDigest: next, rotatedAt: T1 } }]).state;
    expect(agencyFacts(state)).toEqual({ agencyId: MURORAN, kind: 'municipality', status: 'active', credentialDigest: next });
  });
});

describe('RevokeAgency', () => {
  const revoked = { type: 'AgencyRevoked' as const, schemaVersion: 1 as const, data: { agencyId: MURORAN, reason: '合併により廃止', revokedAt: T2 }, terminal: 'completed' as const };

  test('records the reason', () => {
    spec.given([registered]).when({ type: 'RevokeAgency', data: { reason: '合併により廃止', revokedAt: T2 } }).then([revoked]);
  });

  test('a revoked agency cannot be changed, revoked again or registered again', () => {
    spec.given([registered, revoked]).when({ type: 'UpdateAgency', data: { name: '新室蘭市', updatedAt: T2 } }).thenFails('AGENCY_REVOKED', /register a new agency id/);
    spec.given([registered, revoked]).when({ type: 'RevokeAgency', data: { reason: 'again', revokedAt: T2 } }).thenFails('AGENCY_REVOKED');
    spec.given([registered, revoked]).when({ type: 'RegisterAgency', data: register }).thenFails('AGENCY_ALREADY_REGISTERED');
  });

  test('a reason with nothing visible, or not well-formed, is MALFORMED and says what to fix', () => {
    spec.given([registered]).when({ type: 'RevokeAgency', data: { reason: ' ', revokedAt: T2 } }).thenFails('MALFORMED', /reason must not be empty or only white space/);
    spec.given([registered]).when({ type: 'RevokeAgency', data: { reason: ' 合併 ', revokedAt: T2 } }).thenFails('MALFORMED', /reason must not begin or end with white space; trim it/);
    spec.given([registered]).when({ type: 'RevokeAgency', data: { reason: '\u200b\u2060', revokedAt: T2 } }).thenFails('MALFORMED', /reason must not be empty or only white space or invisible characters/);
    spec.given([registered]).when({ type: 'RevokeAgency', data: { reason: '\udfff', revokedAt: T2 } }).thenFails('MALFORMED', /reason must be well-formed Unicode/);
  });

  test('facts say revoked; an unregistered agency has no facts', () => {
    expect(agencyFacts(spec.given([registered, revoked]).state)?.status).toBe('revoked');
    expect(agencyFacts(spec.given([]).state)).toBeUndefined();
  });
});
