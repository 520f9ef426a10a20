import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CertificateRecord } from '../src/tls/agency-certificates.js';
import { certificateFingerprint, foreignCertificate } from '../src/tls/hub-ca.js';
import { PROVIDER_CERTIFICATE_CAUSES, certificateRefusal, refusalOfDetail } from '../src/linkage/queries/provider-certificate.js';

/** The check of an intermediate server's certificate on the grpcs path, and the cause the requester is told on both paths. */
describe('an intermediate server\'s certificate, checked for its registered agency', () => {
  let raw: Buffer;
  let fingerprint: string;
  const record = (status: CertificateRecord['status']): ReadonlyMap<string, CertificateRecord> =>
    new Map([[fingerprint, { agencyId: 'muroran-city', serialNumber: '01', fingerprint, notBefore: '2026-01-01T00:00:00Z', notAfter: '2027-01-01T00:00:00Z', status }]]);

  beforeAll(async () => {
    raw = new X509Certificate((await foreignCertificate('muroran-city')).certificatePem).raw;
    fingerprint = certificateFingerprint(raw);
  });

  it('the registered agency\'s certificate, recorded and issued, is called; without the log\'s records the SAN alone is checked', () => {
    expect(certificateRefusal(raw, 'muroran-city', record('issued'))).toBeUndefined();
    expect(certificateRefusal(raw, 'muroran-city', undefined)).toBeUndefined();
  });

  it('each refusal has its kind, and the texts of either path are read back to the same kind', () => {
    const cases = [
      [certificateRefusal(raw, 'date-city', record('issued')), 'another-agency'],
      [certificateRefusal(raw, 'muroran-city', new Map()), 'not-recorded'],
      [certificateRefusal(raw, 'muroran-city', record('revoked')), 'revoked'],
      [certificateRefusal(undefined, 'muroran-city', record('issued')), 'none'],
    ] as const;
    for (const [refusal, kind] of cases) {
      expect(refusal?.kind).toBe(kind);
      expect(refusalOfDetail(refusal!.message)).toBe(kind);
    }
    // SignedPoster's wording of a kept-alive connection without a certificate.
    expect(refusalOfDetail('the intermediate server presented no certificate on this connection, but the endpoint is registered for agency muroran-city')).toBe('none');
  });

  it('other failures tell the requester nothing more; no cause names a fingerprint, an address or a person', () => {
    for (const detail of ['connect ECONNREFUSED 127.0.0.1:4001', 'gRPC UNAVAILABLE: No connection established', 'Hostname/IP does not match certificate\'s altnames', 'no answer within 5000 ms']) {
      expect(refusalOfDetail(detail)).toBeUndefined();
    }
    for (const cause of Object.values(PROVIDER_CERTIFICATE_CAUSES)) {
      expect(cause).not.toMatch(/[0-9a-f]{16}|\d+\.\d+\.\d+\.\d+|localhost/);
    }
  });
});
