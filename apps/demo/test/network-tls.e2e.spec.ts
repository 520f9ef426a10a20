import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsFetch } from '../../agency-node/src/hub/tls-fetch.js';
import { startNetwork, type Network } from '../src/network.js';
import { freePorts } from '../../../test/support/free-ports.js';

const QUERY = { localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], encrypt: true };

let dataDir: string;
let network: Network;
let ca: string;
let trusting: typeof fetch;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'network-tls-e2e-'));
  const [hubPort, pension, muroran, portal] = await freePorts(4);
  network = await startNetwork({
    dataDir,
    hubPort: hubPort!,
    nodePorts: { 'jpn-pension-service': pension!, 'muroran-city': muroran! },
    portalPort: portal!,
    log: () => {},
    hubEnv: { HUB_REDIS_URL: 'off', HUB_TLS: 'on' },
  });
  ca = readFileSync(join(dataDir, 'keys', 'tls-ca.cert.pem'), 'utf8');
  trusting = tlsFetch({ caCertificatePem: ca });
}, 180_000);

afterAll(async () => {
  await network?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the demo network with HUB_TLS=on: TLS on every hop, mutual for the agencies', () => {
  it('serves the hub and both intermediate servers over HTTPS with certificates of the hub\'s CA', async () => {
    expect(network.hubUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(network.nodeUrl('muroran-city')).toMatch(/^https:/);
    for (const url of [network.hubUrl, network.nodeUrl('jpn-pension-service'), network.nodeUrl('muroran-city')]) {
      expect((await trusting(`${url}/health/live`)).status).toBe(200);
    }
    // Node's own fetch does not trust the demo CA: the certificate is not a public one.
    await expect(fetch(`${network.hubUrl}/health/live`)).rejects.toThrow();
    // Each node keeps what its registration answered (0600): a certificate of the key of its own CSR
    // (tls-request), no private key: the key stays in the node's keys/tls-key.pem, and the hub never held it.
    const file = join(dataDir, 'nodes', 'muroran-city', 'hub-tls.json');
    expect(statSync(file).mode & 0o077).toBe(0);
    const kept = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(kept).toMatchObject({ caCertificatePem: ca, certificatePem: expect.stringContaining('BEGIN CERTIFICATE'), keyOrigin: 'agency' });
    expect(kept).not.toHaveProperty('privateKeyPem');
    expect(statSync(join(dataDir, 'nodes', 'muroran-city', 'keys', 'tls-key.pem')).mode & 0o077).toBe(0);
  });

  it('answers the seeds/001 query end to end: pension node → hub (mutual TLS) → Muroran node (checked against its registration)', async () => {
    const res = await trusting(`${network.nodeUrl('jpn-pension-service')}/v1/queries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(QUERY) });
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body['outcome']).toBe('answered');
  });

  it('refuses the pension service\'s token without its certificate: 401 CLIENT_CERTIFICATE_REQUIRED', async () => {
    const token = readFileSync(join(dataDir, 'nodes', 'jpn-pension-service', 'hub.token'), 'utf8').trim();
    const res = await trusting(`${network.hubUrl}/v1/agency-codes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ individualNumber: network.aoyama.individualNumber, acquisitionNumber: 'e2e-tls' }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('CLIENT_CERTIFICATE_REQUIRED');
  });
});

describe('a data dir first run over plain HTTP (HUB_TLS=off), then with TLS on (npm start after an upgrade)', () => {
  it('issues each node its certificate by a renewal, moves the endpoints to https and answers the seeds/001 query over TLS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'network-tls-upgrade-'));
    let again: Network | undefined;
    try {
      const [hubPort, pension, muroran] = await freePorts(3);
      const options = { dataDir: dir, hubPort: hubPort!, nodePorts: { 'jpn-pension-service': pension!, 'muroran-city': muroran! }, log: () => {} };
      const plain = await startNetwork({ ...options, hubEnv: { HUB_REDIS_URL: 'off', HUB_TLS: 'off' } });
      expect(plain.hubUrl).toMatch(/^http:/);
      await plain.stop();
      again = await startNetwork({ ...options, hubEnv: { HUB_REDIS_URL: 'off', HUB_TLS: 'on' } });
      const upgraded = tlsFetch({ caCertificatePem: readFileSync(join(dir, 'keys', 'tls-ca.cert.pem'), 'utf8') });
      const certificates = (await (await upgraded(`${again.hubUrl}/v1/agencies/muroran-city/certificates`)).json()) as { certificates: { status: string }[] };
      expect(certificates.certificates).toEqual([expect.objectContaining({ status: 'issued', keyOrigin: 'agency' })]);
      // Muroran's node now serves HTTPS only: the answer below came through its endpoint moved to https.
      const res = await upgraded(`${again.nodeUrl('jpn-pension-service')}/v1/queries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(QUERY) });
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body['outcome']).toBe('answered');
    } finally {
      await again?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
