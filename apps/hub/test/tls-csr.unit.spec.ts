import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { acceptCsr } from '../src/tls/csr.js';
import { agencyRequest, withBrokenSignature } from './support/csr.js';

/** The problem acceptCsr throws, as code and detail. */
async function refusal(pem: string): Promise<{ code: string; message: string }> {
  try {
    await acceptCsr(pem);
  } catch (error) {
    return { code: (error as { code: string }).code, message: (error as Error).message };
  }
  throw new Error('the CSR was accepted');
}

describe('acceptCsr: an agency\'s certificate signing request (PKCS#10)', () => {
  it('accepts an ECDSA P-256 request signed by its key, and gives its public key (SPKI)', async () => {
    const request = await agencyRequest('P-256');
    expect(Buffer.from((await acceptCsr(request.csr)).spki).toString('base64')).toBe(request.spki);
  });

  it('accepts the request with CRLF line ends, surrounding white space, and under the older NEW CERTIFICATE REQUEST label', async () => {
    const { csr, spki } = await agencyRequest('P-256');
    expect(Buffer.from((await acceptCsr(`\n  ${csr.replace(/\n/g, '\r\n')}  \n`)).spki).toString('base64')).toBe(spki);
    expect(Buffer.from((await acceptCsr(csr.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST'))).spki).toString('base64')).toBe(spki);
  });

  it('ignores what the request asks for beyond its key (subject, extensions): accepted, only the key is taken', async () => {
    const request = await agencyRequest('P-256', { name: 'CN=pension-service, O=someone else', extensions: [new x509.BasicConstraintsExtension(true, 5, true), new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'hub.example' }])] });
    expect(Object.keys(await acceptCsr(request.csr))).toEqual(['spki']);
  });

  it('CSR_MALFORMED: not PEM, two requests, a certificate, base64 that is not a PKCS#10', async () => {
    const { csr } = await agencyRequest('P-256');
    for (const bad of ['hello', '', csr.replace(/-----END CERTIFICATE REQUEST-----/, ''), `${csr}${csr}`, `${csr}trailing text`, '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', '-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n', csr.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE')]) {
      expect((await refusal(bad)).code, JSON.stringify(bad)).toBe('CSR_MALFORMED');
    }
  });

  it('CSR_SIGNATURE_INVALID: a well-formed request whose signature does not verify with its own key (no proof of possession)', async () => {
    const { csr } = await agencyRequest('P-256');
    expect(await refusal(withBrokenSignature(csr))).toEqual({ code: 'CSR_SIGNATURE_INVALID', message: expect.stringMatching(/does not verify/) });
  });

  it('CSR_KEY_NOT_ACCEPTED: RSA of any size (1024 too small, 2048 and 3072 not ECDSA), P-384, Ed25519, each named in the detail', async () => {
    for (const [kind, named] of [['RSA-1024', 'RSA 1024'], ['RSA-2048', 'RSA 2048'], ['RSA-3072', 'RSA 3072'], ['P-384', 'ECDSA P-384'], ['Ed25519', 'Ed25519']] as const) {
      const { csr } = await agencyRequest(kind);
      expect(await refusal(csr), kind).toEqual({ code: 'CSR_KEY_NOT_ACCEPTED', message: `csr: the request's key is ${named}; the hub certifies ECDSA P-256 keys only` });
    }
  }, 30_000);

  it('CSR_KEY_NOT_ACCEPTED: a P-256 key signing with SHA-1', async () => {
    const { csr } = await agencyRequest('P-256', { hash: 'SHA-1' });
    expect(await refusal(csr)).toEqual({ code: 'CSR_KEY_NOT_ACCEPTED', message: expect.stringMatching(/signed with ECDSA and SHA-1/) });
  });
});
