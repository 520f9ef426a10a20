import { credentials, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { schemaValidator } from '../../../test/support/json-schema.js';
import { HubGrpcServer } from '../src/grpc/hub-grpc-server.js';
import { LINKAGE_SERVICE, loadHubProtos, serviceClient } from '../src/grpc/proto-files.js';
import { TlsCaRotations } from '../src/keys/tls-ca-rotation.js';
import { CA_BUNDLE_FILE, CA_CERT_FILE, foreignCertificate } from '../src/tls/hub-ca.js';
import { startTestHub, type TestHub } from './support/test-hub.js';
import { issuePerson } from './support/linkage-fixture.js';
import { httpsPost as post, type HttpsAnswer as Answer, type Presenting } from './support/https-post.js';

const validateEvent = schemaValidator('schemas/events/tls-ca-key-rotated.v1.json');
const ROTATE = '/v1/key-rotations/tls-ca';
const DAY_MS = 86_400_000;
const CLIENT_OPTIONS = { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: false } as const;

interface IssuedPem {
  readonly fingerprint: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly caCertificatePem: string;
}

/** The certificate the hub serves to a new connection (not verified here), and whether `ca` alone verifies its chain. */
function served(port: number, ca: string): Promise<{ readonly certificate: X509Certificate; readonly authorized: boolean; readonly error: string | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      const certificate = new X509Certificate(socket.getPeerCertificate().raw);
      resolve({ certificate, authorized: socket.authorized, error: socket.authorizationError === null || socket.authorizationError === undefined ? undefined : String(socket.authorizationError) });
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** An agency call admitted: its agency code, first acquired (201) or again (200). */
function admitted(res: Answer): void {
  expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
  expect(typeof res.body['code']).toBe('string');
}

function issuedBy(certificatePem: string, caPem: string): boolean {
  return new X509Certificate(certificatePem).verify(new X509Certificate(caPem).publicKey);
}

describe('rotation of the hub\'s TLS CA key (HUB_TLS=on): no outage for agencies', () => {
  let hub: TestHub;
  let port: number;
  let oldCa: string;
  let newCa: string;
  let operator: Presenting;
  let pension: { agencyId: string; token: string; certificate: IssuedPem };
  let renewed: IssuedPem;
  let muroran: { agencyId: string; token: string; certificate: IssuedPem };
  let individualNumber: string;
  let rotation: Record<string, unknown>;
  let grpc: HubGrpcServer | undefined;
  let grpcPort: number;
  const clients: Client[] = [];

  /** An agency code over the gRPC edge, on a new channel trusting `ca` and presenting `certificate`. */
  function acquireOverGrpc(ca: string, token: string, certificate: IssuedPem): Promise<unknown> {
    const Ctor = serviceClient(loadHubProtos(CLIENT_OPTIONS), LINKAGE_SERVICE);
    const client = new Ctor(`localhost:${grpcPort}`, credentials.createSsl(Buffer.from(ca), Buffer.from(certificate.privateKeyPem), Buffer.from(certificate.certificatePem)));
    clients.push(client);
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    return new Promise((resolve, reject) => {
      (client as unknown as Record<string, (r: unknown, m: Metadata, cb: (e: ServiceError | null, r: unknown) => void) => void>)['acquireAgencyCode']!.call(
        client,
        { individualNumber, acquisitionNumber: `acq-${randomBytes(4).toString('hex')}` },
        md,
        (error, response) => (error ? reject(error) : resolve(response)),
      );
    });
  }

  async function listen(h: TestHub): Promise<number> {
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    return (h.app.getHttpServer().address() as { port: number }).port;
  }

  async function register(agencyId: string, kind: string, ca: string): Promise<{ agencyId: string; token: string; certificate: IssuedPem }> {
    const keys = await generateAnswerKeyPair();
    const res = await post(port, ca, '/v1/agencies', { agencyId, name: `${agencyId} (test)`, kind, endpoint: 'https://localhost:1', publicKey: keys.publicKey }, operator);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as unknown as { agencyId: string; token: string; certificate: IssuedPem };
  }

  /** An agency call (an agency code) over a new connection trusting `ca`, presenting `who`. */
  function acquire(ca: string, who: Presenting): Promise<Answer> {
    return post(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: `acq-${randomBytes(4).toString('hex')}` }, who);
  }

  async function refusalsSince(h: TestHub, from: number, command: string): Promise<{ reason: unknown; agencyId: unknown }[]> {
    return (await h.ledger.readAll({ fromPosition: from }))
      .filter((e) => e.type === 'RequestRefused' && (e.data as { command?: unknown }).command === command)
      .map((e) => ({ reason: (e.data as { reason?: unknown }).reason, agencyId: (e.data as { agencyId?: unknown }).agencyId }));
  }

  const as = (agency: { token: string }, certificate: IssuedPem): Presenting => ({ token: agency.token, cert: certificate.certificatePem, key: certificate.privateKeyPem });

  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_TLS: 'on' } });
    port = await listen(hub);
    grpc = new HubGrpcServer(hub.app, { host: '127.0.0.1', port: 0, maxMessageBytes: hub.config.bodyLimitBytes, shutdownGraceMs: 1000 });
    grpcPort = await grpc.start();
    oldCa = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
    operator = { token: hub.operator['authorization']!.slice('Bearer '.length) };
    pension = await register('pension-service', 'pension-service', oldCa);
    individualNumber = (await issuePerson(hub)).individualNumber;
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await grpc?.stop();
    await hub?.dispose();
  });

  it('refuses the auditor (403) and a bad body (400), records both as RequestRefused, and rotates nothing', async () => {
    const head = await hub.head();
    const files = readdirSync(hub.config.keysDir).sort();
    const auditor = await post(port, oldCa, ROTATE, {}, { token: hub.auditor['authorization']!.slice('Bearer '.length) });
    expect([auditor.status, auditor.body['code']]).toEqual([403, 'FORBIDDEN']);
    const bad = await post(port, oldCa, ROTATE, { overlapDays: -1 }, operator);
    expect([bad.status, bad.body['code']]).toEqual([400, 'VALIDATION_FAILED']);
    const agency = await post(port, oldCa, ROTATE, {}, as(pension, pension.certificate));
    expect(agency.status).toBe(403);
    expect(await refusalsSince(hub, head, 'RotateTlsCaKey')).toHaveLength(3);
    expect((await hub.ledger.readAll({ fromPosition: head })).filter((e) => e.type === 'TlsCaKeyRotated')).toEqual([]);
    expect(readdirSync(hub.config.keysDir).sort()).toEqual(files);
  });

  it('rotates: the new CA stored (0600) before its public TlsCaKeyRotated event; cert file, bundle and the certificate served over HTTPS and gRPC change at once, without a restart', async () => {
    const head = await hub.head();
    const res = await post(port, oldCa, ROTATE, { overlapDays: 30 }, operator);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    rotation = res.body;
    const events = (await hub.store.readAll({ fromPosition: head })).filter((e) => e.type === 'TlsCaKeyRotated');
    expect(events).toHaveLength(1);
    const event = events[0]!;
    const checked = validateEvent(event.data);
    expect(checked.valid, checked.errors).toBe(true);
    expect(event.streamId).toBe('$tls-ca-keys');
    expect(event.data).toEqual({ caFingerprint: rotation['caFingerprint'], caSubject: rotation['caSubject'], caSerialNumber: rotation['caSerialNumber'], previousCaFingerprint: rotation['previousCaFingerprint'], overlapEndsAt: rotation['overlapEndsAt'], rotatedAt: rotation['rotatedAt'] });
    expect(Date.parse(String(rotation['overlapEndsAt'])) - Date.parse(String(rotation['rotatedAt']))).toBe(30 * DAY_MS);
    expect(rotation['previousCaFingerprint']).toBe(new X509Certificate(oldCa).fingerprint256.replaceAll(':', '').toLowerCase());

    const file = join(hub.config.keysDir, `tls-ca.${String(rotation['caFingerprint']).slice(0, 16)}.key.json`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.stringify(event.data)).not.toContain('PRIVATE KEY');
    newCa = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
    expect(newCa).not.toBe(oldCa);
    expect(new X509Certificate(newCa).fingerprint256.replaceAll(':', '').toLowerCase()).toBe(rotation['caFingerprint']);
    const bundle = readFileSync(join(hub.config.keysDir, CA_BUNDLE_FILE), 'utf8');
    expect(bundle).toContain(newCa.trim());
    expect(bundle).toContain(oldCa.trim());

    // The hub's server certificate is the new CA's, on the same listening server.
    const seen = await served(port, bundle);
    expect(seen.certificate.verify(new X509Certificate(newCa).publicKey)).toBe(true);
    expect(seen.authorized).toBe(true);
    // A client trusting only the new CA, or only the previous one (through the cross certificate), still verifies it.
    expect((await served(port, newCa)).authorized).toBe(true);
    expect((await served(port, oldCa)).error).toBeUndefined();
    // The gRPC edge too, on the port it listened on before the rotation.
    const overGrpc = await served(grpcPort, bundle);
    expect(overGrpc.certificate.verify(new X509Certificate(newCa).publicKey)).toBe(true);
    expect(overGrpc.authorized).toBe(true);
  });

  it('an agency whose certificate the previous CA issued keeps working, whatever CA its client trusts', async () => {
    expect(issuedBy(pension.certificate.certificatePem, oldCa)).toBe(true);
    for (const ca of [oldCa, newCa, readFileSync(join(hub.config.keysDir, CA_BUNDLE_FILE), 'utf8')]) {
      admitted(await acquire(ca, as(pension, pension.certificate)));
    }
  });

  it('a renewal and a registration are issued by the new CA and admitted, over HTTPS and gRPC; the previous certificate keeps working', async () => {
    const res = await post(port, newCa, '/v1/agencies/pension-service/certificates', {}, operator);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    renewed = res.body as unknown as IssuedPem;
    expect(issuedBy(renewed.certificatePem, newCa)).toBe(true);
    expect(issuedBy(renewed.certificatePem, oldCa)).toBe(false);
    expect(renewed.caCertificatePem).toBe(newCa);
    admitted(await acquire(newCa, as(pension, renewed)));
    admitted(await acquire(newCa, as(pension, pension.certificate)));
    muroran = await register('muroran-city', 'municipality', newCa);
    expect(issuedBy(muroran.certificate.certificatePem, newCa)).toBe(true);
    admitted(await acquire(newCa, as(muroran, muroran.certificate)));
    // The gRPC edge trusts the bundle now: the new CA's certificates and the previous CA's.
    await expect(acquireOverGrpc(newCa, pension.token, renewed)).resolves.toMatchObject({ code: expect.any(String) });
    await expect(acquireOverGrpc(newCa, muroran.token, muroran.certificate)).resolves.toMatchObject({ code: expect.any(String) });
    await expect(acquireOverGrpc(oldCa, pension.token, pension.certificate)).resolves.toMatchObject({ code: expect.any(String) });
  });

  it('a certificate of a third CA is still refused (401 CLIENT_CERTIFICATE_UNTRUSTED), recorded', async () => {
    const other = await foreignCertificate('pension-service');
    const head = await hub.head();
    const res = await acquire(newCa, { token: pension.token, cert: other.certificatePem, key: other.privateKeyPem });
    expect([res.status, res.body['code']]).toEqual([401, 'CLIENT_CERTIFICATE_UNTRUSTED']);
    expect(await refusalsSince(hub, head, 'AcquireAgencyCode')).toEqual([{ reason: 'CLIENT_CERTIFICATE_UNTRUSTED', agencyId: 'pension-service' }]);
  });

  it('a restart reads the rotation: the new CA issues and is served, the previous CA\'s certificate still admitted, a third CA\'s refused', async () => {
    const dataDir = hub.dataDir;
    for (const c of clients) c.close();
    await grpc?.stop();
    grpc = undefined;
    await hub.close();
    hub = await startTestHub({ dataDir, env: { HUB_TLS: 'on' } });
    port = await listen(hub);
    expect(readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8')).toBe(newCa);
    expect((await served(port, newCa)).authorized).toBe(true);
    expect((await served(port, oldCa)).error).toBeUndefined();
    admitted(await acquire(newCa, as(pension, pension.certificate)));
    admitted(await acquire(newCa, as(pension, renewed)));
    const other = await foreignCertificate('pension-service');
    const res = await acquire(newCa, { token: pension.token, cert: other.certificatePem, key: other.privateKeyPem });
    expect(res.body['code']).toBe('CLIENT_CERTIFICATE_UNTRUSTED');
    const again = await post(port, newCa, '/v1/agencies/pension-service/certificates', {}, operator);
    expect(issuedBy((again.body as unknown as IssuedPem).certificatePem, newCa)).toBe(true);
  }, 60_000);

  it('once the overlap has ended (a start after overlapEndsAt) the previous CA\'s certificate is refused and recorded; the new CA\'s are admitted', async () => {
    const dataDir = hub.dataDir;
    await hub.close();
    const shift = 31 * DAY_MS;
    hub = await startTestHub({ dataDir, env: { HUB_TLS: 'on' }, clock: () => new Date(Date.now() + shift) });
    port = await listen(hub);
    const bundle = readFileSync(join(hub.config.keysDir, CA_BUNDLE_FILE), 'utf8');
    expect(bundle.trim()).toBe(newCa.trim());
    // No cross certificate any more: a client trusting only the previous CA no longer verifies the hub.
    expect((await served(port, oldCa)).error).toBeDefined();
    const head = await hub.head();
    const res = await acquire(newCa, as(pension, pension.certificate));
    expect([res.status, res.body['code']]).toEqual([401, 'CLIENT_CERTIFICATE_UNTRUSTED']);
    expect(await refusalsSince(hub, head, 'AcquireAgencyCode')).toEqual([{ reason: 'CLIENT_CERTIFICATE_UNTRUSTED', agencyId: 'pension-service' }]);
    admitted(await acquire(newCa, as(pension, renewed)));
    admitted(await acquire(newCa, as(muroran, muroran.certificate)));
  }, 60_000);
});

