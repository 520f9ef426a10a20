import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { CA_CERT_FILE } from '../src/tls/hub-ca.js';
import { agencyRequest, spkiOfCertificate, withBrokenSignature } from './support/csr.js';
import { issuePerson } from './support/linkage-fixture.js';
import { startTestHub, type TestHub } from './support/test-hub.js';
import { httpsSend as send, type HttpsAnswer as Answer, type Presenting } from './support/https-post.js';


interface IssuedAnswer {
  readonly fingerprint: string;
  readonly certificatePem: string;
  readonly privateKeyPem?: string;
  readonly caCertificatePem: string;
  readonly keyOrigin: string;
}

describe('certificate signing requests (HUB_TLS=on): the agency keeps its key, the hub certifies it', () => {
  let hub: TestHub;
  let port: number;
  let ca: string;
  let operator: Presenting;
  let individualNumber: string;

  const post = (path: string, body: unknown, who: Presenting): Promise<Answer> => send(port, ca, 'POST', path, body, who);
  const get = (path: string): Promise<Answer> => send(port, ca, 'GET', path, undefined, {});

  async function registration(agencyId: string, extra: Record<string, unknown>): Promise<Answer> {
    const keys = await generateAnswerKeyPair();
    return post('/v1/agencies', { agencyId, name: `${agencyId} (test)`, kind: 'municipality', endpoint: 'https://localhost:1', publicKey: keys.publicKey, ...extra }, operator);
  }

  /** The events appended since `from`, by type. */
  async function typesSince(from: number): Promise<string[]> {
    return (await hub.store.readAll({ fromPosition: from })).map((e) => e.type);
  }

  async function refusalsSince(from: number): Promise<{ reason: unknown; command: unknown }[]> {
    return (await hub.ledger.readAll({ fromPosition: from }))
      .filter((e) => e.type === 'RequestRefused')
      .map((e) => ({ reason: (e.data as { reason?: unknown }).reason, command: (e.data as { command?: unknown }).command }));
  }

  /** An agency call (acquiring a code) with the agency's token and a certificate and key. */
  async function acquires(token: string, cert: string, key: string, acquisitionNumber: string): Promise<number> {
    return (await post('/v1/agency-codes', { individualNumber, acquisitionNumber }, { token, cert, key })).status;
  }

  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_TLS: 'on' } });
    await hub.app.listen({ host: '127.0.0.1', port: 0 });
    port = (hub.app.getHttpServer().address() as { port: number }).port;
    ca = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
    operator = { token: hub.operator['authorization']!.slice('Bearer '.length) };
    individualNumber = (await issuePerson(hub)).individualNumber;
  }, 60_000);

  afterAll(async () => {
    await hub?.dispose();
  });

  it('registration with a CSR: a certificate of the CSR\'s key, no private key in the answer, recorded keyOrigin agency; the agency\'s own key then works for mutual TLS', async () => {
    // The agency asks for more than the hub grants: another subject, a SAN of the hub's name, a CA certificate.
    const own = await agencyRequest('P-256', { name: 'CN=pension-service, O=not me', extensions: [new x509.BasicConstraintsExtension(true, 5, true), new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'hub.example' }])] });
    const res = await registration('csr-city', { csr: own.csr });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const certificate = res.body['certificate'] as IssuedAnswer;
    expect(certificate).not.toHaveProperty('privateKeyPem');
    expect(JSON.stringify(res.body)).not.toMatch(/PRIVATE KEY/);
    expect(certificate.keyOrigin).toBe('agency');
    expect(spkiOfCertificate(certificate.certificatePem)).toBe(own.spki);

    // The hub's subject, SAN and usage, not the CSR's.
    const issued = new X509Certificate(certificate.certificatePem);
    expect(issued.subject).toContain('CN=csr-city');
    expect(issued.subjectAltName).toContain('URI:urn:linkage-ledger:agency:csr-city');
    expect(issued.subjectAltName).not.toContain('hub.example');
    expect(issued.ca).toBe(false);
    expect(issued.checkIssued(new X509Certificate(ca))).toBe(true);

    const events = await hub.store.readStream('agency-certificates-csr-city');
    expect(events.map((e) => [e.type, e.schemaVersion])).toEqual([['AgencyCertificateIssued', 2]]);
    expect(events[0]!.data).toMatchObject({ agencyId: 'csr-city', fingerprint: certificate.fingerprint, occasion: 'registration', keyOrigin: 'agency' });
    expect(((await get('/v1/agencies/csr-city/certificates')).body['certificates'] as unknown[])).toEqual([expect.objectContaining({ fingerprint: certificate.fingerprint, status: 'issued', keyOrigin: 'agency' })]);

    const token = String(res.body['token']);
    expect(await acquires(token, certificate.certificatePem, own.privateKeyPem, 'acq-csr-1')).toBe(201);
    // The certificate with any other key fails the handshake's proof (the client cannot sign for it).
    const stranger = await agencyRequest('P-256');
    await expect(acquires(token, certificate.certificatePem, stranger.privateKeyPem, 'acq-csr-2')).rejects.toThrow();
  });

  it('without a CSR the hub still makes the key and answers it once (keyOrigin hub): the demo path', async () => {
    const res = await registration('keyless-city', {});
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const certificate = res.body['certificate'] as IssuedAnswer;
    expect(certificate.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(certificate.keyOrigin).toBe('hub');
    expect((await hub.store.readStream('agency-certificates-keyless-city'))[0]!.data).toMatchObject({ keyOrigin: 'hub' });
  });

  it.each([
    ['garbage', 'CSR_MALFORMED', async () => 'not a certificate request'],
    ['a PEM block that is no PKCS#10', 'CSR_MALFORMED', async () => '-----BEGIN CERTIFICATE REQUEST-----\nMIIBAA==\n-----END CERTIFICATE REQUEST-----\n'],
    ['a bad signature', 'CSR_SIGNATURE_INVALID', async () => withBrokenSignature((await agencyRequest('P-256')).csr)],
    ['an RSA 1024 key (too small, and not ECDSA)', 'CSR_KEY_NOT_ACCEPTED', async () => (await agencyRequest('RSA-1024')).csr],
    ['an RSA 2048 key (not ECDSA P-256)', 'CSR_KEY_NOT_ACCEPTED', async () => (await agencyRequest('RSA-2048')).csr],
    ['a P-384 key', 'CSR_KEY_NOT_ACCEPTED', async () => (await agencyRequest('P-384')).csr],
  ])('registration with %s: 400 %s, the agency not registered, nothing recorded but the refusal', async (_what, code, make) => {
    const agencyId = `refused-${code.toLowerCase().replaceAll('_', '-')}`;
    const from = await hub.head();
    const res = await registration(agencyId, { csr: await make() });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body).toMatchObject({ code, field: 'csr', type: `https://linkage-ledger.example/problems/${code.toLowerCase().replaceAll('_', '-')}` });
    expect(await typesSince(from)).toEqual(['RequestRefused']);
    expect(await refusalsSince(from)).toEqual([{ reason: code, command: 'RegisterAgency' }]);
    expect((await get(`/v1/agencies/${agencyId}`)).status).toBe(404);
  });

  it('renewal with a CSR: a certificate of the new key (no private key answered); both certificates admit; a bad CSR at renewal issues nothing and is recorded', async () => {
    const first = await agencyRequest('P-256');
    const registered = await registration('renewing-city', { csr: first.csr });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    const token = String(registered.body['token']);
    const firstCertificate = registered.body['certificate'] as IssuedAnswer;

    const next = await agencyRequest('P-256');
    const renewal = await post('/v1/agencies/renewing-city/certificates', { csr: next.csr }, operator);
    expect(renewal.status, JSON.stringify(renewal.body)).toBe(201);
    const renewed = renewal.body as unknown as IssuedAnswer;
    expect(renewed).not.toHaveProperty('privateKeyPem');
    expect(renewed.keyOrigin).toBe('agency');
    expect(spkiOfCertificate(renewed.certificatePem)).toBe(next.spki);
    expect(await acquires(token, renewed.certificatePem, next.privateKeyPem, 'acq-renewed-csr')).toBe(201);
    expect([200, 201]).toContain(await acquires(token, firstCertificate.certificatePem, first.privateKeyPem, 'acq-renewed-csr'));

    const from = await hub.head();
    const bad = await post('/v1/agencies/renewing-city/certificates', { csr: withBrokenSignature((await agencyRequest('P-256')).csr) }, operator);
    expect(bad.status).toBe(400);
    expect(bad.body['code']).toBe('CSR_SIGNATURE_INVALID');
    expect(await refusalsSince(from)).toEqual([{ reason: 'CSR_SIGNATURE_INVALID', command: 'RenewAgencyCertificate' }]);
    expect(await typesSince(from)).toEqual(['RequestRefused']);
    expect(((await get('/v1/agencies/renewing-city/certificates')).body['certificates'] as unknown[])).toHaveLength(2);
  });

  it('renewal without a body, or with {}, is the hub-made key as before; an unknown field or a csr that is not a string is VALIDATION_FAILED', async () => {
    expect((await registration('body-city', { csr: (await agencyRequest('P-256')).csr })).status).toBe(201);
    for (const body of [undefined, {}]) {
      const res = await post('/v1/agencies/body-city/certificates', body, operator);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ keyOrigin: 'hub', privateKeyPem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/) });
    }
    const from = await hub.head();
    for (const body of [{ csr: 42 }, { key: 'x' }]) {
      const res = await post('/v1/agencies/body-city/certificates', body, operator);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body['code']).toBe('VALIDATION_FAILED');
    }
    expect(await typesSince(from)).toEqual(['RequestRefused', 'RequestRefused']);
  });

  it('a CSR from a caller that is not the operator: 403 FORBIDDEN before the CSR is looked at', async () => {
    const agency = await registration('caller-city', {});
    const res = await post('/v1/agencies/caller-city/certificates', { csr: 'garbage' }, { token: String(agency.body['token']) });
    expect(res.status).toBe(403);
    expect(res.body['code']).toBe('FORBIDDEN');
  });
});

