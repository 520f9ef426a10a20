import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { EventSealer } from '#sealing';
import { SubscriptionDirectory } from '../src/subscriptions/subscription-directory.js';
import { SUBSCRIPTION_INDEX_FILE } from '../src/subscriptions/subscription-index.js';
import { SubscriptionSweeper } from '../src/subscriptions/subscription-sweeper.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { MURORAN_CITY, PENSION, SAPPORO_CITY, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { expectNothingButRefusals, type TestHub } from './support/test-hub.js';

/**
 * Subscriptions (issue 14) through the real hub: the table in force (version 2, the default) allows the
 * pension service to subscribe to a municipality's local-tax and resident-record copies for its pension
 * procedures; everything else is refused and recorded (I6); cancel, expiry and the end a table version
 * withdrawing push brings are one event each with a serial of its own; the index survives a restart.
 */

const ROOT = join(import.meta.dirname, '../../..');
const V2 = JSON.parse(readFileSync(join(ROOT, 'schemas/authorization/authorization-table.v2.json'), 'utf8')) as { version: number; effectiveFrom: string; rows: { requesterKind: string; procedure: { code: string }; providerKind: string; push?: string[] }[] };
const DAY = 24 * 3600 * 1000;
const AWARD = 'pension-award-claim';
const REVIEW = 'pensioner-notification-review';

let now = new Date();
let hub: TestHub;
let muroran: Agency;
let pension: Agency;
let sapporo: Agency;
let aoyama: { individualNumber: string; citizenSecret: string };
let kato: { individualNumber: string; citizenSecret: string };
let pensionCode: string;
let muroranCode: string;
let sapporoCode: string;
let aoyamaSubject: string;
const tmp = mkdtempSync(join(tmpdir(), 's1-subscriptions-'));

type Subscribed = { subscriptionId: string; serial: string; status: string; tableVersion: number; createdAt: string; expiresAt: string };
type View = { subscriptionId: string; serial: string; code: string; providerAgencyId: string; procedureCode: string; itemCodes: string[]; tableVersion: number; status: string; createdAt: string; expiresAt: string; endedAt?: string; endReason?: string };

const start = (env: Record<string, string> = {}, dataDir?: string) =>
  startLinkageHub({ clock: () => now, ...(dataDir === undefined ? {} : { dataDir }), env: { HUB_CHECKPOINT_EVERY_EVENTS: '1000000', ...env, ...(hub === undefined ? {} : { HUB_REDIS_PREFIX: hub.config.linkage.redisPrefix! }) } });

