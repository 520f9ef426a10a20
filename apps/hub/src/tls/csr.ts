import * as x509 from '@peculiar/x509';
import { createPublicKey, webcrypto } from 'node:crypto';
import { HubProblem } from '../http/hub-problem.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The longest CSR the hub reads (a P-256 request is under 600 characters of PEM; the DTO refuses longer). */
export const CSR_MAX_LENGTH = 16_384;

/** The one PEM block of a PKCS#10 request (RFC 7468 §7; `NEW CERTIFICATE REQUEST` is what older tools write), nothing else but white space. */
const CSR_PEM = /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\s]+)-----END \1CERTIFICATE REQUEST-----\s*$/;

/** The signature hashes accepted with the request's ECDSA P-256 key. */
const HASHES = new Set(['SHA-256', 'SHA-384', 'SHA-512']);

/**
 * A certificate signing request the hub accepts: its public key (SPKI DER), proved held by the signer.
 * Nothing else of the request is used: the subject, the requested extensions and any attribute are
 * ignored (the hub decides the certificate's subject, SAN, validity and key usage, as without a CSR).
 */
export interface AcceptedCsr {
  readonly spki: Uint8Array;
}

/**
 * Reads and checks an agency's certificate signing request (PKCS#10, RFC 2986) with @peculiar/x509, in
 * this order: one PEM `CERTIFICATE REQUEST` whose DER parses (else CSR_MALFORMED); an ECDSA P-256 key
 * signing with SHA-256/384/512 (else CSR_KEY_NOT_ACCEPTED, the detail naming what it holds: RSA of any
 * size, other curves, Ed25519 and the rest are refused); its signature verifies with its own key, the
 * proof that the sender holds the private key (else CSR_SIGNATURE_INVALID).
 */
export async function acceptCsr(pem: string): Promise<AcceptedCsr> {
  const match = CSR_PEM.exec(pem);
  if (match === null) throw new HubProblem('CSR_MALFORMED', 'csr must be one PEM block -----BEGIN CERTIFICATE REQUEST----- … -----END CERTIFICATE REQUEST----- (PKCS#10, RFC 2986) and nothing else', { field: 'csr' });
  const der = Buffer.from(match[2]!.replace(/\s+/g, ''), 'base64');
  let request: x509.Pkcs10CertificateRequest;
  let spki: Uint8Array;
  try {
    request = new x509.Pkcs10CertificateRequest(der);
    spki = new Uint8Array(request.publicKey.rawData);
  } catch {
    throw new HubProblem('CSR_MALFORMED', 'csr: the PEM block does not hold a PKCS#10 certification request (its DER does not parse)', { field: 'csr' });
  }
  const key = describeKey(spki);
  if (key !== 'ECDSA P-256') throw new HubProblem('CSR_KEY_NOT_ACCEPTED', `csr: the request's key is ${key}; the hub certifies ECDSA P-256 keys only`, { field: 'csr', key });
  let hash: string | undefined;
  try {
    const algorithm = request.signatureAlgorithm as { name?: string; hash?: { name?: string } };
    hash = algorithm.name === 'ECDSA' ? algorithm.hash?.name : undefined;
  } catch {
    hash = undefined;
  }
  if (hash === undefined || !HASHES.has(hash)) throw new HubProblem('CSR_KEY_NOT_ACCEPTED', `csr: the request is signed ${hash === undefined ? 'with an algorithm other than ECDSA' : `with ECDSA and ${hash}`}; the hub accepts ECDSA with SHA-256, SHA-384 or SHA-512`, { field: 'csr', key });
  let verified: boolean;
  try {
    verified = await request.verify();
  } catch {
    verified = false;
  }
  if (!verified) throw new HubProblem('CSR_SIGNATURE_INVALID', 'csr: the request\'s signature does not verify with the public key it holds: it does not prove that the sender holds the private key', { field: 'csr' });
  return { spki };
}

/** `ECDSA P-256`, `RSA 2048`, `Ed25519`, … of an SPKI, by Node's own key parser. */
function describeKey(spki: Uint8Array): string {
  let key: ReturnType<typeof createPublicKey>;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    return 'of a kind the hub does not know';
  }
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[details.namedCurve ?? ''] ?? details.namedCurve ?? 'of an unnamed curve';
      return `ECDSA ${curve}`;
    }
    case 'rsa':
    case 'rsa-pss':
      return `${key.asymmetricKeyType === 'rsa' ? 'RSA' : 'RSA-PSS'} ${details.modulusLength ?? '?'}`;
    case 'ed25519':
      return 'Ed25519';
    case 'ed448':
      return 'Ed448';
    default:
      return key.asymmetricKeyType ?? 'of a kind the hub does not know';
  }
}

/** CSR_REQUIRED: HUB_TLS_REQUIRE_CSR=on and the request carries no certificate signing request. */
export function csrRequired(): HubProblem {
  return new HubProblem('CSR_REQUIRED', 'the hub runs with HUB_TLS_REQUIRE_CSR=on: it makes no agency keys; send csr, a PKCS#10 request signed by the agency\'s own ECDSA P-256 key (docs/tls.md)', { field: 'csr' });
}