describe('HUB_TLS_REQUIRE_CSR=on: the hub never makes an agency key', () => {
  let hub: TestHub;

  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_TLS: 'on', HUB_TLS_REQUIRE_CSR: 'on' } });
  }, 60_000);

  afterAll(async () => {
    await hub?.dispose();
  });

  const registration = async (agencyId: string, extra: Record<string, unknown>) =>
    hub.post('/v1/agencies', { agencyId, name: agencyId, kind: 'municipality', endpoint: 'https://localhost:1', publicKey: (await generateAnswerKeyPair()).publicKey, ...extra }, hub.operator);

  it('registration without a CSR: 400 CSR_REQUIRED, nothing registered, the refusal recorded; with one: registered, no key answered', async () => {
    const from = await hub.head();
    const refused = await registration('required-city', {});
    expect(refused.statusCode, refused.body).toBe(400);
    expect(refused.json()).toMatchObject({ code: 'CSR_REQUIRED', field: 'csr', detail: expect.stringMatching(/HUB_TLS_REQUIRE_CSR=on/) });
    expect((await hub.store.readAll({ fromPosition: from })).map((e) => e.type)).toEqual(['RequestRefused']);
    expect((await hub.get('/v1/agencies/required-city')).statusCode).toBe(404);

    const own = await agencyRequest('P-256');
    const accepted = await registration('required-city', { csr: own.csr });
    expect(accepted.statusCode, accepted.body).toBe(201);
    expect(accepted.json()).toMatchObject({ certificate: { keyOrigin: 'agency' } });
    expect(accepted.body).not.toMatch(/PRIVATE KEY/);
  });

  it('renewal without a CSR (no body, or {}): 400 CSR_REQUIRED, nothing issued; with one: issued', async () => {
    expect((await registration('renew-required-city', { csr: (await agencyRequest('P-256')).csr })).statusCode).toBe(201);
    const from = await hub.head();
    for (const res of [await hub.inject({ method: 'POST', url: '/v1/agencies/renew-required-city/certificates', headers: hub.operator }), await hub.post('/v1/agencies/renew-required-city/certificates', {}, hub.operator)]) {
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toMatchObject({ code: 'CSR_REQUIRED' });
    }
    expect((await hub.store.readAll({ fromPosition: from })).map((e) => e.type)).toEqual(['RequestRefused', 'RequestRefused']);
    const renewed = await hub.post('/v1/agencies/renew-required-city/certificates', { csr: (await agencyRequest('P-256')).csr }, hub.operator);
    expect(renewed.statusCode, renewed.body).toBe(201);
    expect(renewed.json()).toMatchObject({ keyOrigin: 'agency' });
  });
});

