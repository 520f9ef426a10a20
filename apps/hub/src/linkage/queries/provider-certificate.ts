import type { CertificateRecord } from '../../tls/agency-certificates.js';
import { agencyIdOfCertificate, certificateFingerprint } from '../../tls/hub-ca.js';

/**
 * Why the hub refused to call an intermediate server (HUB_TLS=on): the certificate it presented is not one
 * the log records as issued to the agency its endpoint is registered for and not revoked.
 */
export type ProviderCertificateRefusal = 'revoked' | 'another-agency' | 'not-recorded' | 'none';

/** What the requester is told of each refusal: the cause in words, nothing of the person, no address. */
export const PROVIDER_CERTIFICATE_CAUSES: Readonly<Record<ProviderCertificateRefusal, string>> = {
  revoked: 'the providing agency\'s intermediate server presented a certificate that is revoked (AgencyCertificateRevoked); the hub does not call it until it serves a renewed one',
  'another-agency': 'the providing agency\'s intermediate server presented a certificate issued to another agency, not to the agency its endpoint is registered for; the hub does not call it',
  'not-recorded': 'the providing agency\'s intermediate server presented a certificate naming the agency that the log records no issuance of; the hub does not call it',
  none: 'the providing agency\'s intermediate server presented no certificate; the hub does not call it',
};

export interface CertificateRefusal {
  readonly kind: ProviderCertificateRefusal;
  /** For the operator (the hub's log): names the certificate's fingerprint and agencies. */
  readonly message: string;
}

/**
 * Whether a server's certificate (DER) may be called for `agencyId`: it names the agency (SAN URI) and,
 * given the log's records, is recorded and not revoked. The same rule as the https calls (SignedPoster).
 */
export function certificateRefusal(raw: Buffer | undefined, agencyId: string, records: ReadonlyMap<string, CertificateRecord> | undefined): CertificateRefusal | undefined {
  if (raw === undefined || raw.length === 0) return { kind: 'none', message: `the intermediate server presented no certificate, but the endpoint is registered for agency ${agencyId}` };
  const holder = agencyIdOfCertificate(raw);
  if (holder !== agencyId) {
    return { kind: 'another-agency', message: `the intermediate server's certificate is ${holder === undefined ? 'no agency\'s' : `agency ${holder}'s`}, but the endpoint is registered for agency ${agencyId}` };
  }
  if (records === undefined) return undefined;
  const fingerprint = certificateFingerprint(raw);
  const record = records.get(fingerprint);
  if (record === undefined) return { kind: 'not-recorded', message: `the intermediate server's certificate ${fingerprint} names agency ${agencyId}, but the log records no such certificate issued to it (CERTIFICATE_NOT_FOUND)` };
  if (record.status === 'revoked') return { kind: 'revoked', message: `the intermediate server's certificate ${fingerprint} of agency ${agencyId} is revoked (AgencyCertificateRevoked): the hub does not call it (CERTIFICATE_REVOKED)` };
  return undefined;
}

/**
 * The refusal an https call's failure stands for, read from SignedPoster's refusal texts (the same
 * sentences as certificateRefusal's; docs/tls.md lists them), or undefined for any other failure.
 */
export function refusalOfDetail(detail: string): ProviderCertificateRefusal | undefined {
  if (!detail.startsWith('the intermediate server')) return undefined;
  if (detail.includes('(CERTIFICATE_REVOKED)')) return 'revoked';
  if (detail.includes('(CERTIFICATE_NOT_FOUND)')) return 'not-recorded';
  if (detail.includes('presented no certificate')) return 'none';
  if (detail.includes('but the endpoint is registered for agency')) return 'another-agency';
  return undefined;
}
