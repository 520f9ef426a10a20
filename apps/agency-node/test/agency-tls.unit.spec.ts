import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { AgencyConfigError, loadAgencyConfig } from '../src/config/agency-config.js';
import { certificateRequest, loadOrCreateTlsKey } from '../src/keys/tls-key.js';

const base = { AGENCY_ID: 'muroran-city', AGENCY_DATA_DIR: 'data/agency', AGENCY_HUB_URL: 'https://127.0.0.1:8080', AGENCY_TOKEN: 'tok-123' };
const PEM = (what: string) => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;
const issued = { certificatePem: PEM('CERTIFICATE'), privateKeyPem: PEM('PRIVATE KEY'), caCertificatePem: PEM('CERTIFICATE'), fingerprint: 'f'.repeat(64) };

function load(env: Record<string, string>, files: Record<string, string>) {
  return loadAgencyConfig(env, {
    needsHub: true,
    cwd: '/srv',
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return text;
    },
  });
}

describe('AGENCY_TLS_FILE (mutual TLS with the hub)', () => {
  test('unset: plain HTTP, no certificate', () => {
    expect(load(base, {}).tls).toBeUndefined();
  });

  test('the registration\'s certificate, key and CA, read from the file (relative to the working directory)', () => {
    expect(load({ ...base, AGENCY_TLS_FILE: 'data/agency/hub-tls.json' }, { '/srv/data/agency/hub-tls.json': JSON.stringify(issued) }).tls).toEqual({
      certificatePem: issued.certificatePem,
      privateKeyPem: issued.privateKeyPem,
      caCertificatePem: issued.caCertificatePem,
    });
  });

  test('a missing file or one without the three PEMs is refused, naming the variable', () => {
    expect(() => load({ ...base, AGENCY_TLS_FILE: 'nope.json' }, {})).toThrow(AgencyConfigError);
    expect(() => load({ ...base, AGENCY_TLS_FILE: 'nope.json' }, {})).toThrow(/AGENCY_TLS_FILE: cannot read nope.json as JSON \(ENOENT\)/);
    expect(() => load({ ...base, AGENCY_TLS_FILE: 't.json' }, { '/srv/t.json': JSON.stringify({ certificatePem: issued.certificatePem }) })).toThrow(/AGENCY_TLS_FILE: t.json must hold certificatePem and caCertificatePem \(PEM\), and privateKeyPem unless the certificate is of the node's own key/);
  });
});

describe('AGENCY_TLS_FILE without privateKeyPem: a certificate of the node\'s own key (tls-request, a CSR)', () => {
  const KEY_PATH = '/srv/data/agency/keys/tls-key.pem';

  /** A certificate of `privateKeyPem`'s key (self-signed here: what matters is the key it certifies). */
  async function certificateOf(privateKeyPem: string): Promise<string> {
    const EC = { name: 'ECDSA', namedCurve: 'P-256' };
    const keys = {
      privateKey: await webcrypto.subtle.importKey('pkcs8', createPrivateKey(privateKeyPem).export({ format: 'der', type: 'pkcs8' }), EC, false, ['sign']),
      publicKey: await webcrypto.subtle.importKey('spki', createPublicKey(privateKeyPem).export({ format: 'der', type: 'spki' }), EC, true, ['verify']),
    };
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=muroran-city', notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000), keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never });
    return certificate.toString('pem');
  }

  test('the key is read from keys/tls-key.pem in AGENCY_DATA_DIR when the certificate is of it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agency-tls-'));
    try {
      const key = loadOrCreateTlsKey(join(dir, 'keys'));
      expect(key.created).toBe(true);
      expect(statSync(key.path).mode & 0o777).toBe(0o600);
      expect(loadOrCreateTlsKey(join(dir, 'keys'))).toEqual({ ...key, created: false });
      const certificatePem = await certificateOf(key.privateKeyPem);
      const file = JSON.stringify({ certificatePem, caCertificatePem: issued.caCertificatePem, keyOrigin: 'agency' });
      expect(load({ ...base, AGENCY_TLS_FILE: 't.json' }, { '/srv/t.json': file, [KEY_PATH]: key.privateKeyPem }).tls).toEqual({ certificatePem, privateKeyPem: key.privateKeyPem, caCertificatePem: issued.caCertificatePem });

      // Its CSR (what tls-request prints) is of the same key, signed by it.
      const csr = new x509.Pkcs10CertificateRequest(await certificateRequest('muroran-city', key.privateKeyPem));
      expect(await csr.verify()).toBe(true);
      expect(Buffer.from(csr.publicKey.rawData).equals(createPublicKey(key.privateKeyPem).export({ format: 'der', type: 'spki' }))).toBe(true);
      expect(csr.subject).toBe('CN=muroran-city');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refused, naming the variable: no key file, or a certificate of another key', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const own = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const file = JSON.stringify({ certificatePem: await certificateOf(other), caCertificatePem: issued.caCertificatePem });
    expect(() => load({ ...base, AGENCY_TLS_FILE: 't.json' }, { '/srv/t.json': file })).toThrow(/AGENCY_TLS_FILE: t.json holds no privateKeyPem .* \/srv\/data\/agency\/keys\/tls-key.pem cannot be read \(ENOENT\): make the key and its CSR with tls-request/);
    expect(() => load({ ...base, AGENCY_TLS_FILE: 't.json' }, { '/srv/t.json': file, [KEY_PATH]: own })).toThrow(/AGENCY_TLS_FILE: the certificate in t.json is not of the node's key/);
  });
});
