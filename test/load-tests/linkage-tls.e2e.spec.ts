import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsFetch } from '../../apps/agency-node/src/hub/tls-fetch.js';
import { queryBodies, runPhase, tlsOptionsOf, verifyServerCertificate } from '../../load-tests/runner/drive.js';
import { refusesPlainHttp, settledReadiness, startLinkageNetwork, type LinkageNetwork } from '../../load-tests/runner/network.js';

// `npm run load:linkage -- --tls on`: the network it starts runs over TLS, and the load presents the requester's certificate.
describe('the linkage load network with HUB_TLS=on', () => {
  let network: LinkageNetwork;

  beforeAll(async () => {
    network = await startLinkageNetwork({ people: 3, redisUrl: 'redis://127.0.0.1:6379', tls: true, log: () => {} });
  }, 120_000);
  afterAll(async () => {
    await network?.close();
  });

  it('serves the hub and the node over https and carries the pension service\'s client certificate in the fixture', () => {
    expect(network.tls).toBe(true);
    expect(network.hubUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(network.nodeUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(network.providerEndpoint).toBe(network.nodeUrl);
    expect(network.fixture.hubUrl).toBe(network.hubUrl);
    expect(network.fixture.tls?.certificatePem).toContain('-----BEGIN CERTIFICATE-----');
    expect(tlsOptionsOf(network.fixture)).toEqual({ ca: network.fixture.tls!.caCertificatePem, cert: network.fixture.tls!.certificatePem, key: network.fixture.tls!.privateKeyPem });
  });

  it('refuses plain HTTP on the hub\'s port', async () => {
    expect(await refusesPlainHttp(network.hubUrl)).toBe(true);
  });

  it("shows a certificate that chains to the hub's CA and names 127.0.0.1, and none other verifies it", async () => {
    const tls = network.fixture.tls!;
    const verified = await verifyServerCertificate(network.hubUrl, tls);
    expect(verified.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(verified.subjectAltName).toContain('IP Address:127.0.0.1');
    // Trusting only the agency's own leaf certificate instead of the CA: the hub's certificate does not verify.
    await expect(verifyServerCertificate(network.hubUrl, { ...tls, caCertificatePem: tls.certificatePem })).rejects.toThrow();
  });

  it('answers every query of a short phase presenting the client certificate', async () => {
    const result = await runPhase(network.fixture, queryBodies(network.fixture), { name: 'max', connections: 2, durationSeconds: 2, timeoutSeconds: 10 });
    expect(result.requests).toBeGreaterThan(0);
    expect(result.errors).toBe(0);
    expect(result.statuses['200']).toBe(result.requests);
    expect((await settledReadiness(network.hubUrl, 30_000, network.web)).body['openSerials']).toBe(0);
  });

  it("refuses the pension service's token without its certificate (so each answered query above was mutual TLS)", async () => {
    const trustingOnly = tlsFetch({ caCertificatePem: network.fixture.tls!.caCertificatePem });
    const res = await trustingOnly(`${network.hubUrl}/v1/queries`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${network.fixture.requesterToken}` }, body: queryBodies(network.fixture)[0]! });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('CLIENT_CERTIFICATE_REQUIRED');
  });
});
