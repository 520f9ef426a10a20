import { credentials } from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINKAGE_SERVICE, loadHubProtos, serviceClient } from '../../hub/src/grpc/proto-files.js';
import { GrpcServiceClient } from '../../hub/test/support/grpc-client.js';
import { ROOT, startNetwork, type Network } from '../src/network.js';
import { freePorts } from '../../../test/support/free-ports.js';


async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Every file under `dir`, as bytes. */
function filesUnder(dir: string): Buffer[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => readFileSync(f));
}

const AOYAMA_PENSION = 'P-4410-0000123';
const QUERY = { providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] };

let dataDir: string;
let network: Network;
let grpcPort: number;
let pensionNode: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'network-e2e-'));
  const [hubPort, pension, muroran, grpc, portal] = await freePorts(5);
  grpcPort = grpc!;
  network = await startNetwork({
    dataDir,
    hubPort: hubPort!,
    nodePorts: { 'jpn-pension-service': pension!, 'muroran-city': muroran! },
    grpcPort,
    portalPort: portal!,
    log: () => {},
    hubEnv: { HUB_REDIS_URL: 'off' },
  });
  pensionNode = network.nodeUrl('jpn-pension-service');
});

afterAll(async () => {
  await network?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the linkage across real processes: hub, the pension service\'s and Muroran City\'s intermediate servers', () => {
  it('serves the citizen portal beside them (as npm start does), on localhost, with its CSP, over this hub', async () => {
    expect(network.portalUrl).toMatch(/^http:\/\/localhost:\d+$/);
    const page = await fetch(`${network.portalUrl!.replace('localhost', '127.0.0.1')}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('lang="ja"');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    // A sign-in ceremony's options come from this hub, for the portal's origin.
    const session = await fetch(`${network.portalUrl!.replace('localhost', '127.0.0.1')}/api/session`);
    const csrf = ((await session.json()) as { csrfToken?: string }).csrfToken;
    const cookie = (session.headers.get('set-cookie') ?? '').split(';')[0]!;
    const options = await fetch(`${network.portalUrl!.replace('localhost', '127.0.0.1')}/api/sessions/options`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: network.portalUrl!, cookie, ...(csrf === undefined ? {} : { 'x-csrf-token': csrf }) },
      body: '{}',
    });
    expect(options.status, await options.clone().text()).toBe(200);
    expect(await options.json()).toMatchObject({ options: { rpId: 'localhost' } });
  });

  it('answers the seeds/001 query end to end over HTTP, encrypted, and Aoyama-san sees it in her record', async () => {
    const res = await post(`${pensionNode}/v1/queries`, { localId: AOYAMA_PENSION, ...QUERY, encrypt: true });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json).toMatchObject({ outcome: 'answered', items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 3120000 } } });
    const serial = String(res.json['serial']);
    const records = await fetch(`${network.hubUrl}/v1/citizens/me/provision-records`, { headers: { authorization: `Bearer ${network.aoyama.citizenSecret}` } });
    const body = (await records.json()) as { records: { serial: string; requester: { name: string }; provider: { name: string }; items: { code: string; name: string }[] }[] };
    expect(body.records.find((r) => r.serial === serial)).toMatchObject({ kind: 'query', requester: { agencyId: 'jpn-pension-service', name: '日本年金機構' }, provider: { agencyId: 'muroran-city', name: '室蘭市' }, items: [{ code: 'local-tax', name: '地方税関係情報' }] });
  });

  it('refuses an item the law does not allow, with the reason and the serial passed on by the node', async () => {
    const res = await post(`${pensionNode}/v1/queries`, { localId: AOYAMA_PENSION, ...QUERY, itemCodes: ['livelihood-protection'] });
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ code: 'ITEM_NOT_ALLOWED', serial: expect.stringMatching(/^\d{20}$/) });
  });

  it('answers over gRPC too, and an idempotent retry returns the same serial', async () => {
    const token = readFileSync(join(dataDir, 'nodes', 'jpn-pension-service', 'hub.token'), 'utf8').trim();
    const Ctor = serviceClient(loadHubProtos({ keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: false }), LINKAGE_SERVICE);
    const client = new GrpcServiceClient(new Ctor(`127.0.0.1:${grpcPort}`, credentials.createInsecure()));
    try {
      const auth = { authorization: `Bearer ${token}` };
      const { response: acquired } = await client.call<{ code: string; reacquired: boolean }>('AcquireAgencyCode', { individualNumber: network.aoyama.individualNumber, acquisitionNumber: 'E2E-1' }, auth);
      expect(acquired.reacquired).toBe(true);
      const first = await client.call<{ serial: string; outcome: string }>('Query', { code: acquired.code, ...QUERY }, { ...auth, 'idempotency-key': 'e2e-grpc-1' });
      expect(first.response.outcome).toBe('answered');
      const retry = await client.call<{ serial: string; outcome: string }>('Query', { code: acquired.code, ...QUERY }, { ...auth, 'idempotency-key': 'e2e-grpc-1' });
      expect(retry.response.serial).toBe(first.response.serial);
      expect(retry.metadata.get('idempotent-replayed')).toEqual(['true']);
      // The hub's metrics time every gRPC call by method and status.
      const metrics = await (await fetch(`${network.hubUrl}/metrics`)).text();
      expect(metrics).toMatch(/^linkage_grpc_request_duration_seconds_count\{method="\/linkage_ledger\.v1\.[A-Za-z]+\/Query",code="OK"\} [1-9]/m);
    } finally {
      client.close();
    }
  });

  it('runs a bulk query through the node: one person answered, one without a code not sent', async () => {
    const res = await post(`${pensionNode}/v1/queries/bulk`, { localIds: [AOYAMA_PENSION, 'P-4410-0000456'], ...QUERY });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    const results = res.json['results'] as { outcome: string; reason?: string }[];
    expect(results.map((r) => r.outcome)).toEqual(['answered', 'not-sent']);
  });

  it('carries a notice from Muroran\'s intermediate server to Aoyama-san\'s inbox, sealed in the hub\'s files', async () => {
    const sent = await post(`${network.nodeUrl('muroran-city')}/v1/notices`, { localId: 'M-000123', title: '児童手当のご案内', body: '申請の受付を完了しました。' });
    expect(sent.status, JSON.stringify(sent.json)).toBe(201);
    const inbox = await fetch(`${network.hubUrl}/v1/citizens/me/notices`, { headers: { authorization: `Bearer ${network.aoyama.citizenSecret}` } });
    const notices = ((await inbox.json()) as { notices: { noticeId: string; from: { agencyId: string }; title: string; body: string }[] }).notices;
    expect(notices[0]).toMatchObject({ noticeId: sent.json['noticeId'], from: { agencyId: 'muroran-city' }, title: '児童手当のご案内', body: '申請の受付を完了しました。' });
    const text = Buffer.from('申請の受付を完了しました', 'utf8');
    for (const f of readdirSync(dataDir).filter((n) => n.includes('.sqlite'))) expect(readFileSync(join(dataDir, f)).includes(text), f).toBe(false);
  });

  it('runs over plain HTTP when not told HUB_TLS=on (the hub told HUB_TLS=off, no CA made); npm run demo without HUB_TLS=off says what to do', async () => {
    expect(network.hubUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(existsSync(join(dataDir, 'keys', 'tls-ca.cert.pem'))).toBe(false);
    const demo = spawnSync(process.execPath, [join(ROOT, 'dist/apps/demo/src/demo.js')], { env: { PATH: process.env['PATH'] ?? '', HUB_DATA_DIR: dataDir, HUB_PORT: String(new URL(network.hubUrl).port) }, encoding: 'utf8', timeout: 60_000 });
    expect(demo.status).toBe(1);
    expect(demo.stderr).toContain('tls-ca.cert.pem is missing: start the network first (npm start), or, if it runs with HUB_TLS=off, run HUB_TLS=off npm run demo');
  });

  it('serves the demo corporations in the public registry: searched by location, downloaded as CSV', async () => {
    const res = await fetch(`${network.hubUrl}/v1/corporate-numbers?location=${encodeURIComponent('北海道室蘭市')}`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { corporations: { name: string }[] };
    expect(page.corporations.map((c) => c.name).sort()).toEqual(['室蘭港湾サービス合同会社', '株式会社室蘭製作所'].sort());
    const csv = await (await fetch(`${network.hubUrl}/v1/corporate-numbers.csv`)).text();
    expect(csv.split('\r\n').filter((l) => l !== '')).toHaveLength(4);
  });

  it('keeps no My Number in the hub\'s files or in either node\'s, except the demo\'s own notification file', async () => {
    const number = Buffer.from(network.aoyama.individualNumber);
    const hubFiles = readdirSync(dataDir).filter((f) => f.endsWith('.sqlite') || f.includes('.sqlite-')).map((f) => readFileSync(join(dataDir, f)));
    expect(hubFiles.length).toBeGreaterThan(0);
    for (const bytes of [...hubFiles, ...filesUnder(join(dataDir, 'nodes'))]) expect(bytes.includes(number)).toBe(false);
  });

  it('ends the query in PROVIDER_UNREACHABLE when Muroran\'s server is killed, and the serial is closed', async () => {
    const muroran = network.processes.find((p) => p.name === 'muroran-city')!;
    muroran.child.kill('SIGKILL');
    await muroran.exited;
    const res = await post(`${pensionNode}/v1/queries`, { localId: AOYAMA_PENSION, ...QUERY });
    expect(res.status).toBe(502);
    expect(res.json).toMatchObject({ code: 'PROVIDER_UNREACHABLE', serial: expect.stringMatching(/^\d{20}$/) });
    const ready = (await (await fetch(`${network.hubUrl}/health/ready`)).json()) as { openSerials: number };
    expect(ready.openSerials).toBe(0);
  });
});
