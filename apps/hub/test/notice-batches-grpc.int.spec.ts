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