beforeAll(async () => {
  hub = await start();
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  sapporo = await registerAgency(hub, SAPPORO_CITY, 'municipality', 'http://127.0.0.1:9');
  aoyama = await issuePerson(hub);
  kato = await issuePerson(hub);
  pensionCode = await acquire(hub, pension, aoyama.individualNumber);
  muroranCode = await acquire(hub, muroran, aoyama.individualNumber);
  sapporoCode = await acquire(hub, sapporo, aoyama.individualNumber);
});
afterAll(async () => {
  await hub?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

const subscribe = (agency: Agency, body: Record<string, unknown>) => hub.post('/v1/subscriptions', body, bearer(agency.token));
const lawful = (extra: Record<string, unknown> = {}) => ({ code: pensionCode, providerAgencyId: MURORAN_CITY, procedureCode: AWARD, itemCodes: ['local-tax'], ...extra });
async function subscribed(extra: Record<string, unknown> = {}): Promise<Subscribed> {
  const res = await subscribe(pension, lawful(extra));
  expect(res.statusCode, res.body).toBe(201);
  return res.json<Subscribed>();
}
/** Cancels the pension service's active subscriptions (a test makes the ones it needs: overlapping ones are refused). */
async function cancelActive(): Promise<void> {
  const mine = (await hub.get('/v1/subscriptions?limit=1000', bearer(pension.token))).json<{ subscriptions: View[] }>().subscriptions;
  for (const s of mine.filter((m) => m.status === 'active')) {
    const res = await hub.inject({ method: 'DELETE', url: `/v1/subscriptions/${s.subscriptionId}`, headers: bearer(pension.token) });
    expect(res.statusCode, res.body).toBe(200);
  }
}
beforeEach(async () => {
  if (aoyamaSubject !== undefined) await cancelActive();
});
const view = async (agency: Agency, id: string) => hub.get(`/v1/subscriptions/${id}`, bearer(agency.token));
const directory = () => hub.app.get(SubscriptionDirectory);
const sweep = () => hub.app.get(SubscriptionSweeper).sweep();
const subscribersOf = async (item = 'local-tax', provider = MURORAN_CITY) => (await directory().activeSubscribers(provider, aoyamaSubject, item)).map((s) => s.subscriptionId);

/** The only event of a serial, read raw (as stored) and opened. */
async function eventOf(serial: string): Promise<{ raw: RecordedEvent; opened: RecordedEvent }> {
  const raw = await hub.store.readSerial(serial as never);
  const opened = await hub.ledger.readSerial(serial as never);
  expect(raw.map((e) => e.type)).toHaveLength(1);
  return { raw: raw[0]!, opened: opened[0]! };
}

describe('subscribing where the table in force allows push', () => {
  it('records SubscriptionCreated under a serial of its own, the person and the code sealed; the directory answers it', async () => {
    const head = await hub.head();
    const res = await subscribe(pension, lawful({ itemCodes: ['local-tax', 'resident-record'] }));
    expect(res.statusCode, res.body).toBe(201);
    const s = res.json<Subscribed>();
    expect(s).toEqual({ subscriptionId: expect.stringMatching(/^[0-9a-f-]{36}$/), serial: expect.stringMatching(/^\d{20}$/), status: 'active', tableVersion: V2.version, createdAt: now.toISOString(), expiresAt: new Date(now.getTime() + 365 * DAY).toISOString() });
    expect((await hub.store.readAll({ fromPosition: head })).map((e) => e.type)).toEqual(['SubscriptionCreated']);

    const { raw, opened } = await eventOf(s.serial);
    expect(raw).toMatchObject({ type: 'SubscriptionCreated', streamId: `subscription-${s.subscriptionId}`, terminal: 'completed', metadata: { actor: `agency:${PENSION}` } });
    expect(raw.data).toMatchObject({ subscriptionId: s.subscriptionId, requesterAgencyId: PENSION, requesterKind: 'pension-service', providerAgencyId: MURORAN_CITY, providerKind: 'municipality', procedureCode: AWARD, itemCodes: ['local-tax', 'resident-record'], tableVersion: 2, createdAt: s.createdAt, expiresAt: s.expiresAt, sealed: expect.any(Object) });
    expect(raw.data).not.toHaveProperty('subjectId');
    expect(raw.data).not.toHaveProperty('requesterCode');
    const d = opened.data as { subjectId: string; requesterCode: string };
    expect(d.requesterCode).toBe(pensionCode);
    aoyamaSubject = d.subjectId;

    expect(await subscribersOf('local-tax')).toEqual([s.subscriptionId]);
    expect(await subscribersOf('resident-record')).toEqual([s.subscriptionId]);
    expect(await directory().activeSubscribers(MURORAN_CITY, aoyamaSubject, 'livelihood-protection')).toEqual([]);
    expect(await directory().activeSubscribers(SAPPORO_CITY, aoyamaSubject, 'local-tax')).toEqual([]);
    expect(await directory().activeSubscribers(MURORAN_CITY, aoyamaSubject, 'local-tax')).toEqual([{ subscriptionId: s.subscriptionId, requesterAgencyId: PENSION, procedureCode: AWARD }]);

    const got = await view(pension, s.subscriptionId);
    expect(got.statusCode, got.body).toBe(200);
    expect(got.json<View>()).toEqual({ subscriptionId: s.subscriptionId, serial: s.serial, code: pensionCode, providerAgencyId: MURORAN_CITY, procedureCode: AWARD, itemCodes: ['local-tax', 'resident-record'], tableVersion: 2, status: 'active', createdAt: s.createdAt, expiresAt: s.expiresAt });
  });

  it('takes an expiry up to five years ahead and a matching tableVersion and requesterAgencyId', async () => {
    const expiresAt = new Date(now.getTime() + 5 * 365 * DAY).toISOString();
    const s = await subscribed({ procedureCode: REVIEW, expiresAt, tableVersion: 2, requesterAgencyId: PENSION });
    expect(s.expiresAt).toBe(expiresAt);
  });
});

describe('one active subscription per (agency, person, provider, item): a second is refused', () => {
  it('an overlapping subscription: 409 SUBSCRIPTION_EXISTS naming the active one, recorded as RequestRefused and nothing else; the update would be pushed once', async () => {
    const first = await subscribed({ itemCodes: ['local-tax', 'resident-record'] });
    for (const extra of [{}, { procedureCode: REVIEW }, { itemCodes: ['resident-record'] }, { itemCodes: ['resident-record', 'local-tax'], expiresAt: new Date(now.getTime() + 2 * 365 * DAY).toISOString() }]) {
      const head = await hub.head();
      const res = await subscribe(pension, lawful(extra));
      const problem = expectProblem(res, 409, 'SUBSCRIPTION_EXISTS') as unknown as { subscriptionId: string; itemCodes: string[]; detail: string };
      expect(problem.subscriptionId).toBe(first.subscriptionId);
      expect(problem.detail).toContain(first.subscriptionId);
      const [refusal] = await expectNothingButRefusals(hub, head, 1);
      expect(refusal).toMatchObject({ type: 'RequestRefused', data: { command: 'Subscribe', reason: 'SUBSCRIPTION_EXISTS', agencyId: PENSION } });
    }
    expect(await subscribersOf('local-tax')).toEqual([first.subscriptionId]);
    expect(await subscribersOf('resident-record')).toEqual([first.subscriptionId]);
  });

  it('another provider is another subscription; once the first is cancelled the same one may be made again', async () => {
    const first = await subscribed();
    const other = await subscribed({ providerAgencyId: SAPPORO_CITY });
    expect(other.subscriptionId).not.toBe(first.subscriptionId);
    expectProblem(await subscribe(pension, lawful()), 409, 'SUBSCRIPTION_EXISTS');
    expect((await hub.inject({ method: 'DELETE', url: `/v1/subscriptions/${first.subscriptionId}`, headers: bearer(pension.token) })).statusCode).toBe(200);
    const again = await subscribed();
    expect(await subscribersOf()).toEqual([again.subscriptionId]);
  });

  it('a lapsed subscription (past expiresAt, not yet swept) is no obstacle', async () => {
    const soon = await subscribed({ expiresAt: new Date(now.getTime() + 60_000).toISOString() });
    now = new Date(now.getTime() + 61_000);
    const next = await subscribed();
    expect(next.subscriptionId).not.toBe(soon.subscriptionId);
  });

  it('a retry with the same Idempotency-Key answers the first subscription (replayed), not SUBSCRIPTION_EXISTS; another key is refused', async () => {
    const send = (key: string) => hub.post('/v1/subscriptions', lawful(), { ...bearer(pension.token), 'idempotency-key': key });
    const first = await send('sub-retry-1');
    expect(first.statusCode, first.body).toBe(201);
    const head = await hub.head();
    const again = await send('sub-retry-1');
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json()).toEqual(first.json());
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await hub.head()).toBe(head);
    expectProblem(await send('sub-retry-2'), 409, 'SUBSCRIPTION_EXISTS');
  });

  it('two identical subscriptions sent at once: one is made, the other refused', async () => {
    const [a, b] = await Promise.all([subscribe(pension, lawful()), subscribe(pension, lawful())]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([201, 409]);
    expect(await subscribersOf()).toHaveLength(1);
  });
});

describe('refused subscriptions: a precise problem, and nothing appended but the refusal (I6)', () => {
  const cases: readonly (readonly [string, () => Promise<Awaited<ReturnType<typeof subscribe>>>, number, string])[] = [
    ['an item the row allows to query but not to push', () => subscribe(pension, lawful({ procedureCode: 'national-pension-premium-exemption' })), 403, 'PUSH_NOT_AUTHORIZED'],
    ['an item the row does not allow at all', () => subscribe(pension, lawful({ itemCodes: ['local-tax', 'livelihood-protection'] })), 403, 'ITEM_NOT_ALLOWED'],
    ['a procedure not in the table', () => subscribe(pension, lawful({ procedureCode: 'no-such-procedure' })), 403, 'UNKNOWN_PROCEDURE'],
    ['a requester kind the row is not for (a city subscribing to a city)', () => subscribe(sapporo, lawful({ code: sapporoCode })), 403, 'REQUESTER_KIND_NOT_ALLOWED'],
    ['a table version not in force', () => subscribe(pension, lawful({ tableVersion: 1 })), 403, 'TABLE_VERSION_NOT_IN_FORCE'],
    ['another agency\'s code for the person', () => subscribe(pension, lawful({ code: muroranCode })), 403, 'CODE_NOT_ISSUED_TO_REQUESTER'],
    ['a code never issued', () => subscribe(pension, lawful({ code: `${'A'.repeat(21)}w` })), 403, 'CODE_NOT_ISSUED_TO_REQUESTER'],
    ['another agency named as the subscriber', () => subscribe(pension, lawful({ requesterAgencyId: MURORAN_CITY })), 403, 'CREDENTIAL_MISMATCH'],
    ['an unregistered provider', () => subscribe(pension, lawful({ providerAgencyId: 'no-such-city' })), 403, 'UNKNOWN_PROVIDER'],
    ['an expiry in the past', () => subscribe(pension, lawful({ expiresAt: new Date(now.getTime() - 1000).toISOString() })), 400, 'INVALID_EXPIRY'],
    ['an expiry more than five years ahead', () => subscribe(pension, lawful({ expiresAt: new Date(now.getTime() + 6 * 365 * DAY).toISOString() })), 400, 'INVALID_EXPIRY'],
  ];
  for (const [what, send, status, code] of cases) {
    it(`${what}: ${status} ${code}`, async () => {
      const head = await hub.head();
      const p = expectProblem(await send(), status, code);
      expect(JSON.stringify(p)).not.toMatch(/subjectId/);
      const [refusal, ...rest] = await expectNothingButRefusals(hub, head, 1);
      expect(rest).toEqual([]);
      expect(refusal).toMatchObject({ type: 'RequestRefused', terminal: 'denied', data: { command: 'Subscribe', reason: code, callerKind: 'agency' } });
      expect(p['serial']).toBe(refusal!.serial);
    });
  }

  it('PUSH_NOT_AUTHORIZED says which items may not be pushed and which may', async () => {
    const p = expectProblem(await subscribe(pension, lawful({ procedureCode: 'national-pension-premium-exemption', itemCodes: ['local-tax', 'resident-record'] })), 403, 'PUSH_NOT_AUTHORIZED');
    expect(p).toMatchObject({ notPushableItems: ['local-tax', 'resident-record'], pushableItems: [], tableVersion: 2 });
  });

  it('bad input: 400 VALIDATION_FAILED naming each field, only the refusal recorded', async () => {
    const head = await hub.head();
    const p = expectProblem(await subscribe(pension, { code: 'not-a-code', providerAgencyId: 'Muroran City', procedureCode: 'Pension', itemCodes: ['local-tax', 'local-tax'], expiresAt: 'tomorrow', tableVersion: 0, extra: 1 }), 400, 'VALIDATION_FAILED');
    const fields = (p['errors'] as { field: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(expect.arrayContaining(['code', 'expiresAt', 'itemCodes', 'procedureCode', 'providerAgencyId', 'tableVersion']));
    const events = await expectNothingButRefusals(hub, head, 1);
    expect(events[0]).toMatchObject({ type: 'RequestRefused', data: { command: 'Subscribe', reason: 'VALIDATION_FAILED' } });
    expectProblem(await subscribe(pension, { ...lawful(), itemCodes: [] }), 400, 'VALIDATION_FAILED');
  });

  it('no credential: 401, nothing appended for the request itself', async () => {
    const head = await hub.head();
    expectProblem(await hub.post('/v1/subscriptions', lawful()), 401, 'UNAUTHENTICATED');
    expect((await hub.store.readAll({ fromPosition: head })).filter((e) => e.type.startsWith('Subscription'))).toEqual([]);
  });
});

describe('listing, reading and cancelling one\'s own subscriptions', () => {
  it('lists the caller\'s subscriptions in order, paged with after/next; another agency sees none of them', async () => {
    const made = [await subscribed(), await subscribed({ itemCodes: ['resident-record'] }), await subscribed({ procedureCode: REVIEW, code: pensionCode, providerAgencyId: SAPPORO_CITY })];
    const all: View[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const res = await hub.get(`/v1/subscriptions?limit=2${after === undefined ? '' : `&after=${after}`}`, bearer(pension.token));
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<{ subscriptions: View[]; next?: string }>();
      expect(page.subscriptions.length).toBeLessThanOrEqual(2);
      all.push(...page.subscriptions);
      if (page.next === undefined) break;
      after = page.next;
    }
    const ids = all.map((s) => s.subscriptionId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(-3)).toEqual(made.map((m) => m.subscriptionId));
    expect(all.every((s) => s.code === pensionCode && [MURORAN_CITY, SAPPORO_CITY].includes(s.providerAgencyId))).toBe(true);

    const theirs = await hub.get('/v1/subscriptions', bearer(muroran.token));
    expect(theirs.json<{ subscriptions: View[] }>().subscriptions).toEqual([]);
    expectProblem(await hub.get('/v1/subscriptions?limit=0', bearer(pension.token)), 400, 'VALIDATION_FAILED');
    expectProblem(await hub.get('/v1/subscriptions?after=x', bearer(pension.token)), 400, 'VALIDATION_FAILED');
  });

  it('another agency can neither read nor cancel it: 404 SUBSCRIPTION_NOT_FOUND, the cancel refused and recorded', async () => {
    const s = await subscribed();
    expectProblem(await view(muroran, s.subscriptionId), 404, 'SUBSCRIPTION_NOT_FOUND');
    expectProblem(await view(pension, '00000000-0000-4000-8000-000000000000'), 404, 'SUBSCRIPTION_NOT_FOUND');
    expectProblem(await view(pension, 'not-a-uuid'), 400, 'VALIDATION_FAILED');
    const head = await hub.head();
    expectProblem(await hub.inject({ method: 'DELETE', url: `/v1/subscriptions/${s.subscriptionId}`, headers: bearer(muroran.token) }), 404, 'SUBSCRIPTION_NOT_FOUND');
    const [refusal] = await expectNothingButRefusals(hub, head, 1);
    expect(refusal).toMatchObject({ type: 'RequestRefused', data: { command: 'CancelSubscription', reason: 'SUBSCRIPTION_NOT_FOUND', agencyId: MURORAN_CITY } });
    expect(await subscribersOf()).toContain(s.subscriptionId);
  });

  it('cancel: SubscriptionCancelled under its own serial; no longer a subscriber; a second cancel is 409 SUBSCRIPTION_NOT_ACTIVE', async () => {
    const s = await subscribed();
    const head = await hub.head();
    const res = await hub.inject({ method: 'DELETE', url: `/v1/subscriptions/${s.subscriptionId}`, headers: bearer(pension.token) });
    expect(res.statusCode, res.body).toBe(200);
    const c = res.json<{ subscriptionId: string; serial: string; status: string }>();
    expect(c).toEqual({ subscriptionId: s.subscriptionId, serial: expect.stringMatching(/^\d{20}$/), status: 'cancelled' });
    expect(c.serial).not.toBe(s.serial);
    expect((await hub.store.readAll({ fromPosition: head })).map((e) => e.type)).toEqual(['SubscriptionCancelled']);
    const { raw } = await eventOf(c.serial);
    expect(raw).toMatchObject({ type: 'SubscriptionCancelled', terminal: 'completed', data: { subscriptionId: s.subscriptionId, requesterAgencyId: PENSION, providerAgencyId: MURORAN_CITY, cancelledAt: now.toISOString() } });
    expect(await subscribersOf()).not.toContain(s.subscriptionId);
    expect((await view(pension, s.subscriptionId)).json<View>()).toMatchObject({ status: 'cancelled', endedAt: now.toISOString(), endReason: 'CANCELLED' });
    expectProblem(await hub.inject({ method: 'DELETE', url: `/v1/subscriptions/${s.subscriptionId}`, headers: bearer(pension.token) }), 409, 'SUBSCRIPTION_NOT_ACTIVE');
  });

  it('cancel with an Idempotency-Key: a retry answers the first cancellation, replayed, and appends nothing', async () => {
    const s = await subscribed();
    const del = () => hub.inject({ method: 'DELETE', url: `/v1/subscriptions/${s.subscriptionId}`, headers: { ...bearer(pension.token), 'idempotency-key': `cancel-${s.subscriptionId}` } });
    const first = await del();
    expect(first.statusCode, first.body).toBe(200);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const head = await hub.head();
    const again = await del();
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual(first.json());
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await hub.head()).toBe(head);
  });
});

describe('the citizen sees who subscribes to their information', () => {
  it('GET /v1/citizens/me/subscriptions: every subscription to her information, named, with no agency\'s code; another person sees none', async () => {
    const res = await hub.get('/v1/citizens/me/subscriptions?limit=1000', bearer(aoyama.citizenSecret));
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ subscriptions: Record<string, unknown>[]; next?: string }>();
    const mine = (await hub.get('/v1/subscriptions?limit=1000', bearer(pension.token))).json<{ subscriptions: View[] }>().subscriptions;
    expect(body.subscriptions.map((s) => s['subscriptionId'])).toEqual(mine.map((s) => s.subscriptionId));
    expect(body.subscriptions[0]).toEqual({
      subscriptionId: mine[0]!.subscriptionId,
      requester: { agencyId: PENSION, name: `${PENSION} (test)` },
      provider: { agencyId: MURORAN_CITY, name: `${MURORAN_CITY} (test)` },
      procedure: { code: AWARD, name: '年金の裁定請求に関する事務' },
      items: [{ code: 'local-tax', name: '地方税関係情報' }, { code: 'resident-record', name: '住民票関係情報' }],
      status: mine[0]!.status,
      createdAt: mine[0]!.createdAt,
      expiresAt: mine[0]!.expiresAt,
      ...(mine[0]!.endedAt === undefined ? {} : { endedAt: mine[0]!.endedAt, endReason: mine[0]!.endReason }),
    });
    expect(body.subscriptions.find((s) => s['status'] === 'cancelled')).toMatchObject({ endReason: 'CANCELLED' });
    for (const secret of [pensionCode, muroranCode]) expect(res.body.includes(secret)).toBe(false);
    const page = (await hub.get('/v1/citizens/me/subscriptions?limit=1', bearer(aoyama.citizenSecret))).json<{ subscriptions: unknown[]; next?: string }>();
    expect(page.subscriptions).toHaveLength(1);
    expect(page.next).toBeDefined();
    expect((await hub.get('/v1/citizens/me/subscriptions', bearer(kato.citizenSecret))).json<{ subscriptions: unknown[] }>().subscriptions).toEqual([]);
    expectProblem(await hub.get('/v1/citizens/me/subscriptions', bearer(pension.token)), 401, 'UNAUTHENTICATED');
  });
});

describe('the hub ends subscriptions: expiry, and a table version that withdraws push', () => {
  it('expiry: not a subscriber once past expiresAt; the sweep records SubscriptionExpired, one serial each, once', async () => {
    const soon = await subscribed({ expiresAt: new Date(now.getTime() + 60_000).toISOString() });
    const later = await subscribed({ itemCodes: ['resident-record'], expiresAt: new Date(now.getTime() + 10 * DAY).toISOString() });
    expect(await subscribersOf()).toEqual([soon.subscriptionId]);
    expect(await subscribersOf('resident-record')).toEqual([later.subscriptionId]);
    now = new Date(now.getTime() + 61_000);
    expect(await subscribersOf()).not.toContain(soon.subscriptionId);
    expect(await subscribersOf('resident-record')).toContain(later.subscriptionId);
    const head = await hub.head();
    const result = await sweep();
    expect(result.expired).toBe(1);
    const events = await hub.store.readAll({ fromPosition: head });
    expect(events.map((e) => [e.type, (e.data as { subscriptionId: string }).subscriptionId, e.terminal, e.metadata.actor])).toEqual([['SubscriptionExpired', soon.subscriptionId, 'completed', 'system:subscriptions']]);
    expect(events[0]!.data).toMatchObject({ expiresAt: soon.expiresAt, expiredAt: now.toISOString() });
    expect((await view(pension, soon.subscriptionId)).json<View>()).toMatchObject({ status: 'expired', endReason: 'EXPIRED' });
    expect((await sweep()).expired).toBe(0);
    expect(await hub.head()).toBe(head + 1);
  });

  it('a table version in force that no longer allows the push ends each subscription it allowed (SubscriptionEnded, TABLE_WITHDREW_PUSH); the others stay', async () => {
    const award = await subscribed({ itemCodes: ['local-tax', 'resident-record'] });
    const review = await subscribed({ procedureCode: REVIEW, itemCodes: ['local-tax'], providerAgencyId: SAPPORO_CITY });
    // Version 3 drops resident-record from the award claim's push and every push of the notification review.
    const v3 = structuredClone(V2) as typeof V2 & Record<string, unknown>;
    v3.version = 3;
    v3.effectiveFrom = new Date(now.getTime() + DAY).toISOString();
    for (const row of v3.rows) {
      if (row.requesterKind === 'pension-service' && row.providerKind === 'municipality' && row.procedure.code === AWARD) row.push = ['local-tax'];
      if (row.requesterKind === 'pension-service' && row.procedure.code === REVIEW) delete row.push;
    }
    const file = join(tmp, 'authorization-table.v3.json');
    writeFileSync(file, JSON.stringify(v3));
    const dataDir = hub.dataDir;
    await hub.close();
    hub = await start({ HUB_AUTHORIZATION_TABLE_FILE: file }, dataDir);

    // Published, not yet in force: nothing ends.
    expect((await sweep()).ended).toBe(0);
    expect(await subscribersOf('resident-record')).toContain(award.subscriptionId);

    now = new Date(now.getTime() + DAY + 1000);
    // In force: the directory no longer answers the withdrawn pushes, before the sweep records anything.
    expect(await subscribersOf('resident-record')).toEqual([]);
    expect(await subscribersOf('local-tax')).toContain(award.subscriptionId);
    expect(await subscribersOf('local-tax', SAPPORO_CITY)).not.toContain(review.subscriptionId);

    const head = await hub.head();
    const active = (await hub.get('/v1/subscriptions?limit=1000', bearer(pension.token))).json<{ subscriptions: View[] }>().subscriptions.filter((s) => s.status === 'active');
    const withdrawn = active.filter((s) => s.procedureCode === REVIEW || s.itemCodes.includes('resident-record'));
    const result = await sweep();
    expect(result.ended).toBe(withdrawn.length);
    const events = await hub.store.readAll({ fromPosition: head });
    expect(events.every((e) => e.type === 'SubscriptionEnded' && e.terminal === 'completed')).toBe(true);
    expect(new Set(events.map((e) => e.serial)).size).toBe(events.length);
    expect(events.map((e) => (e.data as { subscriptionId: string }).subscriptionId).sort()).toEqual(withdrawn.map((s) => s.subscriptionId).sort());
    const ofAward = events.find((e) => (e.data as { subscriptionId: string }).subscriptionId === award.subscriptionId)!;
    expect(ofAward.data).toMatchObject({ reason: 'TABLE_WITHDREW_PUSH', tableVersion: 3, withdrawnItems: ['resident-record'], endedAt: now.toISOString() });
    expect((await view(pension, review.subscriptionId)).json<View>()).toMatchObject({ status: 'ended', endReason: 'TABLE_WITHDREW_PUSH' });
    expect((await sweep()).ended).toBe(0);

    // Under version 3 a new subscription to resident-record is refused, local-tax allowed.
    expectProblem(await subscribe(pension, lawful({ itemCodes: ['resident-record'] })), 403, 'PUSH_NOT_AUTHORIZED');
    expect((await subscribed()).tableVersion).toBe(3);
  });
});

describe('the subscription index (I8, I10, I11)', () => {
  it('restart: the index resumes from its checkpoint (no replay from the start of the log); a rebuild gives the same rows', async () => {
    const cancelled = await subscribed();
    expect((await hub.inject({ method: 'DELETE', url: `/v1/subscriptions/${cancelled.subscriptionId}`, headers: bearer(pension.token) })).statusCode).toBe(200);
    const s = await subscribed();
    const before = await (await directory().current()).digest();
    const dataDir = hub.dataDir;
    const head = await hub.head();
    await hub.close();

    const file = join(dataDir, SUBSCRIPTION_INDEX_FILE);
    const db = new Database(file);
    expect(Number(db.prepare(`SELECT value FROM fold_meta WHERE key = 'checkpoint'`).pluck().get())).toBeGreaterThanOrEqual(head - 1);
    // A marker a replay from the start would remove (the cancellation drops the subscription's item rows).
    db.prepare('INSERT INTO subscription_items (provider_agency_id, subject, item_code, subscription_id) VALUES (?, ?, ?, ?)').run(MURORAN_CITY, 'marker', 'local-tax', cancelled.subscriptionId);
    db.close();

    hub = await start({}, dataDir);
    expect(await subscribersOf()).toContain(s.subscriptionId);
    expect(await subscribersOf()).not.toContain(cancelled.subscriptionId);
    const marker = new Database(file, { readonly: true });
    expect(marker.prepare(`SELECT count(*) FROM subscription_items WHERE subject = 'marker'`).pluck().get()).toBe(1);
    marker.close();

    // Deleted: rebuilt from the log to the same rows.
    await hub.close();
    for (const f of readdirSync(dataDir)) if (f.startsWith(SUBSCRIPTION_INDEX_FILE)) rmSync(join(dataDir, f));
    hub = await start({}, dataDir);
    expect(await (await directory().current()).digest()).toEqual(before);
    expect(await subscribersOf()).toContain(s.subscriptionId);
  });

  it('I10: the stored subscription events and the index file hold no subject id and no code; agencies, procedure and items are clear', async () => {
    const events = (await hub.store.readAll({ fromPosition: 0 })).filter((e) => e.type.startsWith('Subscription'));
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(['SubscriptionCreated', 'SubscriptionCancelled', 'SubscriptionExpired', 'SubscriptionEnded']));
    const sealer = hub.app.get(EventSealer);
    for (const e of events) {
      const text = JSON.stringify(e);
      for (const secret of [aoyamaSubject, pensionCode, muroranCode, sapporoCode, aoyama.individualNumber]) expect(text.includes(secret), `${e.type} holds ${secret}`).toBe(false);
      expect(text).toContain(PENSION);
      expect([MURORAN_CITY, SAPPORO_CITY].some((provider) => text.includes(provider)), `${e.type} names its provider`).toBe(true);
      expect((sealer.open(e).event.data as { subjectId?: string }).subjectId).toBe(aoyamaSubject);
    }
    const bytes = readFileSync(join(hub.dataDir, SUBSCRIPTION_INDEX_FILE));
    for (const secret of [aoyamaSubject, pensionCode, aoyama.individualNumber]) expect(bytes.includes(Buffer.from(secret, 'utf8')), `the index holds ${secret}`).toBe(false);
  });
});

describe('the sweep runs by itself on the leader every HUB_SUBSCRIPTION_SWEEP_MS', () => {
  it('records an expiry without being called', async () => {
    const dataDir = hub.dataDir;
    await hub.close();
    hub = await start({ HUB_SUBSCRIPTION_SWEEP_MS: '200' }, dataDir);
    expect(hub.config.subscriptions.sweepIntervalMs).toBe(200);
    const s = await subscribed({ expiresAt: new Date(now.getTime() + 1000).toISOString() });
    now = new Date(now.getTime() + 2000);
    const deadline = Date.now() + 10_000;
    let expired: RecordedEvent[] = [];
    while (expired.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      expired = (await hub.store.readStream(`subscription-${s.subscriptionId}` as never)).filter((e) => e.type === 'SubscriptionExpired');
    }
    expect(expired).toHaveLength(1);
  });
});
