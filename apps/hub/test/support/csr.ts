import * as x509 from '@peculiar/x509';
import { createPublicKey, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type Key = webcrypto.CryptoKey;
type Signing = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['signingAlgorithm'];

/** What an agency makes on its own side: a key pair (the private key PKCS#8 PEM, never sent) and a CSR of it. */
export interface AgencyRequest {
  readonly csr: string;
  readonly privateKeyPem: string;
  /** SPKI DER of the key, base64: what the certificate must hold. */
  readonly spki: string;
}

export type KeyKind = 'P-256' | 'P-384' | 'RSA-1024' | 'RSA-2048' | 'RSA-3072' | 'Ed25519';

/** The CSR's subject and requested extensions: what the hub must ignore. */
export interface Asking {
  readonly name?: string;
  readonly hash?: 'SHA-1' | 'SHA-256' | 'SHA-384';
  readonly extensions?: x509.Extension[];
}

async function keyPair(kind: KeyKind): Promise<{ keys: { publicKey: Key; privateKey: Key }; signing: Record<string, unknown> }> {
  if (kind === 'P-256' || kind === 'P-384') {
    const algorithm = { name: 'ECDSA', namedCurve: kind };
    return { keys: (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as { publicKey: Key; privateKey: Key }, signing: { name: 'ECDSA', hash: kind === 'P-256' ? 'SHA-256' : 'SHA-384' } };
  }
  if (kind === 'Ed25519') return { keys: (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as { publicKey: Key; privateKey: Key }, signing: { name: 'Ed25519' } };
  const algorithm = { name: 'RSASSA-PKCS1-v1_5', modulusLength: Number(kind.slice(4)), publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  return { keys: (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as { publicKey: Key; privateKey: Key }, signing: algorithm };
}

/** A PKCS#10 request made as an agency's tools make it (@peculiar/x509, WebCrypto keys). */
export async function agencyRequest(kind: KeyKind = 'P-256', asking: Asking = {}): Promise<AgencyRequest> {
  const { keys, signing } = await keyPair(kind);
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: asking.name ?? 'CN=muroran-city',
    keys,
    signingAlgorithm: (asking.hash === undefined ? signing : { ...signing, hash: asking.hash }) as Signing,
    ...(asking.extensions === undefined ? {} : { extensions: asking.extensions }),
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  return { csr: request.toString('pem'), privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').trim()}\n-----END PRIVATE KEY-----\n`, spki: spki.toString('base64') };
}

/** The same request with one bit of its signature flipped: still a well-formed PKCS#10, no longer signed by its key. */
export function withBrokenSignature(csr: string): string {
  const der = new Uint8Array(new x509.Pkcs10CertificateRequest(csr).rawData);
  const broken = Buffer.from(der);
  broken[broken.length - 1] = broken[broken.length - 1]! ^ 0x01;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${broken.toString('base64').replace(/(.{64})/g, '$1\n').trim()}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** SPKI DER (base64) of a certificate's public key. */
export function spkiOfCertificate(pem: string): string {
  return createPublicKey(pem).export({ format: 'der', type: 'spki' }).toString('base64');
}
