import { describe, expect, test } from 'vitest';
import { agencyCertificatesDecider, type AgencyCertificateEvent } from '../src/tls/agency-certificates.js';
import { schemaValidator } from '../../../test/support/json-schema.js';

const FP = 'a'.repeat(64);
const FP2 = 'b'.repeat(64);
const AT = '2026-12-05T06:00:00.000Z';
const certificate = (fingerprint: string) => ({ serialNumber: '0f'.repeat(16), fingerprint, notBefore: '2026-12-05T05:59:00.000Z', notAfter: '2027-12-05T06:00:00.000Z' });
const issued = (fingerprint: string): AgencyCertificateEvent => ({ type: 'AgencyCertificateIssued', data: { agencyId: 'muroran-city', ...certificate(fingerprint), occasion: 'registration', issuedAt: AT } });
const given = (...events: AgencyCertificateEvent[]) => events.reduce(agencyCertificatesDecider.evolve, agencyCertificatesDecider.initialState());
const issuedSchemaV1 = schemaValidator('schemas/events/agency-certificate-issued.v1.json');
const issuedSchema = schemaValidator('schemas/events/agency-certificate-issued.v2.json');
const revokedSchema = schemaValidator('schemas/events/agency-certificate-revoked.v1.json');

describe('an agency\'s certificates (decider)', () => {
  test('given an active agency, when a certificate is issued, then AgencyCertificateIssued (public fields only, schema v2 with who made the key), ending the serial', () => {
    for (const keyOrigin of ['agency', 'hub'] as const) {
      const events = agencyCertificatesDecider.decide('muroran-city', { type: 'IssueAgencyCertificate', agencyActive: true, certificate: certificate(FP), occasion: 'renewal', keyOrigin, at: AT }, given());
      expect(events).toEqual([{ type: 'AgencyCertificateIssued', schemaVersion: 2, data: { agencyId: 'muroran-city', ...certificate(FP), occasion: 'renewal', issuedAt: AT, keyOrigin }, terminal: 'completed' }]);
      expect(issuedSchema(events[0]!.data)).toMatchObject({ valid: true });
      expect(events.reduce(agencyCertificatesDecider.evolve, given()).certificates.get(FP)?.keyOrigin).toBe(keyOrigin);
    }
  });

  test('a v1 event (before certificate signing requests) reads as a key the hub made; v2 requires keyOrigin', () => {
    expect(issuedSchemaV1(issued(FP).data)).toMatchObject({ valid: true });
    expect(given(issued(FP)).certificates.get(FP)?.keyOrigin).toBe('hub');
    expect(issuedSchema(issued(FP).data).valid).toBe(false);
    expect(issuedSchema({ ...issued(FP).data, keyOrigin: 'someone' }).valid).toBe(false);
  });

  test('given a revoked agency, when a certificate is asked for, then AGENCY_REVOKED', () => {
    expect(() => agencyCertificatesDecider.decide('muroran-city', { type: 'IssueAgencyCertificate', agencyActive: false, certificate: certificate(FP), occasion: 'renewal', keyOrigin: 'agency', at: AT }, given())).toThrow(expect.objectContaining({ code: 'AGENCY_REVOKED' }));
  });

  test('given two certificates, when one is revoked, then AgencyCertificateRevoked of it (schema v1) and the other stays issued', () => {
    const state = given(issued(FP), issued(FP2));
    const events = agencyCertificatesDecider.decide('muroran-city', { type: 'RevokeAgencyCertificate', fingerprint: FP, reason: 'key lost', at: AT }, state);
    expect(events).toEqual([{ type: 'AgencyCertificateRevoked', schemaVersion: 1, data: { agencyId: 'muroran-city', serialNumber: '0f'.repeat(16), fingerprint: FP, reason: 'key lost', revokedAt: AT }, terminal: 'completed' }]);
    expect(revokedSchema(events[0]!.data)).toMatchObject({ valid: true });
    const after = events.reduce(agencyCertificatesDecider.evolve, state);
    expect(after.certificates.get(FP)?.status).toBe('revoked');
    expect(after.certificates.get(FP2)?.status).toBe('issued');
  });

  test('a certificate revoked already, or never issued: CERTIFICATE_ALREADY_REVOKED, CERTIFICATE_NOT_FOUND', () => {
    const revoked = given(issued(FP), { type: 'AgencyCertificateRevoked', data: { agencyId: 'muroran-city', serialNumber: '0f'.repeat(16), fingerprint: FP, reason: 'key lost', revokedAt: AT } });
    expect(() => agencyCertificatesDecider.decide('muroran-city', { type: 'RevokeAgencyCertificate', fingerprint: FP, reason: 'again', at: AT }, revoked)).toThrow(expect.objectContaining({ code: 'CERTIFICATE_ALREADY_REVOKED' }));
    expect(() => agencyCertificatesDecider.decide('muroran-city', { type: 'RevokeAgencyCertificate', fingerprint: FP2, reason: 'x', at: AT }, revoked)).toThrow(expect.objectContaining({ code: 'CERTIFICATE_NOT_FOUND' }));
  });

  test('the schemas refuse a field the events never carry (nothing private rides along)', () => {
    expect(issuedSchemaV1({ ...issued(FP).data, privateKeyPem: '-----BEGIN PRIVATE KEY-----' }).valid).toBe(false);
    expect(issuedSchema({ ...issued(FP).data, keyOrigin: 'hub', privateKeyPem: '-----BEGIN PRIVATE KEY-----' }).valid).toBe(false);
    expect(issuedSchema({ ...issued(FP).data, keyOrigin: 'agency', csr: '-----BEGIN CERTIFICATE REQUEST-----' }).valid).toBe(false);
  });
});
