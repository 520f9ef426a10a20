import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHubConfig } from '../src/config/hub-config.js';
import { createHubApp } from '../src/hub-app.js';
import { hubMetricsOf } from '../src/metrics/install-hub-metrics.js';
import { parseExposition, sampleSum as value, type Sample } from '#metrics';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

let hub: TestHub;
const provider = new FakeProvider();
let pension: Agency;
let muroran: Agency;
let person: { individualNumber: string; citizenSecret: string; residentRecordCode: string };
let codeA: string;
let codeB: string;

async function scrape(): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  const res = await hub.get('/metrics');
  expect(res.statusCode, res.body).toBe(200);
  return { text: res.body, samples: parseExposition(res.body), contentType: String(res.headers['content-type']) };
}

beforeAll(async () => {
  hub = await startLinkageHub();
  await provider.start(hub);
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  person = await issuePerson(hub);
  codeA = await acquire(hub, pension, person.individualNumber, 'JPS-M-1');
  codeB = await acquire(hub, muroran, person.individualNumber, 'MRN-M-1');
  provider.behaviours.set(codeB, { answer: { 'local-tax': { fiscalYear: 2026 } } });
});

afterAll(async () => {
  await provider.stop();
  await hub?.dispose();
});

describe('GET /metrics on the hub', () => {
  it('answers the Prometheus text exposition format, every name prefixed linkage_', async () => {
    const { text, samples, contentType } = await scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain('# TYPE linkage_http_request_duration_seconds histogram');
    expect(samples.length).toBeGreaterThan(20);
    for (const s of samples) expect(s.name).toMatch(/^linkage_/);
    // Process metrics on the hub's own registry.
    expect(value(samples, 'linkage_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(value(samples, 'linkage_ledger_head_events')).toBe(await hub.head());
    // Exactly one mode at a time; this hub has Redis configured (so a breaker state too).
    expect(value(samples, 'linkage_mapper_mode')).toBe(1);
    expect(value(samples, 'linkage_mapper_mode', { mode: 'store' })).toBe(0);
    expect(value(samples, 'linkage_mapper_breaker_state')).toBe(1);
    // No Kafka relay runs: no relay lag.
    expect(samples.some((s) => s.name === 'linkage_relay_lag_events')).toBe(false);
  });

  it('moves the route histogram and the provider latency of that agency after a query, and the batch metrics after its appends', async () => {
    const before = (await scrape()).samples;
    const route = { route: '/v1/queries', method: 'POST', status_class: '2xx' };
    const res = await hub.post('/v1/queries', { code: codeA, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pension.token));
    expect(res.statusCode, res.body).toBe(200);
    const after = (await scrape()).samples;
    expect(value(after, 'linkage_http_request_duration_seconds_count', route) - value(before, 'linkage_http_request_duration_seconds_count', route)).toBe(1);
    expect(value(after, 'linkage_http_request_duration_seconds_sum', route)).toBeGreaterThan(value(before, 'linkage_http_request_duration_seconds_sum', route));
    const call = { agency: MURORAN_CITY, call: 'single', outcome: 'answered' };
    expect(value(after, 'linkage_provider_request_duration_seconds_count', call) - value(before, 'linkage_provider_request_duration_seconds_count', call)).toBe(1);
    expect(value(after, 'linkage_provider_request_duration_seconds_sum', call)).toBeGreaterThan(value(before, 'linkage_provider_request_duration_seconds_sum', call));
    // Each step of the query once; together they took less than the HTTP request that held them.
    let steps = 0;
    for (const stage of ['translate', 'record', 'provider', 'end']) {
      expect(value(after, 'linkage_query_stage_seconds_count', { stage }) - value(before, 'linkage_query_stage_seconds_count', { stage }), stage).toBe(1);
      const took = value(after, 'linkage_query_stage_seconds_sum', { stage }) - value(before, 'linkage_query_stage_seconds_sum', { stage });
      expect(took, stage).toBeGreaterThan(0);
      steps += took;
    }
    expect(steps).toBeLessThan(value(after, 'linkage_http_request_duration_seconds_sum', route) - value(before, 'linkage_http_request_duration_seconds_sum', route));
    // The query appended its events in at least two batches (accepted, then answered and completed).
    expect(value(after, 'linkage_ledger_batch_events_count') - value(before, 'linkage_ledger_batch_events_count')).toBeGreaterThanOrEqual(2);
    expect(value(after, 'linkage_ledger_batch_events_sum') - value(before, 'linkage_ledger_batch_events_sum')).toBeGreaterThanOrEqual(4);
    expect(value(after, 'linkage_ledger_batch_commit_seconds_count', { outcome: 'committed' })).toBeGreaterThan(value(before, 'linkage_ledger_batch_commit_seconds_count', { outcome: 'committed' }));
    expect(value(after, 'linkage_ledger_appended_events_total') - value(before, 'linkage_ledger_appended_events_total')).toBeGreaterThanOrEqual(4);
    expect(value(after, 'linkage_ledger_open_serials')).toBe(0);
  });

  it('observes each request once, HEAD and errors included, under the route that answered it', async () => {
    const before = (await scrape()).samples;
    await hub.inject({ method: 'HEAD', url: '/health/live' });
    await hub.get('/health/live');
    await hub.get('/v1/agencies/no-such-agency');
    const after = (await scrape()).samples;
    const delta = (labels: Record<string, string>) => value(after, 'linkage_http_request_duration_seconds_count', labels) - value(before, 'linkage_http_request_duration_seconds_count', labels);
    expect(delta({ route: '/health/live', method: 'HEAD' })).toBe(1);
    expect(delta({ route: '/health/live', method: 'GET', status_class: '2xx' })).toBe(1);
    expect(delta({ route: '/v1/agencies/:agencyId', method: 'GET', status_class: '4xx' })).toBe(1);
    expect(delta({ route: '(unmatched)' })).toBe(0);
  });

  it('reads tree lag and checkpoint age at scrape time', async () => {
    const { samples } = await scrape();
    const lag = value(samples, 'linkage_tree_lag_events');
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(value(samples, 'linkage_tree_size_events') + lag).toBe(value(samples, 'linkage_ledger_head_events'));
    // No checkpoint is signed in this test's hour: NaN, not a made-up age.
    expect(Number.isNaN(value(samples, 'linkage_checkpoint_age_seconds'))).toBe(true);
  });

  it('routes unmatched requests to one label, and no label value holds a code, number, secret, token or serial', async () => {
    await hub.get(`/v1/individual-numbers/${person.individualNumber}`);
    await hub.get(`/nothing/${codeA}?code=${codeB}`);
    const refused = await hub.post('/v1/queries', { code: codeA, providerAgencyId: MURORAN_CITY, procedureCode: 'no-such-procedure', itemCodes: ['local-tax'] }, bearer(pension.token));
    const serial = (refused.json() as { serial?: string }).serial;
    const { samples } = await scrape();
    expect(value(samples, 'linkage_http_request_duration_seconds_count', { route: '(unmatched)' })).toBeGreaterThanOrEqual(2);
    const values = samples.flatMap((s) => Object.values(s.labels));
    const secrets = [person.individualNumber, person.residentRecordCode, person.citizenSecret, codeA, codeB, pension.token, muroran.token, ...(serial === undefined ? [] : [serial])];
    for (const v of values) {
      for (const secret of secrets) expect(v.includes(secret), `label value ${v}`).toBe(false);
      expect(v, 'a label value of 11 or more digits').not.toMatch(/\d{11,}/);
    }
    // Bounded: the route label holds templates only.
    const routes = new Set(samples.filter((s) => s.name.startsWith('linkage_http_request_duration_seconds')).map((s) => s.labels['route']));
    for (const r of routes) expect(r === '(unmatched)' || r!.startsWith('/'), String(r)).toBe(true);
  });

  it('keeps one registry per application', () => {
    expect(hubMetricsOf(hub.app)).toBeDefined();
    expect(hubMetricsOf(hub.app)!.registry.getSingleMetric('linkage_http_request_duration_seconds')).toBeDefined();
  });
});

describe('the hub\'s metrics with Redis unreachable, a Kafka relay that cannot deliver, and checkpoints signed', () => {
  let other: TestHub;
  const node = new FakeProvider();

  beforeAll(async () => {
    // Nothing listens on port 9: Redis is unreachable (the store answers) and so is the broker (nothing is acknowledged).
    other = await startLinkageHub({ env: { HUB_REDIS_URL: 'redis://127.0.0.1:9', HUB_KAFKA_BROKERS: '127.0.0.1:9', HUB_CHECKPOINT_EVERY_EVENTS: '4', HUB_CHECKPOINT_EVERY_MS: '3600000' } });
    await node.start(other);
  });
  afterAll(async () => {
    await node.stop();
    await other?.dispose();
  });

  it('reports the mapper degraded, counts the translations the store answered, the relay lag and the checkpoint age', async () => {
    const a = await registerAgency(other, PENSION, 'pension-service', 'http://127.0.0.1:9');
    const b = await registerAgency(other, MURORAN_CITY, 'municipality', node.endpoint);
    const p = await issuePerson(other);
    const code = await acquire(other, a, p.individualNumber, 'JPS-M-2');
    node.behaviours.set(await acquire(other, b, p.individualNumber, 'MRN-M-2'), { answer: { 'local-tax': { fiscalYear: 2026 } } });
    const samplesOf = async () => parseExposition((await other.get('/metrics')).body);
    const before = await samplesOf();
    const res = await other.post('/v1/queries', { code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(a.token));
    expect(res.statusCode, res.body).toBe(200);
    // The checkpoint signer signs once 4 events are new; the tree follows the log within its poll.
    const deadline = Date.now() + 10_000;
    let after = await samplesOf();
    while (Number.isNaN(value(after, 'linkage_checkpoint_age_seconds')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      after = await samplesOf();
    }
    expect(value(after, 'linkage_mapper_mode', { mode: 'degraded' })).toBe(1);
    expect(value(after, 'linkage_mapper_breaker_state', { state: 'closed' })).toBe(0);
    expect(value(after, 'linkage_mapper_fallback_calls_total', { operation: 'translate' }) - value(before, 'linkage_mapper_fallback_calls_total', { operation: 'translate' })).toBe(1);
    const head = value(after, 'linkage_ledger_head_events');
    expect(value(after, 'linkage_relay_lag_events', { topic: 'linkage-ledger.events' })).toBe(head);
    const age = value(after, 'linkage_checkpoint_age_seconds');
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(60);
    expect(value(after, 'linkage_checkpoint_size_events')).toBeGreaterThan(0);
  });
});

describe('JSON logs of the hub (pino, Fastify\'s logger)', () => {
  let app: NestFastifyApplication;
  let dataDir: string;
  const lines: string[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'hub-logs-'));
    const config = loadHubConfig({ HUB_DATA_DIR: dataDir, HUB_AUTHORIZATION_TABLE_FILE: 'none', HUB_SELF_DISCLOSURE_TABLE_FILE: 'none', HUB_REDIS_URL: 'off', HUB_CHECKPOINT_EVERY_MS: '3600000', HUB_LOG_LEVEL: 'debug' });
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
    ({ app } = await createHubApp(config, { logStream: stream }));
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  });

  afterAll(async () => {
    await app?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes one JSON object per line: Nest\'s lines and one line per request with its id, route and serial; no header or body', async () => {
    const operator = (await import('node:fs')).readFileSync(join(dataDir, 'keys', 'operator.token.json'), 'utf8');
    const token = (JSON.parse(operator) as { token: string }).token;
    const res = await app.inject({
      method: 'POST',
      url: '/v1/individual-numbers',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-correlation-id': 'caller-id-1', cookie: 'a=b' },
      payload: JSON.stringify({ residentRecordCode: '31415926535', municipalityCode: '012050' }),
    });
    expect(res.statusCode, res.body).toBe(201);
    const answer = res.json<{ serial: string; individualNumber: string; citizenSecret: string }>();
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.some((l) => l['context'] === 'RoutesResolver' || typeof l['context'] === 'string')).toBe(true);
    const line = parsed.find((l) => l['msg'] === 'request' && l['route'] === '/v1/individual-numbers');
    // A command that succeeded is in the log already: its line is debug.
    expect(line).toMatchObject({ level: 'debug', app: 'hub', method: 'POST', status: 201, serial: answer.serial, correlationId: res.headers['x-request-id'] });
    // A refusal is info, with the serial of its RequestRefused.
    const refused = await app.inject({ method: 'POST', url: '/v1/individual-numbers', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, payload: JSON.stringify({ residentRecordCode: '31415926535', municipalityCode: '012050' }) });
    expect(refused.statusCode).toBe(409);
    const refusedSerial = (refused.json() as { serial?: string }).serial;
    expect(refusedSerial).toMatch(/^\d{20}$/);
    const refusal = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'request' && l['status'] === 409);
    expect(refusal).toMatchObject({ level: 'info', route: '/v1/individual-numbers', serial: refusedSerial });
    const all = lines.join('\n');
    for (const secret of [token, answer.individualNumber, answer.citizenSecret, '31415926535', 'caller-id-1', 'a=b']) expect(all).not.toContain(secret);
  });
});