describe('the end of an overlap in a running hub', () => {
  it('drops the previous CA from the bundle and the secure context, without a restart: its certificate refused on a new connection, the new CA\'s admitted', async () => {
    let offset = 0;
    const hub = await startTestHub({ env: { HUB_TLS: 'on' }, clock: () => new Date(Date.now() + offset) });
    try {
      await hub.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (hub.app.getHttpServer().address() as { port: number }).port;
      const oldCa = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
      const operator = { token: hub.operator['authorization']!.slice('Bearer '.length) };
      const keys = await generateAnswerKeyPair();
      const registered = await post(port, oldCa, '/v1/agencies', { agencyId: 'pension-service', name: 'pension (test)', kind: 'pension-service', endpoint: 'https://localhost:1', publicKey: keys.publicKey }, operator);
      expect(registered.status).toBe(201);
      const agency = registered.body as unknown as { token: string; certificate: IssuedPem };
      const individualNumber = (await issuePerson(hub)).individualNumber;
      const call = (ca: string, certificate: IssuedPem) => post(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: `acq-${randomBytes(4).toString('hex')}` }, { token: agency.token, cert: certificate.certificatePem, key: certificate.privateKeyPem });
      expect((await post(port, oldCa, ROTATE, { overlapDays: 1 }, operator)).status).toBe(201);
      const newCa = readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8');
      const renewed = (await post(port, newCa, '/v1/agencies/pension-service/certificates', {}, operator)).body as unknown as IssuedPem;
      admitted(await call(newCa, agency.certificate));
      // The hub's clock passes overlapEndsAt; what its timer then runs:
      offset = 2 * DAY_MS;
      await hub.app.get(TlsCaRotations).load();
      expect(readFileSync(join(hub.config.keysDir, CA_BUNDLE_FILE), 'utf8').trim()).toBe(newCa.trim());
      const head = await hub.head();
      const res = await call(newCa, agency.certificate);
      expect([res.status, res.body['code']]).toEqual([401, 'CLIENT_CERTIFICATE_UNTRUSTED']);
      expect((await hub.ledger.readAll({ fromPosition: head })).filter((e) => e.type === 'RequestRefused').map((e) => (e.data as { reason?: unknown }).reason)).toEqual(['CLIENT_CERTIFICATE_UNTRUSTED']);
      admitted(await call(newCa, renewed));
    } finally {
      await hub.dispose();
    }
  }, 60_000);
});

describe('rotation of the TLS CA key with HUB_TLS=off', () => {
  it('answers 409 TLS_NOT_ENABLED and writes nothing', async () => {
    const hub = await startTestHub();
    try {
      const head = await hub.head();
      const res = await hub.post(ROTATE, {}, hub.operator);
      expect([res.statusCode, res.json().code]).toEqual([409, 'TLS_NOT_ENABLED']);
      expect((await hub.store.readAll({ fromPosition: head })).filter((e) => e.type === 'TlsCaKeyRotated')).toEqual([]);
    } finally {
      await hub.dispose();
    }
  });
});
