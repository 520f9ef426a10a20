import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agencyCodeFromRandomBytes } from '#linkage';
import { parseExposition, sampleSum as value } from '#metrics';
import { createAgencyAppWithLogs, type AgencyApp } from '../src/agency-app.js';
import { agencyMetricsOf } from '../src/metrics/agency-metrics.js';
import { demoCopies, startTestNode, testSigner, type TestNode } from './support/agency-fixture.js';

const NOW = new Date('2026-11-29T09:00:00.000Z');
const signer = testSigner();
const code = agencyCodeFromRandomBytes(randomBytes(16));
let node: TestNode;

let serial = 0;
function provision(overrides: Record<string, unknown> = {}): string {
  serial += 1;
  return JSON.stringify({
    protocol: 'linkage-ledger/provision/v1',
    serial: `2026112901${String(serial).padStart(10, '0')}`,
    queryId: randomUUID(),
    requesterAgencyId: 'jpn-pension-service',
    requesterKind: 'pension-service',
    providerAgencyId: 'muroran-city',
    code,
    procedureCode: 'pension-award-claim',
    itemCodes: ['local-tax'],
    requestedAt: NOW.toISOString(),
    ...overrides,
  });
}

async function scrape(app = node.app) {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode, res.body).toBe(200);
  return { contentType: String(res.headers['content-type']), samples: parseExposition(res.body) };
}

beforeAll(async () => {
  node = await startTestNode({ agencyId: 'muroran-city', signer, now: NOW });
  node.runtime.store.loadCopies(demoCopies('muroran-city'), NOW);
  node.runtime.store.setAgencyCode('M-000123', code, NOW.toISOString());
});
afterAll(async () => node.close());

describe('GET /metrics on the intermediate server', () => {
  it('answers the Prometheus text exposition format, every name prefixed linkage_, process metrics included', async () => {
    const { contentType, samples } = await scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const s of samples) expect(s.name).toMatch(/^linkage_/);
    expect(value(samples, 'linkage_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(agencyMetricsOf(node.app)).toBeDefined();
  });

  it('moves the route histogram and the provision histogram by outcome; no label value holds the code or the serial', async () => {
    const before = (await scrape()).samples;
    const body = provision();
    const answered = await node.app.inject({ method: 'POST', url: '/v1/provisions', headers: { 'content-type': 'application/json', 'hub-signature': signer.sign(body) }, payload: body });
    expect(answered.statusCode, answered.body).toBe(200);
    const forged = provision();
    const rejected = await node.app.inject({ method: 'POST', url: '/v1/provisions', headers: { 'content-type': 'application/json', 'hub-signature': signer.sign(`${forged} `) }, payload: forged });
    expect(rejected.statusCode).toBeGreaterThanOrEqual(400);
    await node.app.inject({ method: 'GET', url: `/v1/anything/${code}` });
    const after = (await scrape()).samples;
    const route = { route: '/v1/provisions', method: 'POST', status_class: '2xx' };
    expect(value(after, 'linkage_http_request_duration_seconds_count', route) - value(before, 'linkage_http_request_duration_seconds_count', route)).toBe(1);
    expect(value(after, 'linkage_http_request_duration_seconds_count', { route: '/v1/provisions', status_class: '4xx' }) - value(before, 'linkage_http_request_duration_seconds_count', { route: '/v1/provisions', status_class: '4xx' })).toBe(1);
    expect(value(after, 'linkage_agency_provision_duration_seconds_count', { call: 'single', outcome: 'answered' }) - value(before, 'linkage_agency_provision_duration_seconds_count', { call: 'single', outcome: 'answered' })).toBe(1);
    expect(value(after, 'linkage_agency_provision_duration_seconds_count', { call: 'single', outcome: 'rejected' }) - value(before, 'linkage_agency_provision_duration_seconds_count', { call: 'single', outcome: 'rejected' })).toBe(1);
    expect(value(after, 'linkage_http_request_duration_seconds_count', { route: '(unmatched)' })).toBeGreaterThanOrEqual(1);
    for (const s of after) {
      for (const v of Object.values(s.labels)) {
        expect(v).not.toContain(code);
        expect(v, 'a label value of 11 or more digits').not.toMatch(/\d{11,}/);
      }
    }
  });
});

describe('JSON logs of the intermediate server', () => {
  let second: AgencyApp;
  const lines: string[] = [];

  beforeAll(async () => {
    let rest = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        rest += chunk.toString('utf8');
        const parts = rest.split('\n');
        rest = parts.pop()!;
        lines.push(...parts);
        done();
      },
    });
    // A second application over the same runtime, logging at `debug` into the stream.
    second = await createAgencyAppWithLogs({ ...node.runtime, config: { ...node.runtime.config, logLevel: 'debug' } }, { logStream: stream });
    await second.app.init();
    await second.app.getHttpAdapter().getInstance().ready();
  });
  // Not closed: the runtime's store belongs to the first application, which closes it.

  it('writes one JSON line per request with its id, route and status; never the code, the answer or the signature', async () => {
    const body = provision();
    const res = await second.app.inject({ method: 'POST', url: '/v1/provisions', headers: { 'content-type': 'application/json', 'hub-signature': signer.sign(body) }, payload: body });
    expect(res.statusCode, res.body).toBe(200);
    const answer = (res.json() as { answer: string }).answer;
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = parsed.find((l) => l['msg'] === 'request' && l['route'] === '/v1/provisions');
    // A success at debug, a refusal at info.
    expect(line).toMatchObject({ level: 'debug', app: 'agency-node', method: 'POST', status: 200, correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const forged = provision();
    expect((await second.app.inject({ method: 'POST', url: '/v1/provisions', headers: { 'content-type': 'application/json', 'hub-signature': signer.sign(`${forged} `) }, payload: forged })).statusCode).toBeGreaterThanOrEqual(400);
    const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'request' && l['route'] === '/v1/provisions' && l['status'] !== 200);
    expect(refused).toMatchObject({ level: 'info', method: 'POST' });
    const all = lines.join('\n');
    for (const secret of [code, answer, 'M-000123', signer.sign(body)]) expect(all).not.toContain(secret);
  });
});
