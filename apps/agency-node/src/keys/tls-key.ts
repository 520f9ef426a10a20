import * as x509 from '@peculiar/x509';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { join } from 'node:path';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The node's own TLS key (ECDSA P-256, PKCS#8 PEM, mode 0600) in its keys directory: it never leaves the node. */
export const TLS_KEY_FILE = 'tls-key.pem';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/**
 * The node's TLS private key, made at first use (created exclusively: two processes never overwrite each
 * other's). Its certificate comes from the hub, which certifies the public key of the CSR
 * `certificateRequest` makes from it: the hub never holds the key.
 */
export function loadOrCreateTlsKey(keysDir: string): { readonly path: string; readonly privateKeyPem: string; readonly created: boolean } {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const path = join(keysDir, TLS_KEY_FILE);
  let created = false;
  try {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(path, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { mode: 0o600, flag: 'wx' });
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const privateKeyPem = readFileSync(path, 'utf8');
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error(`${path} is not an ECDSA P-256 private key (PKCS#8 PEM): the hub certifies P-256 keys only`);
  return { path, privateKeyPem, created };
}

/**
 * A certificate signing request (PKCS#10, PEM) for the key, signed by it (ECDSA with SHA-256): what the
 * operator sends the hub as `csr` at registration or renewal. Its subject names the agency; the hub
 * ignores it and sets the certificate's subject and SAN itself.
 */
export async function certificateRequest(agencyId: string, privateKeyPem: string): Promise<string> {
  const privateKey = await webcrypto.subtle.importKey('pkcs8', createPrivateKey(privateKeyPem).export({ format: 'der', type: 'pkcs8' }), EC, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', createPublicKey(privateKeyPem).export({ format: 'der', type: 'spki' }), EC, true, ['verify']);
  const request = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${agencyId}`, keys: { privateKey, publicKey }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['signingAlgorithm'] });
  return request.toString('pem');
}

/** Whether `certificatePem` certifies the public key of `privateKeyPem`. */
export function certifiesKey(certificatePem: string, privateKeyPem: string): boolean {
  try {
    const certified = createPublicKey(certificatePem).export({ format: 'der', type: 'spki' });
    const own = createPublicKey(privateKeyPem).export({ format: 'der', type: 'spki' });
    return certified.equals(own);
  } catch {
    return false;
  }
}
