import { createServer, type Server } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProvisionSigner } from '../src/linkage/hub-secrets.js';
import { HubCertificateAuthority, agencyIdOfCertificate, foreignCertificate, type KeyedCertificate } from '../src/tls/hub-ca.js';
import type { CertificateRecord } from '../src/tls/agency-certificates.js';
import type { HubTls } from '../src/tls/hub-tls.js';
import { SignedPoster } from '../src/tls/signed-post.js';

/** An intermediate server over HTTPS with `identity`; answers who the hub's client certificate names and the signature header. */
async function intermediateServer(identity: KeyedCertificate): Promise<{ server: Server; url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer({ key: identity.privateKeyPem, cert: identity.certificatePem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    requests++;
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ client: peer.raw === undefined ? null : (agencyIdOfCertificate(peer.raw) ?? 'not an agency'), signed: typeof req.headers['hub-signature'] === 'string' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `https://localhost:${(server.address() as { port: number }).port}`, requests: () => requests };
}

describe('the hub calls intermediate servers over TLS (SignedPoster with HUB_TLS=on)', () => {
  let keysDir: string;
  let ca: HubCertificateAuthority;
  let poster: SignedPoster;
  const servers: Server[] = [];
  /** What the log records per agency (AgencyCertificates' records), as the test issues and revokes. */
  const recorded = new Map<string, Map<string, CertificateRecord>>();
  const record = (agencyId: string, issued: KeyedCertificate & { serialNumber: string; fingerprint: string; notBefore: string; notAfter: string }, status: CertificateRecord['status'] = 'issued') => {
    const records = recorded.get(agencyId) ?? new Map<string, CertificateRecord>();
    records.set(issued.fingerprint, { agencyId, serialNumber: issued.serialNumber, fingerprint: issued.fingerprint, notBefore: issued.notBefore, notAfter: issued.notAfter, status });
    recorded.set(agencyId, records);
  };

  const post = (url: string, agencyId: string) => poster.post(new URL(`${url}/v1/pushes`), Buffer.from('{}'), { timeoutMs: 5000, maxResponseBytes: 4096, overflow: 'fail', agencyId });

  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'hub-tls-post-'));
    ca = await HubCertificateAuthority.loadOrCreate(keysDir, ['localhost', '127.0.0.1']);
    const certificates = { records: async (agencyId: string) => new Map(recorded.get(agencyId) ?? []) };
    poster = new SignedPoster(ProvisionSigner.loadOrCreate(keysDir), 4, { ca, enabled: true, certificates } as unknown as HubTls);
  });

  afterAll(() => {
    poster.close();
    for (const s of servers) s.close();
    rmSync(keysDir, { recursive: true, force: true });
  });

  it('admits the server holding the certificate the hub issued to the registered agency, and presents the hub\'s own certificate to it', async () => {
    const issued = await ca.issueAgencyCertificate('muroran-city', ['localhost'], new Date(), 1);
    record('muroran-city', issued);
    const { server, url } = await intermediateServer(issued);
    servers.push(server);
    const result = await post(url, 'muroran-city');
    expect(result.kind).toBe('answered');
    expect(JSON.parse((result as { body: Buffer }).body.toString())).toEqual({ client: 'not an agency', signed: true });
  });

  it('refuses a server holding another agency\'s certificate of the same CA (the endpoint is not that agency\'s)', async () => {
    const { server, url } = await intermediateServer(await ca.issueAgencyCertificate('pension-service', ['localhost'], new Date(), 1));
    servers.push(server);
    const result = await post(url, 'muroran-city');
    expect(result).toMatchObject({ kind: 'failed', reason: 'unreachable', detail: expect.stringMatching(/agency pension-service's, but the endpoint is registered for agency muroran-city/) });
  });

  it('refuses a server whose certificate another CA issued', async () => {
    const { server, url } = await intermediateServer(await foreignCertificate('muroran-city'));
    servers.push(server);
    const result = await post(url, 'muroran-city');
    expect(result).toMatchObject({ kind: 'failed', reason: 'unreachable' });
  });

  it('refuses a server whose certificate of the registered agency the log revoked, from the next call on, on the kept-alive connection too; a renewed one is called', async () => {
    const issued = await ca.issueAgencyCertificate('sapporo-city', ['localhost'], new Date(), 1);
    record('sapporo-city', issued);
    const { server, url, requests } = await intermediateServer(issued);
    servers.push(server);
    expect((await post(url, 'sapporo-city')).kind).toBe('answered');
    expect(requests()).toBe(1);
    record('sapporo-city', issued, 'revoked');
    // The second call would go over the connection the first left open: it is refused before its body is sent.
    const refused = await post(url, 'sapporo-city');
    expect(refused).toMatchObject({ kind: 'failed', reason: 'unreachable', detail: expect.stringMatching(new RegExp(`certificate ${issued.fingerprint} of agency sapporo-city is revoked \\(AgencyCertificateRevoked\\)`)) });
    expect(requests()).toBe(1);
    // A new connection is refused in its handshake the same way.
    poster.close();
    poster = new SignedPoster(ProvisionSigner.loadOrCreate(keysDir), 4, { ca, enabled: true, certificates: { records: async (agencyId: string) => new Map(recorded.get(agencyId) ?? []) } } as unknown as HubTls);
    expect(await post(url, 'sapporo-city')).toMatchObject({ kind: 'failed', reason: 'unreachable', detail: expect.stringMatching(/is revoked \(AgencyCertificateRevoked\)/) });
    expect(requests()).toBe(1);
    // The agency's server, given its renewed certificate, is called again.
    const renewed = await ca.issueAgencyCertificate('sapporo-city', ['localhost'], new Date(), 1);
    record('sapporo-city', renewed);
    server.setSecureContext({ key: renewed.privateKeyPem, cert: renewed.certificatePem });
    expect((await post(url, 'sapporo-city')).kind).toBe('answered');
    expect(requests()).toBe(2);
  });

  it('refuses a server holding a certificate of the hub CA for the registered agency that the log does not record', async () => {
    const stray = await ca.issueAgencyCertificate('jasso', ['localhost'], new Date(), 1);
    const { server, url, requests } = await intermediateServer(stray);
    servers.push(server);
    expect(await post(url, 'jasso')).toMatchObject({ kind: 'failed', reason: 'unreachable', detail: expect.stringMatching(/names agency jasso, but the log records no such certificate issued to it/) });
    expect(requests()).toBe(0);
  });

  it('checks every new connection in a full handshake: a server that closed its connections is refused after a revocation, no TLS session resumed unchecked', async () => {
    const issued = await ca.issueAgencyCertificate('kushiro-city', ['localhost'], new Date(), 1);
    record('kushiro-city', issued);
    const { server, url, requests } = await intermediateServer(issued);
    servers.push(server);
    for (let i = 0; i < 3; i++) expect((await post(url, 'kushiro-city')).kind).toBe('answered');
    // The server drops the kept-alive connections: the next call opens a new one, which could resume the
    // TLS session of the last (no certificate exchanged, no checkServerIdentity).
    server.closeAllConnections();
    record('kushiro-city', issued, 'revoked');
    await new Promise((r) => setTimeout(r, 100));
    expect(await post(url, 'kushiro-city')).toMatchObject({ kind: 'failed', reason: 'unreachable', detail: expect.stringMatching(/of agency kushiro-city is revoked \(AgencyCertificateRevoked\)/) });
    expect(requests()).toBe(3);
  });
});
