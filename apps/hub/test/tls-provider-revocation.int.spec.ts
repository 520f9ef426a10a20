import { createServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { CA_CERT_FILE } from '../src/tls/hub-ca.js';
import { startLinkageHub, issuePerson, MURORAN_CITY, PENSION } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';
import { freePorts } from '../../../test/support/free-ports.js';
import { httpsPost, type HttpsAnswer as Answer } from './support/https-post.js';

/**
 * With HUB_TLS=on the hub calls an intermediate server only if it holds a certificate the log records as
 * issued to the agency its endpoint is registered for and not revoked: revoking that certificate
 * (`POST /v1/agencies/{id}/certificates/{fingerprint}/revocations`, AgencyCertificateRevoked) stops the
 * hub's calls to the server at once, each refused query ending its serial in QueryFailed.
 */

interface Certificate {
  readonly fingerprint: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

interface Registered {
  readonly token: string;
  readonly certificate: Certificate;
}

describe('the hub refuses to call an intermediate server whose certificate is revoked (HUB_TLS=on)', () => {
  let hub: TestHub;
  let port: number;
  let ca: string;
  let pension: Registered;
  let muroran: Registered;
  let provider: Server;
  let provisions = 0;
  let pensionCode: string;

  /** One HTTPS POST to the hub as an agency: its token and its certificate (mutual TLS). */
  function asAgency(agency: Registered, path: string, body: unknown): Promise<Answer> {
    return httpsPost(port, ca, path, body, { token: agency.token, cert: agency.certificate.certificatePem, key: agency.certificate.privateKeyPem });
  }

  async function register(agencyId: string, kind: string, endpoint: string, extra: Record<string, unknown> = {}): Promise<Registered> {
    const res = await hub.post('/v1/agencies', { agencyId, name: `${agencyId} (test)`, kind, endpoint, publicKey: (await generateAnswerKeyPair()).publicKey, ...extra }, hub.operator);
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Registered>();
  }

  const query = () => asAgency(pension, '/v1/queries', { code: pensionCode, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] });

  beforeAll(async () => {
    hub = await startLinkageHub({ env: { HUB_TLS: 'on', HUB_REDIS_URL: 'off' } });
    await hub.app.listen({ host: '127.0.0.1', port: 0 });
    port = (hub.app.getHttpServer().address() as { port: number }).port;
    ca = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
    const [providerPort] = await freePorts(1);
    pension = await register(PENSION, 'pension-service', 'https://localhost:1');
    muroran = await register(MURORAN_CITY, 'municipality', `https://localhost:${providerPort}`, { municipalityCode: '012050' });
    // Muroran City's intermediate server, serving HTTPS with the certificate its registration answered.
    provider = createServer({ key: muroran.certificate.privateKeyPem, cert: muroran.certificate.certificatePem }, (req, res) => {
      provisions++;
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'refused', reason: 'NO_RECORD' })));
    });
    await new Promise<void>((resolve) => provider.listen(providerPort, '127.0.0.1', resolve));
    const { individualNumber } = await issuePerson(hub);
    for (const agency of [pension, muroran]) {
      const acquired = await asAgency(agency, '/v1/agency-codes', { individualNumber, acquisitionNumber: `acq-${agency === pension ? 'p' : 'm'}` });
      expect([200, 201], JSON.stringify(acquired.body)).toContain(acquired.status);
      if (agency === pension) pensionCode = String(acquired.body['code']);
    }
  }, 90_000);

  afterAll(async () => {
    provider?.closeAllConnections();
    provider?.close();
    await hub?.dispose();
  });

  it('calls the server holding the certificate issued to the registered agency', async () => {
    const res = await query();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'refused-by-provider', reason: 'NO_RECORD' });
    expect(provisions).toBe(1);
  });

  it('once the certificate is revoked, the next query does not reach the server: 502 PROVIDER_UNREACHABLE, its serial ended in QueryFailed, the revocation named in the hub\'s log', async () => {
    const revoked = await hub.post(`/v1/agencies/${MURORAN_CITY}/certificates/${muroran.certificate.fingerprint}/revocations`, { reason: 'key compromised' }, hub.operator);
    expect(revoked.statusCode, revoked.body).toBe(201);
    const from = await hub.head();
    const res = await query();
    expect(res.status, JSON.stringify(res.body)).toBe(502);
    expect(res.body).toMatchObject({ code: 'PROVIDER_UNREACHABLE', serial: expect.stringMatching(/^\d{20}$/) });
    // The precise cause is the operator's to read: the hub's log names the certificate and its revocation.
    expect(hub.logger.lines).toContainEqual({ level: 'warn', message: expect.stringMatching(new RegExp(`refused to call the intermediate server of agency muroran-city: the intermediate server's certificate ${muroran.certificate.fingerprint} of agency muroran-city is revoked \\(AgencyCertificateRevoked\\)`)) });
    expect(provisions).toBe(1);
    const events = await hub.ledger.readAll({ fromPosition: from });
    const failed = events.filter((e) => e.type === 'QueryFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.serial).toBe(res.body['serial']);
    expect(failed[0]!.data).toMatchObject({ providerAgencyId: MURORAN_CITY, reason: 'PROVIDER_UNREACHABLE' });
  });

  it('the server given the renewed certificate is called again', async () => {
    const renewal = await hub.post(`/v1/agencies/${MURORAN_CITY}/certificates`, {}, hub.operator);
    expect(renewal.statusCode, renewal.body).toBe(201);
    const renewed = renewal.json<Certificate>();
    provider.setSecureContext({ key: renewed.privateKeyPem, cert: renewed.certificatePem });
    const res = await query();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'refused-by-provider', reason: 'NO_RECORD' });
    expect(provisions).toBe(2);
  });
});
