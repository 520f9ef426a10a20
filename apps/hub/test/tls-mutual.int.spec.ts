import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordedEvent } from '#ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { CA_CERT_FILE, foreignCertificate, issueForTest } from '../src/tls/hub-ca.js';
import { startTestHub, type TestHub } from './support/test-hub.js';
import { issuePerson } from './support/linkage-fixture.js';
import { httpsGet, httpsPost as post, type HttpsAnswer as Answer, type Presenting } from './support/https-post.js';

interface RegisteredAgency {
  readonly agencyId: string;
  readonly token: string;
  readonly certificate: { readonly fingerprint: string; readonly certificatePem: string; readonly privateKeyPem: string; readonly caCertificatePem: string };
}

describe('mutual TLS at the HTTP edge (HUB_TLS=on): the refusal matrix', () => {
  let hub: TestHub;
  let port: number;
  let ca: string;
  let operator: Presenting;
  let pension: RegisteredAgency;
  let muroran: RegisteredAgency;
  let individualNumber: string;

  async function register(agencyId: string, kind: string): Promise<RegisteredAgency> {
    const keys = await generateAnswerKeyPair();
    const res = await post(port, ca, '/v1/agencies', { agencyId, name: `${agencyId} (test)`, kind, endpoint: 'https://localhost:1', publicKey: keys.publicKey }, operator);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as unknown as RegisteredAgency;
  }

  /** The refusals recorded since `from`: RequestRefused events, their reason and agency. */
  async function refusalsSince(from: number): Promise<{ reason: unknown; agencyId: unknown; command: unknown }[]> {
    return (await hub.ledger.readAll({ fromPosition: from }))
      .filter((e) => e.type === 'RequestRefused')
      .map((e) => {
        const d = e.data as { reason?: unknown; agencyId?: unknown; command?: unknown };
        return { reason: d.reason, agencyId: d.agencyId, command: d.command };
      });
  }

  /** Asks for an agency code as `who`; expects `status` and `code`, and the refusal recorded against `agencyId`. */
  async function refused(who: Presenting, status: number, code: string, agencyId: string): Promise<void> {
    const from = await hub.head();
    const res = await post(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: `acq-${randomBytes(4).toString('hex')}` }, who);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body['code']).toBe(code);
    expect(await refusalsSince(from)).toEqual([{ reason: code, agencyId, command: 'AcquireAgencyCode' }]);
  }

  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_TLS: 'on' } });
    await hub.app.listen({ host: '127.0.0.1', port: 0 });
    port = (hub.app.getHttpServer().address() as { port: number }).port;
    ca = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
    operator = { token: hub.operator['authorization']!.slice('Bearer '.length) };
    pension = await register('pension-service', 'pension-service');
    muroran = await register('muroran-city', 'municipality');
    individualNumber = (await issuePerson(hub)).individualNumber;
  }, 60_000);

  afterAll(async () => {
    await hub?.dispose();
  });

  it('registration issues the agency a certificate of the hub CA (recorded as AgencyCertificateIssued), and its token with it admits its call', async () => {
    expect(pension.certificate.caCertificatePem).toBe(ca);
    expect(pension.certificate.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const res = await post(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: 'acq-admitted' }, { token: pension.token, cert: pension.certificate.certificatePem, key: pension.certificate.privateKeyPem });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const listed = await hub.get('/v1/agencies/pension-service/certificates');
    expect(listed.json()).toEqual({ certificates: [expect.objectContaining({ fingerprint: pension.certificate.fingerprint, status: 'issued' })] });
  });

  it('token only: 401 CLIENT_CERTIFICATE_REQUIRED, recorded against the token\'s agency', async () => {
    await refused({ token: pension.token }, 401, 'CLIENT_CERTIFICATE_REQUIRED', 'pension-service');
  });

  it('a certificate of another CA: 401 CLIENT_CERTIFICATE_UNTRUSTED, recorded', async () => {
    const other = await foreignCertificate('pension-service');
    await refused({ token: pension.token, cert: other.certificatePem, key: other.privateKeyPem }, 401, 'CLIENT_CERTIFICATE_UNTRUSTED', 'pension-service');
  });

  it('a certificate of the hub CA that no registration recorded: 401 CLIENT_CERTIFICATE_UNTRUSTED, recorded', async () => {
    const now = Date.now();
    const stray = await issueForTest(hub.config.keysDir, 'pension-service', new Date(now - 60_000), new Date(now + 3_600_000));
    await refused({ token: pension.token, cert: stray.certificatePem, key: stray.privateKeyPem }, 401, 'CLIENT_CERTIFICATE_UNTRUSTED', 'pension-service');
  });

  it('an expired certificate: 401 CLIENT_CERTIFICATE_EXPIRED, recorded', async () => {
    const now = Date.now();
    const expired = await issueForTest(hub.config.keysDir, 'pension-service', new Date(now - 2 * 86_400_000), new Date(now - 86_400_000));
    await refused({ token: pension.token, cert: expired.certificatePem, key: expired.privateKeyPem }, 401, 'CLIENT_CERTIFICATE_EXPIRED', 'pension-service');
  });

  it('another agency\'s certificate: 403 CLIENT_CERTIFICATE_MISMATCH, recorded against the token\'s agency', async () => {
    await refused({ token: pension.token, cert: muroran.certificate.certificatePem, key: muroran.certificate.privateKeyPem }, 403, 'CLIENT_CERTIFICATE_MISMATCH', 'pension-service');
  });

  it('no certificate and no token: 401 UNAUTHENTICATED, counted per source (no agency to attribute it to)', async () => {
    const res = await post(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: 'acq-x' }, {});
    expect(res.status).toBe(401);
    expect(res.body['code']).toBe('UNAUTHENTICATED');
  });

  it('a renewed certificate admits at once; a revoked one is refused at once (401 CLIENT_CERTIFICATE_REVOKED, recorded), the other still admits', async () => {
    const renewal = await post(port, ca, '/v1/agencies/muroran-city/certificates', {}, operator);
    expect(renewal.status, JSON.stringify(renewal.body)).toBe(201);
    const renewed = renewal.body as unknown as RegisteredAgency['certificate'] & { serial: string };
    expect(renewed.fingerprint).not.toBe(muroran.certificate.fingerprint);
    const withRenewed = { token: muroran.token, cert: renewed.certificatePem, key: renewed.privateKeyPem };
    const withFirst = { token: muroran.token, cert: muroran.certificate.certificatePem, key: muroran.certificate.privateKeyPem };
    expect((await post(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: 'acq-renewed' }, withRenewed)).status).toBe(201);

    const revocation = await post(port, ca, `/v1/agencies/muroran-city/certificates/${muroran.certificate.fingerprint}/revocations`, { reason: 'key lost' }, operator);
    expect(revocation.status, JSON.stringify(revocation.body)).toBe(201);
    await refused(withFirst, 401, 'CLIENT_CERTIFICATE_REVOKED', 'muroran-city');
    expect([200, 201]).toContain((await post(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: 'acq-renewed-2' }, withRenewed)).status);

    const again = await post(port, ca, `/v1/agencies/muroran-city/certificates/${muroran.certificate.fingerprint}/revocations`, { reason: 'key lost' }, operator);
    expect(again.status).toBe(409);
    expect(again.body['code']).toBe('CERTIFICATE_ALREADY_REVOKED');
    const events: readonly RecordedEvent[] = await hub.store.readStream('agency-certificates-muroran-city');
    expect(events.map((e) => e.type)).toEqual(['AgencyCertificateIssued', 'AgencyCertificateIssued', 'AgencyCertificateRevoked']);
    expect(events[2]!.data).toMatchObject({ agencyId: 'muroran-city', fingerprint: muroran.certificate.fingerprint, reason: 'key lost' });
  });

  it('what an agency reads as itself (its openings in an inclusion proof) also needs its certificate: token only is 401 CLIENT_CERTIFICATE_REQUIRED', async () => {
    // The log's first serial (its date is the hub's day in Japan time, not a fixed one).
    const serial = (await hub.ledger.readAll({ fromPosition: 0, maxCount: 50 })).find((e) => e.serial !== undefined)!.serial;
    const get = (who: Presenting): Promise<Answer> => httpsGet(port, ca, `/v1/audit/proofs/inclusion?serial=${serial}`, who);
    const tokenOnly = await get({ token: pension.token });
    expect(tokenOnly.status).toBe(401);
    expect(tokenOnly.body['code']).toBe('CLIENT_CERTIFICATE_REQUIRED');
    const withCertificate = await get({ token: pension.token, cert: pension.certificate.certificatePem, key: pension.certificate.privateKeyPem });
    expect(String(withCertificate.body['code'] ?? '')).not.toMatch(/CLIENT_CERTIFICATE/);
  });

  it('the operator and citizens keep their tokens over server-authenticated TLS (no client certificate)', async () => {
    const res = await post(port, ca, '/v1/individual-numbers', { residentRecordCode: `R${randomBytes(5).toString('hex')}`.slice(0, 11), municipalityCode: '012050' }, operator);
    expect([201, 400, 422]).toContain(res.status);
    expect(String(res.body['code'] ?? '')).not.toMatch(/CLIENT_CERTIFICATE/);
  });
});
