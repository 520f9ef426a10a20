import { status as GrpcStatus } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBSCRIPTIONS_SERVICE } from '../src/grpc/proto-files.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcServiceClient, type GrpcTestHub } from './support/grpc-client.js';
import { MURORAN_CITY, PENSION, acquire, dropMapperKeys, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { expectNothingButRefusals } from './support/test-hub.js';

/** linkage_ledger.v1.Subscriptions: the HTTP API's subscribe, list, get and cancel over gRPC, same rules, same events. */

const prefix = `lls-${process.pid}-${randomBytes(4).toString('hex')}`;
let g: GrpcTestHub;
let subs: GrpcServiceClient;
let pension: Agency;
let muroran: Agency;
let pensionCode: string;
let muroranCode: string;

beforeAll(async () => {
  g = await startGrpcTestHub({ env: { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_REDIS_URL: 'redis://127.0.0.1:6379', HUB_REDIS_PREFIX: prefix, HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000' } });
  subs = g.client(SUBSCRIPTIONS_SERVICE);
  pension = await registerAgency(g.hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  muroran = await registerAgency(g.hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  const person = await issuePerson(g.hub);
  pensionCode = await acquire(g.hub, pension, person.individualNumber);
  muroranCode = await acquire(g.hub, muroran, person.individualNumber);
});
afterAll(async () => {
  await g?.dispose();
  await dropMapperKeys(prefix);
});

const auth = (agency: Agency, key?: string) => ({ authorization: `Bearer ${agency.token}`, ...(key === undefined ? {} : { 'idempotency-key': key }) });
const request = (extra: Record<string, unknown> = {}) => ({ code: pensionCode, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], ...extra });
type Sub = { subscriptionId: string; serial: string; status: string; tableVersion: number; createdAt: string; expiresAt: string };

describe('Subscriptions over gRPC', () => {
  it('Subscribe, GetSubscription, ListSubscriptions and CancelSubscription, each command under its own serial', async () => {
    const head = await g.hub.head();
    const { response: created } = await subs.call<Sub>('Subscribe', request({ tableVersion: 2 }), auth(pension, 'g-sub-1'));
    expect(created).toMatchObject({ subscriptionId: expect.stringMatching(/^[0-9a-f-]{36}$/), serial: expect.stringMatching(/^\d{20}$/), status: 'active', tableVersion: 2 });
    const again = await subs.call<Sub>('Subscribe', request({ tableVersion: 2 }), auth(pension, 'g-sub-1'));
    expect(again.response).toEqual(created);
    expect(again.metadata.get('idempotent-replayed')).toEqual(['true']);
    expect((await g.hub.store.readAll({ fromPosition: head })).map((e) => e.type)).toEqual(['SubscriptionCreated']);

    const { response: one } = await subs.call<Record<string, unknown>>('GetSubscription', { subscriptionId: created.subscriptionId }, auth(pension));
    expect(one).toMatchObject({ subscriptionId: created.subscriptionId, serial: created.serial, code: pensionCode, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], tableVersion: 2, status: 'active' });
    const { response: page } = await subs.call<{ subscriptions: { subscriptionId: string }[]; next?: string }>('ListSubscriptions', { limit: 10 }, auth(pension));
    expect(page.subscriptions.map((s) => s.subscriptionId)).toEqual([created.subscriptionId]);
    expect((await subs.call<{ subscriptions: unknown[] }>('ListSubscriptions', {}, auth(muroran))).response.subscriptions).toEqual([]);
    await expectGrpcProblem(subs.call('GetSubscription', { subscriptionId: created.subscriptionId }, auth(muroran)), GrpcStatus.NOT_FOUND, 'SUBSCRIPTION_NOT_FOUND');

    const { response: cancelled } = await subs.call<{ subscriptionId: string; serial: string; status: string }>('CancelSubscription', { subscriptionId: created.subscriptionId }, auth(pension));
    expect(cancelled).toEqual({ subscriptionId: created.subscriptionId, serial: expect.stringMatching(/^\d{20}$/), status: 'cancelled' });
    await expectGrpcProblem(subs.call('CancelSubscription', { subscriptionId: created.subscriptionId }, auth(pension)), GrpcStatus.FAILED_PRECONDITION, 'SUBSCRIPTION_NOT_ACTIVE');
  });

  it('refusals: the same problem codes as HTTP, recorded as RequestRefused and nothing else', async () => {
    const head = await g.hub.head();
    await expectGrpcProblem(subs.call('Subscribe', request({ procedureCode: 'national-pension-premium-exemption' }), auth(pension)), GrpcStatus.PERMISSION_DENIED, 'PUSH_NOT_AUTHORIZED');
    await expectGrpcProblem(subs.call('Subscribe', request({ code: muroranCode }), auth(pension)), GrpcStatus.PERMISSION_DENIED, 'CODE_NOT_ISSUED_TO_REQUESTER');
    const { problem } = await expectGrpcProblem(subs.call('Subscribe', request({ itemCodes: [], expiresAt: 'soon' }), auth(pension)), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect([...new Set((problem['errors'] as { field: string }[]).map((e) => e.field))].sort()).toEqual(['expires_at', 'item_codes']);
    await expectGrpcProblem(subs.call('Subscribe', request()), GrpcStatus.UNAUTHENTICATED, 'UNAUTHENTICATED');
    const events = await expectNothingButRefusals(g.hub, head, 3);
    expect(events.map((e) => (e.data as { reason: string }).reason)).toEqual(['PUSH_NOT_AUTHORIZED', 'CODE_NOT_ISSUED_TO_REQUESTER', 'VALIDATION_FAILED']);
  });

  it('an overlapping subscription: SUBSCRIPTION_EXISTS naming the active one, recorded; a retry with the first key answers the first', async () => {
    const { response: first } = await subs.call<Sub>('Subscribe', request(), auth(pension, 'g-sub-overlap'));
    const head = await g.hub.head();
    const again = await subs.call<Sub>('Subscribe', request(), auth(pension, 'g-sub-overlap'));
    expect(again.response).toEqual(first);
    expect(again.metadata.get('idempotent-replayed')).toEqual(['true']);
    const { problem } = await expectGrpcProblem(subs.call('Subscribe', request({ procedureCode: 'pensioner-notification-review' }), auth(pension)), GrpcStatus.FAILED_PRECONDITION, 'SUBSCRIPTION_EXISTS');
    expect(problem['subscriptionId']).toBe(first.subscriptionId);
    const events = await expectNothingButRefusals(g.hub, head, 1);
    expect(events.map((e) => (e.data as { command: string; reason: string }).reason)).toEqual(['SUBSCRIPTION_EXISTS']);
  });
});
