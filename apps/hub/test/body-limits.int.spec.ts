import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubConfigError, loadHubConfig } from '../src/config/hub-config.js';
import { NoticeBatchRunner } from '../src/notices/notice-batch-runner.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { MURORAN_CITY, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

/**
 * Body limits with the default settings: every route reads at most HUB_BODY_LIMIT_BYTES (64 KiB) but
 * `POST /v1/notice-batches`, which reads up to HUB_NOTICE_BATCH_BODY_LIMIT_BYTES (1 MiB): a nationwide
 * notice to 10,000 codes (≈ 250–300 KB) is accepted. The hub's own JSON parser has the 64 KiB limit; the
 * route's limit is the one Fastify applies to that route.
 */

const TITLE = '定額減税補足給付金のお知らせ';
const BODY = '対象の方には7月以降に通知書をお送りします。\n室蘭市 税務課';
/** Well-formed codes no person holds (each a failed recipient of the batch). */
const unknownCodes = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `${(from + i).toString(36).padStart(21, 'A')}w`);

let hub: TestHub;
let muroran: Agency;
let known: string;

beforeAll(async () => {
  hub = await startLinkageHub();
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  known = await acquire(hub, muroran, (await issuePerson(hub)).individualNumber);
}, 60_000);
afterAll(async () => {
  await hub?.dispose();
});

describe('HUB_NOTICE_BATCH_BODY_LIMIT_BYTES', () => {
  it('is read, never below HUB_BODY_LIMIT_BYTES, and checked like it', () => {
    expect(loadHubConfig({ HUB_NOTICE_BATCH_BODY_LIMIT_BYTES: '2097152' }, '/srv/hub').noticeBatches.bodyLimitBytes).toBe(2_097_152);
    expect(loadHubConfig({ HUB_NOTICE_BATCH_BODY_LIMIT_BYTES: '2048', HUB_BODY_LIMIT_BYTES: '4096' }, '/srv/hub').noticeBatches.bodyLimitBytes).toBe(4096);
    expect(() => loadHubConfig({ HUB_NOTICE_BATCH_BODY_LIMIT_BYTES: '10' }, '/srv/hub')).toThrow(HubConfigError);
    expect(() => loadHubConfig({ HUB_NOTICE_BATCH_BODY_LIMIT_BYTES: 'lots' }, '/srv/hub')).toThrow(/HUB_NOTICE_BATCH_BODY_LIMIT_BYTES/);
  });
});

describe('body limits (default settings)', () => {
  it('the defaults: 64 KiB for every route, 1 MiB for POST /v1/notice-batches', () => {
    expect(hub.config.bodyLimitBytes).toBe(65_536);
    expect(hub.config.noticeBatches.bodyLimitBytes).toBe(1_048_576);
  });

  it('POST /v1/notice-batches with 10,000 codes (over 64 KiB): 202, every code counted', async () => {
    const codes = [known, ...unknownCodes(9_999)];
    const payload = { title: TITLE, body: BODY, codes };
    expect(Buffer.byteLength(JSON.stringify(payload))).toBeGreaterThan(200 * 1024);
    const res = await hub.post('/v1/notice-batches', payload, bearer(muroran.token));
    expect(res.statusCode, res.body.slice(0, 500)).toBe(202);
    expect(res.json()).toMatchObject({ batchId: expect.any(String), total: 10_000 });
    await hub.app.get(NoticeBatchRunner, { strict: false }).idle();
  }, 120_000);

  it('POST /v1/notice-batches over its own 1 MiB: 413 PAYLOAD_TOO_LARGE naming that limit', async () => {
    const res = await hub.post('/v1/notice-batches', { title: TITLE, body: 'x'.repeat(1_100_000), codes: [known] }, bearer(muroran.token));
    expect(expectProblem(res, 413, 'PAYLOAD_TOO_LARGE')['detail']).toBe('the request body exceeds the limit of 1048576 bytes');
  });

  it('another route keeps 64 KiB: a body just over it is 413, the same route under it is not', async () => {
    const over = await hub.post('/v1/notices', { code: known, title: TITLE, body: 'x'.repeat(66 * 1024) }, bearer(muroran.token));
    expect(expectProblem(over, 413, 'PAYLOAD_TOO_LARGE')['detail']).toBe('the request body exceeds the limit of 65536 bytes');
    const batchesOnOtherRoute = await hub.post('/v1/subscriptions', { code: known, providerAgencyId: MURORAN_CITY, procedureCode: 'x', itemCodes: unknownCodes(5_000) }, bearer(muroran.token));
    expectProblem(batchesOnOtherRoute, 413, 'PAYLOAD_TOO_LARGE');
    const under = await hub.post('/v1/notices', { code: known, title: TITLE, body: 'x'.repeat(1024) }, bearer(muroran.token));
    expect(under.statusCode).not.toBe(413);
  });
});
