import { credentials, Metadata, Server as GrpcServer, ServerCredentials, status as GrpcStatus, type Client, type ServiceError, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { HubGrpcServer } from '../src/grpc/hub-grpc-server.js';
import { LINKAGE_SERVICE, SERVER_LOADER_OPTIONS, defaultProtoDir, loadHubProtos, serviceClient } from '../src/grpc/proto-files.js';
import { CA_CERT_FILE } from '../src/tls/hub-ca.js';
import { startLinkageHub, issuePerson, MURORAN_CITY, PENSION } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';
import { freePorts } from '../../../test/support/free-ports.js';
import { httpsPost, type HttpsAnswer as Answer } from './support/https-post.js';

/**
 * With HUB_TLS=on the hub calls a grpcs:// intermediate server as it calls an https one: only if it
 * presents a certificate the log records as issued to the agency its endpoint is registered for and not
 * revoked. A revocation stops the calls at once, on a channel already open too; the requester is told the
 * cause in words (problem detail, gRPC status details), the serial ends in QueryFailed PROVIDER_UNREACHABLE.
 */

const NOBORIBETSU = 'noboribetsu-city';
const SAPPORO = 'sapporo-city';
const DATE = 'date-city';
const CLIENT_OPTIONS = { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: false } as const;
const REVOKED_CAUSE = 'the providing agency\'s intermediate server presented a certificate that is revoked (AgencyCertificateRevoked)';
const OTHER_AGENCY_CAUSE = 'the providing agency\'s intermediate server presented a certificate issued to another agency, not to the agency its endpoint is registered for';

interface Certificate {
  readonly fingerprint: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

interface Registered {
  readonly token: string;
  readonly certificate: Certificate;
}

/** An intermediate server over gRPC with TLS, presenting `cert`: every provision refused NO_RECORD (and counted). */
async function grpcsProvider(port: number, cert: Certificate, calls: { count: number }): Promise<GrpcServer> {
  const definition = loadSync(['linkage_ledger/v1/intermediate_server.proto'], { ...SERVER_LOADER_OPTIONS, includeDirs: [defaultProtoDir()] });
  const service = serviceClient(definition, 'linkage_ledger.v1.IntermediateServer').service;
  const handle = (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<{ body: Buffer }>) => {
    calls.count++;
    done(null, { body: Buffer.from(JSON.stringify({ status: 'refused', reason: 'NO_RECORD' })) });
  };
  const server = new GrpcServer();
  server.addService(service, { provide: handle, provideBatch: handle });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createSsl(null, [{ private_key: Buffer.from(cert.privateKeyPem), cert_chain: Buffer.from(cert.certificatePem) }], false), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return server;
}

describe('the hub calls a grpcs intermediate server only with the registered agency\'s recorded, unrevoked certificate (HUB_TLS=on)', () => {
  let hub: TestHub;
  let port: number;
  let edge: HubGrpcServer;
  let edgePort: number;
  let ca: string;
  let pension: Registered;
  let muroran: Registered;
  let muroranPort: number;
  let muroranServer: GrpcServer;
  let noboribetsuServer: GrpcServer;
  let sapporoServer: HttpsServer;
  let dateServer: HttpsServer;
  let date: Registered;
  let dateCalls = 0;
  const muroranCalls = { count: 0 };
  const noboribetsuCalls = { count: 0 };
  let sapporoCalls = 0;
  const codes = new Map<string, string>();
  const clients: Client[] = [];

  /** One HTTPS POST to the hub as an agency: its token and its certificate (mutual TLS). */
  function asAgency(agency: Registered, path: string, body: unknown): Promise<Answer> {
    return httpsPost(port, ca, path, body, { token: agency.token, cert: agency.certificate.certificatePem, key: agency.certificate.privateKeyPem });
  }

  async function register(agencyId: string, kind: string, endpoint: string, extra: Record<string, unknown> = {}): Promise<Registered> {
    const res = await hub.post('/v1/agencies', { agencyId, name: `${agencyId} (test)`, kind, endpoint, publicKey: (await generateAnswerKeyPair()).publicKey, ...extra }, hub.operator);
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Registered>();
  }

  const query = (provider: string) => asAgency(pension, '/v1/queries', { code: codes.get(provider), providerAgencyId: provider, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] });

  /** The same query through the hub's gRPC edge (mutual TLS with the pension service's certificate). */
  function queryOverGrpc(provider: string): Promise<ServiceError> {
    const Ctor = serviceClient(loadHubProtos(CLIENT_OPTIONS), LINKAGE_SERVICE);
    const client = new Ctor(`localhost:${edgePort}`, credentials.createSsl(Buffer.from(ca), Buffer.from(pension.certificate.privateKeyPem), Buffer.from(pension.certificate.certificatePem)));
    clients.push(client);
    const md = new Metadata();
    md.set('authorization', `Bearer ${pension.token}`);
    return new Promise((resolve, reject) => {
      (client as unknown as Record<string, (r: unknown, m: Metadata, cb: (e: ServiceError | null, r: unknown) => void) => void>)['query']!.call(
        client,
        { code: codes.get(provider), providerAgencyId: provider, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] },
        md,
        (error, response) => (error ? resolve(error) : reject(new Error(`expected a failure, got ${JSON.stringify(response)}`))),
      );
    });
  }

  async function failedOnce(from: Awaited<ReturnType<TestHub['head']>>, serial: unknown, provider: string): Promise<void> {
    const events = await hub.ledger.readAll({ fromPosition: from });
    const failed = events.filter((e) => e.type === 'QueryFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.serial).toBe(serial);
    expect(failed[0]!.data).toMatchObject({ providerAgencyId: provider, reason: 'PROVIDER_UNREACHABLE' });
  }

  beforeAll(async () => {
    hub = await startLinkageHub({ env: { HUB_TLS: 'on', HUB_REDIS_URL: 'off' } });
    await hub.app.listen({ host: '127.0.0.1', port: 0 });
    port = (hub.app.getHttpServer().address() as { port: number }).port;
    edge = new HubGrpcServer(hub.app, { host: '127.0.0.1', port: 0, maxMessageBytes: hub.config.bodyLimitBytes, shutdownGraceMs: 1000 });
    edgePort = await edge.start();
    ca = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
    const [p1, p2, p3, p4] = await freePorts(4);
    muroranPort = p1!;
    pension = await register(PENSION, 'pension-service', 'https://localhost:1');
    muroran = await register(MURORAN_CITY, 'municipality', `grpcs://localhost:${muroranPort}`, { municipalityCode: '012050' });
    const noboribetsu = await register(NOBORIBETSU, 'municipality', `grpcs://localhost:${p2}`);
    const sapporo = await register(SAPPORO, 'municipality', `https://localhost:${p3}`);
    date = await register(DATE, 'municipality', `https://localhost:${p4}`);
    muroranServer = await grpcsProvider(muroranPort, muroran.certificate, muroranCalls);
    // Noboribetsu's endpoint serves Muroran City's certificate: of the hub's CA, naming the host, but another agency's.
    noboribetsuServer = await grpcsProvider(p2!, muroran.certificate, noboribetsuCalls);
    // Sapporo's (https) too: the same refusal over https tells the requester the same cause.
    sapporoServer = createHttpsServer({ key: muroran.certificate.privateKeyPem, cert: muroran.certificate.certificatePem }, (req, res) => {
      sapporoCalls++;
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'refused', reason: 'NO_RECORD' })));
    });
    await new Promise<void>((resolve) => sapporoServer.listen(p3, '127.0.0.1', resolve));
    // Date City's (https) presents its own certificate, until it is revoked.
    dateServer = createHttpsServer({ key: date.certificate.privateKeyPem, cert: date.certificate.certificatePem }, (req, res) => {
      dateCalls++;
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'refused', reason: 'NO_RECORD' })));
    });
    await new Promise<void>((resolve) => dateServer.listen(p4, '127.0.0.1', resolve));
    const { individualNumber } = await issuePerson(hub);
    for (const [agencyId, agency] of [[PENSION, pension], [MURORAN_CITY, muroran], [NOBORIBETSU, noboribetsu], [SAPPORO, sapporo], [DATE, date]] as const) {
      const acquired = await asAgency(agency, '/v1/agency-codes', { individualNumber, acquisitionNumber: `acq-${agencyId}` });
      expect([200, 201], JSON.stringify(acquired.body)).toContain(acquired.status);
      codes.set(agencyId, String(acquired.body['code']));
    }
    // The pension service queries with its own code; the provider's id picks the translation.
    for (const provider of [MURORAN_CITY, NOBORIBETSU, SAPPORO, DATE]) codes.set(provider, codes.get(PENSION)!);
  }, 90_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    muroranServer?.forceShutdown();
    noboribetsuServer?.forceShutdown();
    sapporoServer?.closeAllConnections();
    sapporoServer?.close();
    dateServer?.closeAllConnections();
    dateServer?.close();
    await edge?.stop();
    await hub?.dispose();
  });

  it('calls the grpcs server holding the certificate issued to the registered agency', async () => {
    const res = await query(MURORAN_CITY);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'refused-by-provider', reason: 'NO_RECORD' });
    expect(muroranCalls.count).toBe(1);
  });

  it('refuses a grpcs server presenting another agency\'s certificate of the hub\'s CA: 502 PROVIDER_UNREACHABLE, the cause in the detail, QueryFailed, nothing sent', async () => {
    const from = await hub.head();
    const res = await query(NOBORIBETSU);
    expect(res.status, JSON.stringify(res.body)).toBe(502);
    expect(res.body).toMatchObject({ code: 'PROVIDER_UNREACHABLE', serial: expect.stringMatching(/^\d{20}$/) });
    expect(String(res.body['detail'])).toContain(OTHER_AGENCY_CAUSE);
    // Nothing of the person, nor the address or fingerprint the operator's log names.
    expect(JSON.stringify(res.body)).not.toContain(codes.get(PENSION)!);
    expect(JSON.stringify(res.body)).not.toContain(muroran.certificate.fingerprint);
    expect(noboribetsuCalls.count).toBe(0);
    expect(hub.logger.lines).toContainEqual({ level: 'warn', message: `refused to call the intermediate server of agency ${NOBORIBETSU}: the intermediate server's certificate is agency ${MURORAN_CITY}'s, but the endpoint is registered for agency ${NOBORIBETSU}` });
    await failedOnce(from, res.body['serial'], NOBORIBETSU);
  });

  it('a bulk query to it: each failed result carries the cause', async () => {
    const res = await asAgency(pension, '/v1/queries/bulk', { codes: [codes.get(PENSION)], providerAgencyId: NOBORIBETSU, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body['results']).toEqual([expect.objectContaining({ outcome: 'failed', reason: 'PROVIDER_UNREACHABLE', cause: expect.stringContaining(OTHER_AGENCY_CAUSE), index: 0 })]);
    expect(noboribetsuCalls.count).toBe(0);
  });

  it('the same refusal over https tells the requester the same cause', async () => {
    const res = await query(SAPPORO);
    expect(res.status, JSON.stringify(res.body)).toBe(502);
    expect(res.body).toMatchObject({ code: 'PROVIDER_UNREACHABLE' });
    expect(String(res.body['detail'])).toContain(OTHER_AGENCY_CAUSE);
    expect(sapporoCalls).toBe(0);
  });

  it('over https, a revoked certificate is told as revoked too (on the kept-alive connection)', async () => {
    expect((await query(DATE)).status).toBe(200);
    expect(dateCalls).toBe(1);
    const revoked = await hub.post(`/v1/agencies/${DATE}/certificates/${date.certificate.fingerprint}/revocations`, { reason: 'key compromised' }, hub.operator);
    expect(revoked.statusCode, revoked.body).toBe(201);
    const res = await query(DATE);
    expect(res.status, JSON.stringify(res.body)).toBe(502);
    expect(res.body).toMatchObject({ code: 'PROVIDER_UNREACHABLE' });
    expect(String(res.body['detail'])).toContain(REVOKED_CAUSE);
    expect(dateCalls).toBe(1);
  });

  it('once the certificate is revoked, the next query does not reach the server on the open channel: 502 PROVIDER_UNREACHABLE saying revoked, QueryFailed; over the hub\'s gRPC edge too', async () => {
    const revoked = await hub.post(`/v1/agencies/${MURORAN_CITY}/certificates/${muroran.certificate.fingerprint}/revocations`, { reason: 'key compromised' }, hub.operator);
    expect(revoked.statusCode, revoked.body).toBe(201);
    const from = await hub.head();
    const res = await query(MURORAN_CITY);
    expect(res.status, JSON.stringify(res.body)).toBe(502);
    expect(res.body).toMatchObject({ code: 'PROVIDER_UNREACHABLE', serial: expect.stringMatching(/^\d{20}$/) });
    expect(String(res.body['detail'])).toContain(REVOKED_CAUSE);
    expect(muroranCalls.count).toBe(1);
    expect(hub.logger.lines).toContainEqual({ level: 'warn', message: expect.stringContaining(`refused to call the intermediate server of agency ${MURORAN_CITY}: the intermediate server's certificate ${muroran.certificate.fingerprint} of agency ${MURORAN_CITY} is revoked (AgencyCertificateRevoked)`) });
    await failedOnce(from, res.body['serial'], MURORAN_CITY);

    const error = await queryOverGrpc(MURORAN_CITY);
    expect(error.code, error.details).toBe(GrpcStatus.UNAVAILABLE);
    expect(error.metadata.get('problem-code')).toEqual(['PROVIDER_UNREACHABLE']);
    expect(error.details).toContain(REVOKED_CAUSE);
    const problem = JSON.parse(Buffer.from(error.metadata.get('problem-bin')[0] as Buffer).toString('utf8')) as Record<string, unknown>;
    expect(String(problem['detail'])).toContain(REVOKED_CAUSE);
    expect(muroranCalls.count).toBe(1);
  });

  it('the grpcs server given the renewed certificate is called again', async () => {
    const renewal = await hub.post(`/v1/agencies/${MURORAN_CITY}/certificates`, {}, hub.operator);
    expect(renewal.statusCode, renewal.body).toBe(201);
    const renewed = renewal.json<Certificate>();
    muroranServer.forceShutdown();
    muroranServer = await grpcsProvider(muroranPort, renewed, muroranCalls);
    const res = await query(MURORAN_CITY);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'refused-by-provider', reason: 'NO_RECORD' });
    expect(muroranCalls.count).toBe(2);
  });

  it('after a rotation of the hub\'s CA, the grpcs server given a certificate of the new CA is called', async () => {
    const rotated = await hub.post('/v1/key-rotations/tls-ca', {}, hub.operator);
    expect(rotated.statusCode, rotated.body).toBe(201);
    const renewal = await hub.post(`/v1/agencies/${MURORAN_CITY}/certificates`, {}, hub.operator);
    expect(renewal.statusCode, renewal.body).toBe(201);
    const renewed = renewal.json<Certificate>();
    muroranServer.forceShutdown();
    muroranServer = await grpcsProvider(muroranPort, renewed, muroranCalls);
    const res = await query(MURORAN_CITY);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'refused-by-provider', reason: 'NO_RECORD' });
    expect(muroranCalls.count).toBe(3);
  });
});