describe('the OpenAPI document', () => {
  it('documents csr on registration and renewal (an optional renewal body), keyOrigin, an optional privateKeyPem and the CSR refusals', async () => {
    const hub = await startTestHub();
    try {
      const doc = (await hub.get('/docs/json')).json<{ paths: Record<string, Record<string, { requestBody?: { required?: boolean; content: Record<string, { schema: { $ref: string } }> }; responses: Record<string, { description?: string }> }>>; components: { schemas: Record<string, { properties: Record<string, unknown>; required?: string[] }> } }>();
      const schemas = doc.components.schemas;
      expect(schemas['RegisterAgencyRequest']!.properties).toHaveProperty('csr');
      expect(schemas['RegisterAgencyRequest']!.required).not.toContain('csr');
      const renewal = doc.paths['/v1/agencies/{agencyId}/certificates']!['post']!;
      expect(renewal.requestBody?.required).toBe(false);
      expect(renewal.requestBody?.content['application/json']?.schema.$ref).toBe('#/components/schemas/RenewAgencyCertificateRequest');
      expect(schemas['IssuedCertificateResponse']!.required).toContain('keyOrigin');
      expect(schemas['IssuedCertificateResponse']!.required).not.toContain('privateKeyPem');
      for (const operation of [doc.paths['/v1/agencies']!['post']!, renewal]) {
        for (const code of ['CSR_MALFORMED', 'CSR_KEY_NOT_ACCEPTED', 'CSR_SIGNATURE_INVALID', 'CSR_REQUIRED']) expect(operation.responses['400']?.description).toContain(code);
        expect(operation.responses['409']?.description).toContain('TLS_NOT_ENABLED');
      }
    } finally {
      await hub.dispose();
    }
  });
});

describe('a CSR sent to a hub on HUB_TLS=off', () => {
  it('is refused 409 TLS_NOT_ENABLED before the agency is registered (the hub issues no certificates)', async () => {
    const hub = await startTestHub({ env: { HUB_TLS: 'off' } });
    try {
      const from = await hub.head();
      const res = await hub.post('/v1/agencies', { agencyId: 'plain-city', name: 'plain', kind: 'municipality', endpoint: 'http://localhost:1', publicKey: (await generateAnswerKeyPair()).publicKey, csr: (await agencyRequest('P-256')).csr }, hub.operator);
      expect(res.statusCode, res.body).toBe(409);
      expect(res.json()).toMatchObject({ code: 'TLS_NOT_ENABLED' });
      expect((await hub.store.readAll({ fromPosition: from })).map((e) => e.type)).toEqual(['RequestRefused']);
    } finally {
      await hub.dispose();
    }
  });
});
