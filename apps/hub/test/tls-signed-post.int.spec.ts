import { createServer, type Server } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProvisionSigner } from '../src/linkage/hub-secrets.js';
import { HubCertificateAuthority, agencyIdOfCertificate, foreignCertificate, type KeyedCertificate } from '../src/tls/hub-ca.js';
import type { HubTls } from '../src/tls/hub-tls.js';
import { SignedPoster } from '../src/tls/signed-post.js';

/** An intermediate server over HTTPS with `identity`; answers who the hub's client certificate names and the signature header. */
async function intermediateServer(identity: KeyedCertificate): Promise<{ server: Server; url: string }> {
  const server = createServer({ key: identity.privateKeyPem, cert: identity.certificatePem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ client: peer.raw === undefined ? null : (agencyIdOfCertificate(peer.raw) ?? 'not an agency'), signed: typeof req.headers['hub-signature'] === 'string' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `https://localhost:${(server.address() as { port: number }).port}` };
}

describe('the hub calls intermediate servers over TLS (SignedPoster with HUB_TLS=on)', () => {
  let keysDir: string;
  let ca: HubCertificateAuthority;
  let poster: SignedPoster;
  const servers: Server[] = [];

  const post = (url: string, agencyId: string) => poster.post(new URL(`${url}/v1/pushes`), Buffer.from('{}'), { timeoutMs: 5000, maxResponseBytes: 4096, overflow: 'fail', agencyId });

  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'hub-tls-post-'));
    ca = await HubCertificateAuthority.loadOrCreate(keysDir, ['localhost', '127.0.0.1']);
    poster = new SignedPoster(ProvisionSigner.loadOrCreate(keysDir), 4, { ca, enabled: true } as unknown as HubTls);
  });

  afterAll(() => {
    poster.close();
    for (const s of servers) s.close();
    rmSync(keysDir, { recursive: true, force: true });
  });

  it('admits the server holding the certificate the hub issued to the registered agency, and presents the hub\'s own certificate to it', async () => {
    const { server, url } = await intermediateServer(await ca.issueAgencyCertificate('muroran-city', ['localhost'], new Date(), 1));
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
});
