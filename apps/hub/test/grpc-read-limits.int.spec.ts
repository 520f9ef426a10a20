import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_SERVICE, NUMBERING_SERVICE, SUBSCRIPTIONS_SERVICE, UPDATES_SERVICE } from '../src/grpc/proto-files.js';
import { AUTHORIZATION_TABLES_SERVICE } from '../src/linkage/tables/authorization-tables.grpc-service.js';
import { NOTICE_BATCHES_SERVICE } from '../src/notices/notice-batches.grpc-service.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcTestHub } from './support/grpc-client.js';
import { MURORAN_CITY, PENSION, bearer, registerAgency, type Agency } from './support/linkage-fixture.js';

// gRPC reads under their caller's rate limit (docs/rate-limits.md), as HTTP reads are: per source without a
// credential (the audit service, GetCorporateNumber), per agency with one (subscriptions', notice batches' reads).
let g: GrpcTestHub;
let muroran: Agency;

beforeAll(async () => {
  g = await startGrpcTestHub({
    env: { HUB_REDIS_URL: 'off', HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000', HUB_RATE_LIMIT_SOURCE_PER_S: '0.01', HUB_RATE_LIMIT_SOURCE_BURST: '3', HUB_RATE_LIMIT_AGENCY_PER_S: '0.01', HUB_RATE_LIMIT_AGENCY_BURST: '4' },
  });
  muroran = await registerAgency(g.hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
}, 60_000);
afterAll(async () => {
  await g?.dispose();
});

describe('gRPC reads are rate-limited like HTTP reads', () => {
  it('without a credential, per source: the audit reads and GetCorporateNumber spend one budget, then RESOURCE_EXHAUSTED RATE_LIMITED', async () => {
    const audit = g.client(AUDIT_SERVICE);
    const numbering = g.client(NUMBERING_SERVICE);
    const head = await g.hub.head();
    await audit.call('GetVerifierKey', {});
    await audit.call('GetCheckpoint', {}).catch(() => undefined);
    await expectGrpcProblem(numbering.call('GetCorporateNumber', { corporateNumber: '12' }), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    const { problem, error } = await expectGrpcProblem(audit.call('GetVerifierKey', {}), GrpcStatus.RESOURCE_EXHAUSTED, 'RATE_LIMITED');
    expect(problem).toMatchObject({ status: 429, principalKind: 'source' });
    expect(Number(error.metadata.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
    await expectGrpcProblem(numbering.call('GetCorporateNumber', { corporateNumber: '12' }), GrpcStatus.RESOURCE_EXHAUSTED, 'RATE_LIMITED');
    // Reads are no commands: no refusal event of their own (the interval's count is recorded later, at most once).
    expect(await g.hub.head()).toBe(head);
  });

  it("an agency's reads of its subscriptions and notice batches spend the agency's budget", async () => {
    const subscriptions = g.client(SUBSCRIPTIONS_SERVICE, {}, bearer(muroran.token));
    const batches = g.client(NOTICE_BATCHES_SERVICE, {}, bearer(muroran.token));
    await subscriptions.call('ListSubscriptions', { limit: 10 });
    await batches.call('ListNoticeBatches', { limit: 10 });
    await expectGrpcProblem(batches.call('GetNoticeBatch', { batchId: '0b7e6f0e-3d0a-4c55-9a4e-2f7a1c9e5b10' }), GrpcStatus.NOT_FOUND, 'UNKNOWN_NOTICE_BATCH');
    // An unknown subscription: answered (not found), and a read of the budget all the same.
    await expect(subscriptions.call('GetSubscription', { subscriptionId: '0b7e6f0e-3d0a-4c55-9a4e-2f7a1c9e5b10' })).rejects.toMatchObject({ code: GrpcStatus.NOT_FOUND });
    const { problem } = await expectGrpcProblem(batches.call('ListNoticeBatches', { limit: 10 }), GrpcStatus.RESOURCE_EXHAUSTED, 'RATE_LIMITED');
    expect(problem).toMatchObject({ principalKind: 'agency' });
    await expectGrpcProblem(subscriptions.call('ListSubscriptions', { limit: 10 }), GrpcStatus.RESOURCE_EXHAUSTED, 'RATE_LIMITED');
  });

  it("an agency's ListPushes spends the agency's budget; ListAuthorizationTables without a credential the source's", async () => {
    const pension = await registerAgency(g.hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
    const updates = g.client(UPDATES_SERVICE, {}, bearer(pension.token));
    for (let i = 0; i < 4; i++) await updates.call('ListPushes', { role: 'subscriber', limit: 10 });
    const { problem } = await expectGrpcProblem(updates.call('ListPushes', { role: 'subscriber', limit: 10 }), GrpcStatus.RESOURCE_EXHAUSTED, 'RATE_LIMITED');
    expect(problem).toMatchObject({ principalKind: 'agency' });
    // The source's budget was spent by the first test.
    const { problem: tables } = await expectGrpcProblem(g.client(AUTHORIZATION_TABLES_SERVICE).call('ListAuthorizationTables', {}), GrpcStatus.RESOURCE_EXHAUSTED, 'RATE_LIMITED');
    expect(tables).toMatchObject({ principalKind: 'source' });
  });
});
