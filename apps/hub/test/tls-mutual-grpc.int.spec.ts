import { credentials, Metadata, status as GrpcStatus, type Client, type ServiceError } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { HubGrpcServer } from '../src/grpc/hub-grpc-server.js';
import { LINKAGE_SERVICE, loadHubProtos, serviceClient } from '../src/grpc/proto-files.js';
import { CA_CERT_FILE, foreignCertificate, issueForTest } from '../src/tls/hub-ca.js';
import { issuePerson } from './support/linkage-fixture.js';
import { startTestHub, type TestHub } from './support/test-hub.js';
import { httpsPost, type HttpsAnswer } from './support/https-post.js';

const CLIENT_OPTIONS = { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: false } as const;

interface Issued {
  readonly fingerprint: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

interface RegisteredAgency {
  readonly agencyId: string;
  readonly token: string;
  readonly certificate: Issued;
}

/** A POST over HTTPS as the operator (registration, revocation): what the gRPC callers then present. */
function operatorPost(port: number, ca: string, token: string, path: string, body: unknown): Promise<HttpsAnswer> {
  return httpsPost(port, ca, path, body, { token });
}

describe('mutual TLS at the gRPC edge (HUB_TLS=on): the refusal matrix', () => {
  let hub: TestHub;
  let server: HubGrpcServer;
  let grpcPort: number;
  let httpPort: number;
  let ca: string;
  let operatorToken: string;
  let pension: RegisteredAgency;
  let muroran: RegisteredAgency;
  let individualNumber: string;
  const clients: Client[] = [];

  /** A Linkage client over TLS trusting the hub's CA, presenting `cert` (or none). */
  function linkage(cert?: { certificatePem: string; privateKeyPem: string }): Client {
    const Ctor = serviceClient(loadHubProtos(CLIENT_OPTIONS), LINKAGE_SERVICE);
    const channel = cert === undefined ? credentials.createSsl(Buffer.from(ca)) : credentials.createSsl(Buffer.from(ca), Buffer.from(cert.privateKeyPem), Buffer.from(cert.certificatePem));
    const client = new Ctor(`localhost:${grpcPort}`, channel);
    clients.push(client);
    return client;
  }

  function acquire(client: Client, token: string | undefined): Promise<unknown> {
    const md = new Metadata();
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    return new Promise((resolve, reject) => {
      (client as unknown as Record<string, (r: unknown, m: Metadata, cb: (e: ServiceError | null, r: unknown) => void) => void>)['acquireAgencyCode']!.call(
        client,
        { individualNumber, acquisitionNumber: `acq-${randomBytes(4).toString('hex')}` },
        md,
        (error, response) => (error ? reject(error) : resolve(response)),
      );
    });
  }

  async function refused(client: Client, token: string, status: GrpcStatus, code: string, agencyId: string): Promise<void> {
    const from = await hub.head();
    const error = (await acquire(client, token).then(
      () => {
        throw new Error(`expected ${code}`);
      },
      (e: unknown) => e,
    )) as ServiceError;
    expect(error.code, error.details).toBe(status);
    expect(error.metadata.get('problem-code')).toEqual([code]);
    const refusals = (await hub.ledger.readAll({ fromPosition: from })).filter((e) => e.type === 'RequestRefused').map((e) => e.data as Record<string, unknown>);
    expect(refusals.map((d) => ({ reason: d['reason'], agencyId: d['agencyId'], command: d['command'] }))).toEqual([{ reason: code, agencyId, command: 'AcquireAgencyCode' }]);
  }

  async function register(agencyId: string, kind: string): Promise<RegisteredAgency> {
    const keys = await generateAnswerKeyPair();
    const res = await operatorPost(httpPort, ca, operatorToken, '/v1/agencies', { agencyId, name: `${agencyId} (test)`, kind, endpoint: 'https://localhost:1', publicKey: keys.publicKey });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as unknown as RegisteredAgency;
  }

  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_TLS: 'on' } });
    await hub.app.listen({ host: '127.0.0.1', port: 0 });
    httpPort = (hub.app.getHttpServer().address() as { port: number }).port;
    server = new HubGrpcServer(hub.app, { host: '127.0.0.1', port: 0, maxMessageBytes: hub.config.bodyLimitBytes, shutdownGraceMs: 1000 });
    grpcPort = await server.start();
    ca = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
    operatorToken = hub.operator['authorization']!.slice('Bearer '.length);
    pension = await register('pension-service', 'pension-service');
    muroran = await register('muroran-city', 'municipality');
    individualNumber = (await issuePerson(hub)).individualNumber;
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop();
    await hub?.dispose();
  });

  it('the agency\'s token with its certificate is admitted', async () => {
    await expect(acquire(linkage(pension.certificate), pension.token)).resolves.toMatchObject({ code: expect.any(String) });
  });

  it('token only (TLS without a client certificate): UNAUTHENTICATED CLIENT_CERTIFICATE_REQUIRED, recorded', async () => {
    await refused(linkage(), pension.token, GrpcStatus.UNAUTHENTICATED, 'CLIENT_CERTIFICATE_REQUIRED', 'pension-service');
  });

  it('a certificate of another CA: UNAUTHENTICATED CLIENT_CERTIFICATE_UNTRUSTED, recorded', async () => {
    await refused(linkage(await foreignCertificate('pension-service')), pension.token, GrpcStatus.UNAUTHENTICATED, 'CLIENT_CERTIFICATE_UNTRUSTED', 'pension-service');
  });

  it('an expired certificate: UNAUTHENTICATED CLIENT_CERTIFICATE_EXPIRED, recorded', async () => {
    const now = Date.now();
    const expired = await issueForTest(hub.config.keysDir, 'pension-service', new Date(now - 2 * 86_400_000), new Date(now - 86_400_000));
    await refused(linkage(expired), pension.token, GrpcStatus.UNAUTHENTICATED, 'CLIENT_CERTIFICATE_EXPIRED', 'pension-service');
  });

  it('another agency\'s certificate: PERMISSION_DENIED CLIENT_CERTIFICATE_MISMATCH, recorded', async () => {
    await refused(linkage(muroran.certificate), pension.token, GrpcStatus.PERMISSION_DENIED, 'CLIENT_CERTIFICATE_MISMATCH', 'pension-service');
  });

  it('a revoked certificate is refused from the next call on, on a channel that was admitted before: CLIENT_CERTIFICATE_REVOKED, recorded', async () => {
    const channel = linkage(muroran.certificate);
    await expect(acquire(channel, muroran.token)).resolves.toMatchObject({ code: expect.any(String) });
    const revocation = await operatorPost(httpPort, ca, operatorToken, `/v1/agencies/muroran-city/certificates/${muroran.certificate.fingerprint}/revocations`, { reason: 'key lost' });
    expect(revocation.status, JSON.stringify(revocation.body)).toBe(201);
    await refused(channel, muroran.token, GrpcStatus.UNAUTHENTICATED, 'CLIENT_CERTIFICATE_REVOKED', 'muroran-city');
  });
});
