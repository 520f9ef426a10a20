import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestHub, type TestHub } from '../../hub/test/support/test-hub.js';
import { issuePerson } from '../../hub/test/support/linkage-fixture.js';
import { CA_CERT_FILE } from '../../hub/src/tls/hub-ca.js';
import { loadAgencyConfig } from '../src/config/agency-config.js';
import { tlsFetch } from '../src/hub/tls-fetch.js';
import { loadOrCreateAnswerKeys } from '../src/keys/answer-keys.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

// The intermediate server makes its own TLS key and CSR (`tls-request`), the operator registers the agency
// with that csr at a hub on HUB_TLS=on, and the node then calls the hub with mutual TLS using the key it
// never sent: the hub's answer carried no private key, and AGENCY_TLS_FILE holds none.
describe('agency-node tls-request: its own key, certified by the hub from its CSR', () => {
  let hub: TestHub;
  let hubUrl: string;
  let dataDir: string;

  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_TLS: 'on', HUB_TLS_REQUIRE_CSR: 'on' } });
    await hub.app.listen({ host: '127.0.0.1', port: 0 });
    hubUrl = `https://localhost:${(hub.app.getHttpServer().address() as { port: number }).port}`;
    dataDir = mkdtempSync(join(tmpdir(), 'agency-node-csr-'));
  }, 60_000);

  afterAll(async () => {
    await hub?.dispose();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  test('the CLI prints a CSR of keys/tls-key.pem; registered with it (HUB_TLS_REQUIRE_CSR=on), the node\'s config takes its own key and its calls are admitted', async () => {
    const env = { ...process.env, AGENCY_ID: 'sapporo-city', AGENCY_DATA_DIR: dataDir };
    const cli = async () => JSON.parse((await run('nice', ['-n', '19', process.execPath, '--conditions=source', '--import', 'tsx', 'apps/agency-node/src/main.ts', 'tls-request'], { cwd: ROOT, env })).stdout) as { csr: string; keyFile: string; keyCreated: boolean };
    const first = await cli();
    expect(first).toMatchObject({ keyFile: join(dataDir, 'keys', 'tls-key.pem'), keyCreated: true, csr: expect.stringMatching(/^-----BEGIN CERTIFICATE REQUEST-----\n/) });
    // Run again: the same key (a renewal may reuse it), not made anew.
    expect(await cli()).toMatchObject({ keyCreated: false });

    const answerKey = await loadOrCreateAnswerKeys(join(dataDir, 'keys'));
    const res = await hub.post('/v1/agencies', { agencyId: 'sapporo-city', name: '札幌市', kind: 'municipality', municipalityCode: '011002', endpoint: 'https://localhost:1', publicKey: answerKey.publicKey, csr: first.csr }, hub.operator);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.body).not.toMatch(/PRIVATE KEY/);
    const { token, certificate } = res.json<{ token: string; certificate: Record<string, unknown> }>();
    writeFileSync(join(dataDir, 'hub.token'), token, { mode: 0o600 });
    writeFileSync(join(dataDir, 'hub-tls.json'), JSON.stringify(certificate), { mode: 0o600 });

    const config = loadAgencyConfig({ AGENCY_ID: 'sapporo-city', AGENCY_DATA_DIR: dataDir, AGENCY_HUB_URL: hubUrl, AGENCY_TOKEN_FILE: join(dataDir, 'hub.token'), AGENCY_TLS_FILE: join(dataDir, 'hub-tls.json') }, { needsHub: true });
    expect(config.tls?.privateKeyPem).toBe(readFileSync(first.keyFile, 'utf8'));
    expect(config.tls?.caCertificatePem).toBe(readFileSync(join(hub.config.keysDir, CA_CERT_FILE), 'utf8'));

    const { individualNumber } = await issuePerson(hub);
    const call = await tlsFetch(config.tls!)(`${hubUrl}/v1/agency-codes`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ individualNumber, acquisitionNumber: 'acq-own-key' }) });
    expect(call.status, await call.clone().text()).toBe(201);
  }, 60_000);
});
