import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metadata, status as GrpcStatus, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { createClient } from 'redis';
import type { RecordedEvent } from '#ledger';
import { Authenticator } from '../src/linkage/authenticator.js';
import { RateLimits } from '../src/rate-limits/rate-limits.service.js';
import { Refusals } from '../src/refusals/refusals.service.js';
import { limited, recorded, unary, type RefusalGuard } from '../src/grpc/grpc-call.js';
import { expectProblem } from './support/problem-assertions.js';
import { MURORAN_CITY, PENSION, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { startTestHub, type TestHub } from './support/test-hub.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcTestHub } from './support/grpc-client.js';
import { LINKAGE_SERVICE } from '../src/grpc/proto-files.js';

/**
 * Issue 15 item 2: rate limits per agency, per citizen and per source (callers no credential identifies),
 * on HTTP and gRPC: over the limit 429 RATE_LIMITED with Retry-After (gRPC RESOURCE_EXHAUSTED with
 * retry-after metadata), never an event per refused request but one RateLimitedRequestsRecorded per kind
 * of principal and interval; shared by hubs on one Redis; this hub's own limiter when Redis is down; off at 0.
 */

const REDIS_DB = 11;
const REDIS_URL = `redis://127.0.0.1:6379/${REDIS_DB}`;

const flush = (hub: TestHub) => hub.app.get(Refusals).flush();

/** The events appended while `run` ran (after a flush of what was counted before it). */
async function appendedBy(hub: TestHub, run: () => Promise<unknown>): Promise<readonly RecordedEvent[]> {
  await flush(hub);
  const before = await hub.head();
  await run();
  return hub.store.readAll({ fromPosition: before });
}

/** What the interval's flush appends (the ledger's opened view when `opened`). */
async function flushed(hub: TestHub, opened = false): Promise<readonly RecordedEvent[]> {
  const before = await hub.head();
  await flush(hub);
  return (opened ? hub.ledger : hub.store).readAll({ fromPosition: before });
}

const invalidQuery = (hub: TestHub, token: string) => hub.post('/v1/queries', { providerAgencyId: MURORAN_CITY }, bearer(token));

function expectRateLimited(res: Awaited<ReturnType<TestHub['get']>>, kind: string): Record<string, unknown> {
  const problem = expectProblem(res, 429, 'RATE_LIMITED');
  expect(problem).toMatchObject({ principalKind: kind, retryAfter: expect.any(Number) });
  expect(Number(res.headers['retry-after'])).toBe(problem['retryAfter']);
  expect(problem['retryAfter'] as number).toBeGreaterThanOrEqual(1);
  return problem;
}

describe('per agency, per citizen and per source over HTTP (this hub\'s own limiter)', () => {
  let hub: TestHub;
  let pension: Agency;
  let muroran: Agency;
  let citizen: { citizenSecret: string };
  beforeAll(async () => {
    hub = await startLinkageHub({
      env: {
        HUB_REDIS_URL: 'off',
        HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000',
        // Average rates so low that nothing is refilled during a test: the bursts are the budgets.
        HUB_RATE_LIMIT_AGENCY_PER_S: '0.01',
        HUB_RATE_LIMIT_AGENCY_BURST: '8',
        HUB_RATE_LIMIT_CITIZEN_PER_S: '0.01',
        HUB_RATE_LIMIT_CITIZEN_BURST: '3',
        HUB_RATE_LIMIT_SOURCE_PER_S: '0.01',
        HUB_RATE_LIMIT_SOURCE_BURST: '3',
        // Muroran City is not limited (its own limit: 0); the pension service has the default above.
        HUB_RATE_LIMIT_AGENCIES: `${MURORAN_CITY}=0`,
      },
    });
    // Registrations and numbering are the operator's, who is not limited.
    pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
    muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
    citizen = await issuePerson(hub);
    expect(hub.app.get(RateLimits).health()).toEqual({ mode: 'local' });
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('an agency over its burst: 429 RATE_LIMITED with Retry-After, no event per request; another agency keeps its own budget (here its own limit: none); the flush records one agency event with the counts', async () => {
    const events = await appendedBy(hub, async () => {
      for (let i = 0; i < 8; i++) expectProblem(await invalidQuery(hub, pension.token), 400, 'VALIDATION_FAILED');
      for (let i = 0; i < 3; i++) expectRateLimited(await invalidQuery(hub, pension.token), 'agency');
      // A read spends the same budget, and is refused the same way.
      expectRateLimited(await hub.get('/v1/agencies/me/statistics', bearer(pension.token)), 'agency');
      // An agency with a limit of its own (here none): past the default burst, still answered.
      for (let i = 0; i < 12; i++) expectProblem(await invalidQuery(hub, muroran.token), 400, 'VALIDATION_FAILED');
    });
    // The 8 + 12 validation refusals are RequestRefused events (I6); the 4 rate-limited requests are not events yet.
    expect(events.map((e) => e.type)).toEqual(Array(20).fill('RequestRefused'));
    const recorded = await flushed(hub);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({
      type: 'RateLimitedRequestsRecorded',
      terminal: 'denied',
      metadata: { actor: 'system:refusals' },
      data: { principalKind: 'agency', count: 4, principals: 1, agencies: { [PENSION]: 4 }, commands: { SubmitQuery: 3, 'RecordsController.statistics': 1 } },
    });
    expect(recorded[0]!.data).not.toHaveProperty('sources');
    // Nothing more once recorded.
    expect(await flushed(hub)).toEqual([]);
  });

  it('a refusal event carries the correlation id of its request (X-Request-Id)', async () => {
    let requestId = '';
    const events = await appendedBy(hub, async () => {
      const res = await invalidQuery(hub, muroran.token);
      expectProblem(res, 400, 'VALIDATION_FAILED');
      requestId = String(res.headers['x-request-id']);
    });
    expect(events.map((e) => [e.type, e.metadata.correlationId])).toEqual([['RequestRefused', requestId]]);
  });

  it('a citizen over the burst: 429 on reads; the record counts citizens and names none', async () => {
    for (let i = 0; i < 3; i++) expect((await hub.get('/v1/citizens/me/statistics', bearer(citizen.citizenSecret))).statusCode).toBe(200);
    const refused = await hub.get('/v1/citizens/me/provision-records', bearer(citizen.citizenSecret));
    expectRateLimited(refused, 'citizen');
    expect(refused.json<{ detail: string }>().detail).toContain('this citizen');
    const stored = await flushed(hub);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ type: 'RateLimitedRequestsRecorded', data: { principalKind: 'citizen', count: 1, principals: 1, commands: { 'RecordsController.citizen': 1 } } });
    expect(Object.keys(stored[0]!.data as object).sort()).toEqual(['commands', 'count', 'intervalEnd', 'intervalStart', 'principalKind', 'principals', 'recordId']);
  });

  it('a source without a credential over its burst: 429; another source and health probes are not limited; the address is sealed in the record', async () => {
    const from = (remoteAddress: string) => hub.inject({ method: 'GET', url: '/v1/audit/verifier-key', remoteAddress });
    for (let i = 0; i < 3; i++) expect((await from('203.0.113.5')).statusCode).toBe(200);
    expectRateLimited(await from('203.0.113.5'), 'source');
    expectRateLimited(await from('203.0.113.5'), 'source');
    expect((await from('203.0.113.6')).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) expect((await hub.inject({ method: 'GET', url: '/health/live', remoteAddress: '203.0.113.5' })).statusCode).toBe(200);
    const before = await hub.head();
    await flush(hub);
    const stored = await hub.store.readAll({ fromPosition: before });
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ type: 'RateLimitedRequestsRecorded', data: { principalKind: 'source', count: 2, principals: 1 } });
    // I10: the address is not in the stored (publishable) text; the hub's opened view has it.
    expect(JSON.stringify(stored[0]!.data)).not.toContain('203.0.113.5');
    expect(stored[0]!.data).toHaveProperty('sealed');
    const [opened] = await hub.ledger.readAll({ fromPosition: before });
    expect(opened!.data).toMatchObject({ sources: { '203.0.113.5': 2 } });
  });
});

