import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoticeBatchRunner } from '../src/notices/notice-batch-runner.service.js';
import { NOTICE_BATCHES_SERVICE } from '../src/notices/notice-batches.grpc-service.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcServiceClient, type GrpcTestHub } from './support/grpc-client.js';
import { MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { expectNothingButRefusals } from './support/test-hub.js';

let g: GrpcTestHub;
let muroran: Agency;
let pension: Agency;
let client: GrpcServiceClient;
const codes: string[] = [];

beforeAll(async () => {
  g = await startGrpcTestHub();
  muroran = await registerAgency(g.hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  pension = await registerAgency(g.hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  for (let i = 0; i < 3; i++) codes.push(await acquire(g.hub, muroran, (await issuePerson(g.hub)).individualNumber));
  client = g.client(NOTICE_BATCHES_SERVICE);
}, 60_000);
afterAll(async () => {
  await g?.dispose();
});

describe('linkage_ledger.v1.NoticeBatches over gRPC', () => {
  it('StartNoticeBatch, then GetNoticeBatch and ListNoticeBatches show its progress to the sending agency only', async () => {
    const { response: started } = await client.call<{ batchId: string; serial: string; total: number }>('StartNoticeBatch', { title: 'お知らせ', body: '本文', codes: [codes[0], codes[1]] }, bearer(muroran.token));
    expect(started).toEqual({ batchId: expect.stringMatching(/^[0-9a-f-]{36}$/), serial: expect.stringMatching(/^\d{20}$/), total: 2 });
    await g.hub.app.get(NoticeBatchRunner, { strict: false }).idle();
    let got: Record<string, unknown> = {};
    for (let i = 0; i < 50 && got['status'] !== 'completed'; i++) {
      got = (await client.call('GetNoticeBatch', { batchId: started.batchId }, bearer(muroran.token))).response;
      if (got['status'] !== 'completed') await new Promise((r) => setTimeout(r, 50));
    }
    expect(got).toMatchObject({ batchId: started.batchId, status: 'completed', audience: 'codes', total: 2, delivered: 2, pending: 0, failed: 0, serial: started.serial });
    const { response: list } = await client.call<{ batches: { batchId: string }[] }>('ListNoticeBatches', { limit: 10 }, bearer(muroran.token));
    expect(list.batches.map((b) => b.batchId)).toContain(started.batchId);
    await expectGrpcProblem(client.call('GetNoticeBatch', { batchId: started.batchId }, bearer(pension.token)), GrpcStatus.NOT_FOUND, 'UNKNOWN_NOTICE_BATCH');
  });

  it('audience "all" counts every holder of the agency\'s codes', async () => {
    const { response } = await client.call<{ total: number }>('StartNoticeBatch', { title: '全員へ', body: '本文', audience: 'all' }, bearer(muroran.token));
    expect(response.total).toBe(codes.length);
    await g.hub.app.get(NoticeBatchRunner, { strict: false }).idle();
  });

  it('refuses bad input with INVALID_ARGUMENT, recording only the refusal', async () => {
    const head = await g.hub.head();
    await expectGrpcProblem(client.call('StartNoticeBatch', { title: 'お知らせ', body: '本文' }, bearer(muroran.token)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    await expectGrpcProblem(client.call('StartNoticeBatch', { title: 'お知らせ', body: '本文', audience: 'all', codes: [codes[0]] }, bearer(muroran.token)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    await expectGrpcProblem(client.call('StartNoticeBatch', { title: 'お知らせ', body: '本文', codes: ['nope'] }, bearer(muroran.token)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    await expectGrpcProblem(client.call('GetNoticeBatch', { batchId: 'x' }, bearer(muroran.token)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    await expectNothingButRefusals(g.hub, head);
  });
});

/** Well-formed codes no person holds (each a failed recipient of the batch). */
const unknownCodes = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `${(from + i).toString(36).padStart(21, 'A')}w`);

describe('StartNoticeBatch message size (HUB_NOTICE_BATCH_BODY_LIMIT_BYTES, as POST /v1/notice-batches)', () => {
  it('the default settings: 10,000 codes (over the general 64 KiB limit) are accepted over gRPC, every code counted', async () => {
    expect(g.hub.config.bodyLimitBytes).toBe(65_536);
    const list = [codes[0]!, ...unknownCodes(9_999)];
    const request = { title: 'お知らせ', body: '本文', codes: list };
    expect(Buffer.byteLength(JSON.stringify(request))).toBeGreaterThan(200 * 1024);
    const { response } = await client.call<{ batchId: string; total: number }>('StartNoticeBatch', request, bearer(muroran.token));
    expect(response).toMatchObject({ batchId: expect.stringMatching(/^[0-9a-f-]{36}$/), total: 10_000 });
    await g.hub.app.get(NoticeBatchRunner, { strict: false }).idle();
    let got: Record<string, unknown> = {};
    for (let i = 0; i < 100 && got['status'] !== 'completed'; i++) {
      got = (await client.call('GetNoticeBatch', { batchId: response.batchId }, bearer(muroran.token))).response;
      if (got['status'] !== 'completed') await new Promise((r) => setTimeout(r, 50));
    }
    expect(got).toMatchObject({ status: 'completed', total: 10_000, delivered: 1, failed: 9_999, pending: 0 });
  }, 120_000);

  it('10,001 codes: INVALID_ARGUMENT VALIDATION_FAILED naming the bound, recorded as a refusal and nothing else', async () => {
    const head = await g.hub.head();
    const { problem } = await expectGrpcProblem(client.call('StartNoticeBatch', { title: 'お知らせ', body: '本文', codes: unknownCodes(10_001) }, bearer(muroran.token)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect(JSON.stringify(problem)).toMatch(/10,?000/);
    const appended = await expectNothingButRefusals(g.hub, head, 1);
    expect(appended).toEqual([expect.objectContaining({ type: 'RequestRefused', data: expect.objectContaining({ command: 'StartNoticeBatch', reason: 'VALIDATION_FAILED', agencyId: MURORAN_CITY }) })]);
  });

  it('a message over the limit: RESOURCE_EXHAUSTED PAYLOAD_TOO_LARGE naming its size and the limit, recorded as a refusal and nothing else', async () => {
    const head = await g.hub.head();
    const limit = g.hub.config.noticeBatches.bodyLimitBytes ?? 0;
    expect(limit).toBe(1_048_576);
    const { error, problem } = await expectGrpcProblem(client.call('StartNoticeBatch', { title: 'お知らせ', body: 'x'.repeat(limit + 1), codes: [codes[0]] }, bearer(muroran.token)), GrpcStatus.RESOURCE_EXHAUSTED, 'PAYLOAD_TOO_LARGE');
    const size = Number(/^the request message is (\d+) bytes, over the limit of (\d+) bytes for StartNoticeBatch$/.exec(error.details)?.[1]);
    expect(error.details).toBe(`the request message is ${size} bytes, over the limit of ${limit} bytes for StartNoticeBatch`);
    expect(size).toBeGreaterThan(limit);
    expect(problem).toMatchObject({ status: 413 });
    const appended = await expectNothingButRefusals(g.hub, head, 1);
    expect(appended).toEqual([expect.objectContaining({ type: 'RequestRefused', data: expect.objectContaining({ command: 'StartNoticeBatch', reason: 'PAYLOAD_TOO_LARGE', agencyId: MURORAN_CITY }) })]);
  });

  it('every other method keeps the general limit: a message over it is refused before decoding, nothing recorded', async () => {
    const head = await g.hub.head();
    const big = client.call('GetNoticeBatch', { batchId: 'x'.repeat(70 * 1024) }, bearer(muroran.token));
    await expect(big).rejects.toMatchObject({ code: GrpcStatus.RESOURCE_EXHAUSTED, details: expect.stringMatching(/^Received message larger than max \(\d+ vs\. 65536\)$/) });
    const numbering = g.numbering.call('DesignateCorporateNumber', { name: 'x'.repeat(70 * 1024), location: 'y', kind: 'other' });
    await expect(numbering).rejects.toMatchObject({ code: GrpcStatus.RESOURCE_EXHAUSTED });
    expect(await g.hub.head()).toBe(head);
  });
});
