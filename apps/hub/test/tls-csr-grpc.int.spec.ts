import { credentials, Metadata, status as GrpcStatus, type Client, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { HubGrpcServer } from '../src/grpc/hub-grpc-server.js';
import { LINKAGE_SERVICE, loadHubProtos, serviceClient } from '../src/grpc/proto-files.js';
import { CA_CERT_FILE } from '../src/tls/hub-ca.js';
import { agencyRequest, spkiOfCertificate, withBrokenSignature } from './support/csr.js';
import { issuePerson } from './support/linkage-fixture.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

const CLIENT_OPTIONS = { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: false, oneofs: false } as const;

interface IssuedAgencyCertificate {
  readonly fingerprint: string;
  readonly certificatePem: string;
  readonly privateKeyPem?: string;
  readonly keyOrigin: string;
  readonly caCertificatePem: string;
}

interface Registered {
  readonly agencyId: string;
  readonly token: string;
  readonly certificate?: IssuedAgencyCertificate;
}

// linkage_ledger.v1.Linkage/RegisterAgency mirrors POST /v1/agencies: with HUB_TLS=on it issues the
// agency's certificate, of the key of its csr when it sends one.
describe('RegisterAgency over gRPC with a certificate signing request (HUB_TLS=on)', () => {
  let hub: TestHub;
  let server: HubGrpcServer;
  let grpcPort: number;
  let ca: string;
  let operatorToken: string;
  const clients: Client[] = [];

  function linkage(cert?: { certificatePem: string; privateKeyPem: string }): Client {
    const Ctor = serviceClient(loadHubProtos(CLIENT_OPTIONS), LINKAGE_SERVICE);
    const channel = cert === undefined ? credentials.createSsl(Buffer.from(ca)) : credentials.createSsl(Buffer.from(ca), Buffer.from(cert.privateKeyPem), Buffer.from(cert.certificatePem));
    const client = new Ctor(`localhost:${grpcPort}`, channel);
    clients.push(client);
    return client;
  }

  function call<T>(client: Client, method: string, request: unknown, token: string): Promise<T> {
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    return new Promise((resolve, reject) => {
      (client as unknown as Record<string, (r: unknown, m: Metadata, cb: (e: ServiceError | null, r: unknown) => void) => void>)[method]!.call(client, request, md, (error, response) => (error ? reject(error) : resolve(response as T)));
    });
  }

  async function register(agencyId: string, csr?: string): Promise<Registered> {
    const keys = await generateAnswerKeyPair();
    return call<Registered>(linkage(), 'registerAgency', { agencyId, name: `${agencyId} (test)`, kind: 'municipality', endpoint: 'https://localhost:1', publicKey: keys.publicKey, ...(csr === undefined ? {} : { csr }) }, operatorToken);
  }

  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_TLS: 'on' } });
    server = new HubGrpcServer(hub.app, { host: '127.0.0.1', port: 0, maxMessageBytes: hub.config.bodyLimitBytes, shutdownGraceMs: 1000 });
    grpcPort = await server.start();
    ca = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
    operatorToken = hub.operator['authorization']!.slice('Bearer '.length);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop();
    await hub?.dispose();
  });

  it('with a csr: the certificate of its key, no private key answered (keyOrigin agency); the agency\'s own key then admits its gRPC calls', async () => {
    const own = await agencyRequest('P-256');
    const registered = await register('grpc-csr-city', own.csr);
    expect(registered.certificate).toBeDefined();
    const certificate = registered.certificate!;
    expect(certificate.privateKeyPem ?? undefined).toBeUndefined();
    expect(certificate.keyOrigin).toBe('agency');
    expect(certificate.caCertificatePem).toBe(ca);
    expect(spkiOfCertificate(certificate.certificatePem)).toBe(own.spki);
    expect((await hub.store.readStream('agency-certificates-grpc-csr-city')).map((e) => e.data)).toEqual([expect.objectContaining({ fingerprint: certificate.fingerprint, keyOrigin: 'agency', occasion: 'registration' })]);

    const { individualNumber } = await issuePerson(hub);
    await expect(call(linkage({ certificatePem: certificate.certificatePem, privateKeyPem: own.privateKeyPem }), 'acquireAgencyCode', { individualNumber, acquisitionNumber: 'acq-grpc-csr' }, registered.token)).resolves.toMatchObject({ code: expect.any(String) });
  });

  it('without a csr: the hub makes the key and answers it once (keyOrigin hub), as over HTTP', async () => {
    const registered = await register('grpc-keyless-city');
    expect(registered.certificate).toMatchObject({ keyOrigin: 'hub', privateKeyPem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/) });
  });

  it('a csr with a bad signature: INVALID_ARGUMENT CSR_SIGNATURE_INVALID, the agency not registered, only the refusal recorded', async () => {
    const from = await hub.head();
    const error = (await register('grpc-refused-city', withBrokenSignature((await agencyRequest('P-256')).csr)).then(
      () => {
        throw new Error('expected CSR_SIGNATURE_INVALID');
      },
      (e: unknown) => e,
    )) as ServiceError;
    expect(error.code, error.details).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(error.metadata.get('problem-code')).toEqual(['CSR_SIGNATURE_INVALID']);
    const events = await hub.ledger.readAll({ fromPosition: from });
    expect(events.map((e) => e.type)).toEqual(['RequestRefused']);
    expect(events[0]!.data).toMatchObject({ reason: 'CSR_SIGNATURE_INVALID', command: 'RegisterAgency' });
    expect((await hub.get('/v1/agencies/grpc-refused-city')).statusCode).toBe(404);
  });
});