describe('gRPC: a command RPC over the limit answers RESOURCE_EXHAUSTED with retry-after metadata', () => {
  let hub: TestHub;
  let pension: Agency;
  beforeAll(async () => {
    hub = await startLinkageHub({ env: { HUB_REDIS_URL: 'off', HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000', HUB_RATE_LIMIT_AGENCY_PER_S: '0.01', HUB_RATE_LIMIT_AGENCY_BURST: '2', HUB_RATE_LIMIT_SOURCE_PER_S: '0.01', HUB_RATE_LIMIT_SOURCE_BURST: '1' } });
    pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  /** Runs one call through `unary(recorded(...))` (a command) or `unary(limited(...))` (a read) as the gRPC server does, with the hub's own guard. */
  function call(token: string | undefined, peer = 'ipv4:127.0.0.1:5000', read?: string): Promise<{ error: ServiceError | null; ran: boolean }> {
    const auth = hub.app.get(Authenticator);
    const refusals = hub.app.get(Refusals);
    const guard: RefusalGuard = { identify: (r) => auth.identify(r), record: (r) => refusals.record(r), throttle: (s) => refusals.throttle(s), limit: (c, s, n) => refusals.limit(c, s, n) };
    let ran = false;
    const rpc = async () => ((ran = true), {});
    const handler = unary(read === undefined ? recorded('SubmitQuery', guard, rpc) : limited(read, guard, rpc));
    const metadata = new Metadata();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    return new Promise((resolve) => {
      const serverCall = { getPath: () => '/linkage_ledger.v1.Linkage/Query', metadata, getPeer: () => peer, request: {}, sendMetadata: () => {} } as unknown as ServerUnaryCall<object, object>;
      handler(serverCall, (error) => resolve({ error: error as ServiceError | null, ran }));
    });
  }

  it('per agency: the burst passes, then RESOURCE_EXHAUSTED, problem RATE_LIMITED, retry-after and grpc-retry-pushback-ms', async () => {
    for (let i = 0; i < 2; i++) expect(await call(pension.token)).toEqual({ error: null, ran: true });
    const { error, ran } = await call(pension.token);
    expect(ran).toBe(false);
    expect(error!.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(error!.metadata.get('problem-code')).toEqual(['RATE_LIMITED']);
    expect(Number(error!.metadata.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
    expect(Number(error!.metadata.get('grpc-retry-pushback-ms')[0])).toBeGreaterThan(0);
    const problem = JSON.parse((error!.metadata.get('problem-bin')[0] as Buffer).toString('utf8')) as Record<string, unknown>;
    expect(problem).toMatchObject({ code: 'RATE_LIMITED', status: 429, principalKind: 'agency' });
    const recorded = await flushed(hub);
    expect(recorded.map((e) => [e.type, (e.data as { principalKind: string }).principalKind, (e.data as { count: number }).count])).toEqual([['RateLimitedRequestsRecorded', 'agency', 1]]);
  });

  it('per source: a caller without a credential is answered UNAUTHENTICATED within its budget, then RESOURCE_EXHAUSTED; counted as the source\'s', async () => {
    const first = await call(undefined, 'ipv4:198.51.100.9:4000');
    expect(first.error!.code).toBe(GrpcStatus.UNAUTHENTICATED);
    const second = await call('an-unknown-token-of-nobody-000', 'ipv4:198.51.100.9:4001');
    expect(second.error!.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(JSON.parse((second.error!.metadata.get('problem-bin')[0] as Buffer).toString('utf8'))).toMatchObject({ code: 'RATE_LIMITED', principalKind: 'source' });
    const recorded = await flushed(hub, true);
    const byType = Object.fromEntries(recorded.map((e) => [e.type, e.data as Record<string, unknown>]));
    expect(byType['UnauthenticatedRequestsRecorded']).toMatchObject({ count: 1, reasons: { UNAUTHENTICATED: 1 }, source: '198.51.100.9' });
    expect(byType['RateLimitedRequestsRecorded']).toMatchObject({ principalKind: 'source', count: 1, sources: { '198.51.100.9': 1 }, commands: { SubmitQuery: 1 } });
  });

  it('a read RPC wrapped in limited(): per source without a credential, the burst passes, then RESOURCE_EXHAUSTED; counted under the read\'s name', async () => {
    expect(await call(undefined, 'ipv4:198.51.100.20:4000', 'GetCheckpoint')).toEqual({ error: null, ran: true });
    const refused = await call(undefined, 'ipv4:198.51.100.20:4001', 'GetCheckpoint');
    expect(refused.ran).toBe(false);
    expect(refused.error!.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(refused.error!.metadata.get('problem-code')).toEqual(['RATE_LIMITED']);
    const recorded = await flushed(hub, true);
    expect(recorded.map((e) => e.data)).toEqual([expect.objectContaining({ principalKind: 'source', count: 1, sources: { '198.51.100.20': 1 }, commands: { GetCheckpoint: 1 } })]);
  });
});

describe('over the hub\'s gRPC edge (the real server and client)', () => {
  let grpc: GrpcTestHub;
  let pension: Agency;
  beforeAll(async () => {
    grpc = await startGrpcTestHub({ env: { HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000', HUB_RATE_LIMIT_AGENCY_PER_S: '0.01', HUB_RATE_LIMIT_AGENCY_BURST: '2' } });
    pension = await registerAgency(grpc.hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  });
  afterAll(async () => {
    await grpc?.dispose();
  });

  it('Query over the agency\'s burst: RESOURCE_EXHAUSTED RATE_LIMITED with retry-after trailers; the refusals within it are events carrying the call\'s x-request-id', async () => {
    const linkage = grpc.client(LINKAGE_SERVICE, {}, bearer(pension.token));
    const query = { code: 'short', providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] };
    const before = await grpc.hub.head();
    const { error: first } = await expectGrpcProblem(linkage.call('Query', query), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    await expectGrpcProblem(linkage.call('Query', query), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    const { problem, error } = await expectGrpcProblem(linkage.call('Query', query), GrpcStatus.RESOURCE_EXHAUSTED, 'RATE_LIMITED');
    expect(problem).toMatchObject({ principalKind: 'agency', status: 429 });
    expect(Number(error.metadata.get('retry-after')[0])).toBe(problem['retryAfter']);
    expect(Number(error.metadata.get('grpc-retry-pushback-ms')[0])).toBe(problem['retryAfterMs']);
    const events = await grpc.hub.store.readAll({ fromPosition: before });
    expect(events.map((e) => e.type)).toEqual(['RequestRefused', 'RequestRefused']);
    expect(events[0]!.metadata.correlationId).toBe(first.metadata.get('x-request-id')[0]);
    const recorded = await flushed(grpc.hub);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ type: 'RateLimitedRequestsRecorded', data: { principalKind: 'agency', count: 1, agencies: { [PENSION]: 1 }, commands: { SubmitQuery: 1 } } });
  });
});

describe('limits off (rate 0): never throttled', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub({ env: { HUB_RATE_LIMIT_AGENCY_PER_S: '0', HUB_RATE_LIMIT_CITIZEN_PER_S: '0', HUB_RATE_LIMIT_SOURCE_PER_S: '0' } });
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('hundreds of requests of one source pass, nothing is recorded', async () => {
    expect(hub.app.get(RateLimits).health()).toEqual({ mode: 'off' });
    for (let i = 0; i < 300; i++) expect((await hub.inject({ method: 'GET', url: '/v1/audit/verifier-key', remoteAddress: '203.0.113.7' })).statusCode).toBe(200);
    expect(await flushed(hub)).toEqual([]);
  });
});

describe('the OpenAPI document', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('documents 429 RATE_LIMITED with Retry-After on every operation but the probes', async () => {
    const doc = (await hub.get('/docs/json')).json<{ paths: Record<string, Record<string, { responses: Record<string, { description: string; headers?: Record<string, unknown> }> }>> }>();
    const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
    expect(operations.length).toBeGreaterThan(30);
    for (const { path, method, op } of operations) {
      const tooMany = op.responses['429'];
      if (path.startsWith('/health')) expect(tooMany, `${method} ${path}`).toBeUndefined();
      else {
        expect(tooMany?.description, `${method} ${path}`).toContain('RATE_LIMITED');
        expect(tooMany?.headers, `${method} ${path}`).toHaveProperty('Retry-After');
      }
    }
    // A 429 the route documented already is kept beside it.
    expect(doc.paths['/v1/citizens/sessions']?.['post']?.responses['429']?.description).toMatch(/TOO_MANY_UNAUTHENTICATED_REQUESTS.*; RATE_LIMITED/);
  });
});

describe('two hubs on one Redis share the budget', () => {
  const prefix = `rl-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const env = { HUB_REDIS_URL: REDIS_URL, HUB_REDIS_PREFIX: `${prefix}-mapper`, HUB_RATE_LIMIT_REDIS_PREFIX: prefix, HUB_RATE_LIMIT_SOURCE_PER_S: '0.01', HUB_RATE_LIMIT_SOURCE_BURST: '4' };
  let a: TestHub;
  let b: TestHub;
  beforeAll(async () => {
    a = await startTestHub({ env });
    b = await startTestHub({ env });
  });
  afterAll(async () => {
    await a?.dispose();
    await b?.dispose();
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length > 0) await client.del(keys);
    await client.close();
  });

  it('4 requests of one source pass across both hubs, the 5th is refused by either; each hub alone would have let 4 through', async () => {
    const from = (hub: TestHub) => hub.inject({ method: 'GET', url: '/v1/audit/verifier-key', remoteAddress: '192.0.2.44' });
    const codes = [];
    for (const hub of [a, b, a, b]) codes.push((await from(hub)).statusCode);
    expect(codes).toEqual([200, 200, 200, 200]);
    expectRateLimited(await from(a), 'source');
    expectRateLimited(await from(b), 'source');
    expect(a.app.get(RateLimits).health()).toEqual({ mode: 'redis' });
    expect(b.app.get(RateLimits).health()).toEqual({ mode: 'redis' });
  });
});

describe('Redis unreachable: this hub\'s own limiter decides (fail open to local budgets, not refusing everyone)', () => {
  let hub: TestHub;
  beforeAll(async () => {
    const port = await freePort();
    hub = await startTestHub({ env: { HUB_REDIS_URL: `redis://127.0.0.1:${port}`, HUB_RATE_LIMIT_SOURCE_PER_S: '0.01', HUB_RATE_LIMIT_SOURCE_BURST: '3' } });
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('the burst passes and is then refused, promptly, and readiness of the limiter says degraded', async () => {
    const started = Date.now();
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await hub.inject({ method: 'GET', url: '/v1/audit/verifier-key', remoteAddress: '192.0.2.45' })).statusCode);
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(hub.app.get(RateLimits).health()).toMatchObject({ mode: 'degraded', reason: expect.any(String) });
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
