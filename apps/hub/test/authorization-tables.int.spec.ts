import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { SubscriptionSweeper } from '../src/subscriptions/subscription-sweeper.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, bearer, issuePerson, queryLocalTax, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

/**
 * Authorization table rollout without a restart (docs/authorization-table-rollout.md) through the real hub:
 * the operator publishes versions with an effectiveFrom over HTTP, queries are decided under the version in
 * force at their time (across an effectiveFrom, with no restart), a version withdrawn before it takes effect
 * never comes into force and never ends a subscription, and every refusal is a precise problem and a
 * RequestRefused event (I6).
 */

const ROOT = join(import.meta.dirname, '../../..');
const V2_FILE = join(ROOT, 'schemas/authorization/authorization-table.v2.json');
type Row = { requesterKind: string; procedure: { code: string }; providerKind: string; items: { code: string }[]; push?: string[] };
type Table = Record<string, unknown> & { version: number; effectiveFrom: string; rows: Row[] };
const V2 = JSON.parse(readFileSync(V2_FILE, 'utf8')) as Table;
const AWARD = 'pension-award-claim';
const DAY = 24 * 3600 * 1000;
const isAwardRow = (r: Row) => r.requesterKind === 'pension-service' && r.procedure.code === AWARD && r.providerKind === 'municipality';

const T0 = new Date();
let now = T0;
let hub: TestHub;
let provider: FakeProvider;
let pension: Agency;
let pensionCode: string;
let operator: Record<string, string>;

/** Version 2 without the row that lets the pension service ask a municipality for the award claim. */
function withoutAwardRow(version: number, effectiveFrom: Date): Table {
  const table = structuredClone(V2);
  return { ...table, version, effectiveFrom: effectiveFrom.toISOString(), rows: table.rows.filter((r) => !isAwardRow(r)) };
}
const publish = (table: unknown, headers = operator) => hub.post('/v1/authorization-tables', { table }, headers);
const withdraw = (version: number | string, reason = 'the amending ordinance was postponed', headers = operator) => hub.post(`/v1/authorization-tables/${version}/withdrawal`, { reason }, headers);
const list = async () => (await hub.get('/v1/authorization-tables')).json<{ versions: { version: number; state: string; withdrawnAt?: string; withdrawalReason?: string }[]; inForce?: number }>();
const states = async () => (await list()).versions.map((v) => `${v.version} ${v.state}`);
const eventsOf = async (serial: string): Promise<RecordedEvent[]> => (await hub.ledger.readAll({ fromPosition: 0 })).filter((e) => e.serial === serial);
const sweep = () => hub.app.get(SubscriptionSweeper).sweep();

/** A refusal: the documented problem, and one RequestRefused event of the operator under the serial it names. */
async function expectRefused(res: Awaited<ReturnType<typeof publish>>, status: number, code: string, command: string): Promise<Record<string, unknown>> {
  const problem = expectProblem(res, status, code);
  expect(problem['serial'], res.body).toMatch(/^\d{20}$/);
  const events = await eventsOf(String(problem['serial']));
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({ type: 'RequestRefused', metadata: { actor: 'operator:hub' }, data: { command, reason: code, callerKind: 'operator' } });
  return problem;
}

beforeAll(async () => {
  hub = await startLinkageHub({ clock: () => now, env: { HUB_AUTHORIZATION_TABLE_FILE: V2_FILE, HUB_CHECKPOINT_EVERY_EVENTS: '1000000' } });
  operator = hub.operator;
  provider = new FakeProvider();
  await provider.start(hub);
  const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  pension = await registerAgency(hub, PENSION, 'pension-service', provider.endpoint);
  const aoyama = await issuePerson(hub);
  pensionCode = await acquire(hub, pension, aoyama.individualNumber);
  await acquire(hub, muroran, aoyama.individualNumber);
});
afterAll(async () => {
  await provider?.stop();
  await hub?.dispose();
});

describe('publishing a version (operator)', () => {
  it('lists the start-up version in force', async () => {
    expect(await list()).toEqual({ versions: [expect.objectContaining({ version: 2, state: 'in-force', effectiveFrom: V2.effectiveFrom })], inForce: 2 });
  });

  it('validates without publishing: the diff against the version in force, nothing appended', async () => {
    const head = await hub.head();
    const res = await hub.post('/v1/authorization-tables/validations', { table: withoutAwardRow(3, new Date(T0.getTime() + DAY)) }, operator);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ version: 3, state: 'scheduled', diff: { againstVersion: 2, rowsAdded: [], rowsChanged: [], rowsRemoved: [{ requesterKind: 'pension-service', procedure: AWARD, providerKind: 'municipality', push: V2.rows.find(isAwardRow)!.push }] } });
    expect(res.json()).not.toHaveProperty('serial');
    expect(await hub.head()).toBe(head);
  });

  it('refuses every fault with its own documented problem, each recorded as a RequestRefused event (I6)', async () => {
    const later = new Date(T0.getTime() + DAY);
    const schema = await expectRefused(await publish({ ...withoutAwardRow(3, later), rows: {} }), 422, 'AUTHORIZATION_TABLE_SCHEMA_VIOLATION', 'PublishAuthorizationTable');
    expect(schema['problems']).toEqual(['/rows: must be array']);
    const unknownItem = withoutAwardRow(3, later);
    unknownItem.rows[0]!.items.push({ code: 'bank-balance', name: '預金残高', nameEn: 'Bank balance' } as Row['items'][number]);
    const unknown = await expectRefused(await publish(unknownItem), 422, 'AUTHORIZATION_TABLE_UNKNOWN_CODE', 'PublishAuthorizationTable');
    expect(unknown['problems']).toEqual([expect.stringMatching(/^rows\[0\]\.items\[\d+\]: item "bank-balance" is not defined in "items"$/)]);
    const kind = withoutAwardRow(3, later);
    kind.rows[1]!.requesterKind = 'digital-agency';
    expect((await expectRefused(await publish(kind), 422, 'AUTHORIZATION_TABLE_UNKNOWN_CODE', 'PublishAuthorizationTable'))['problems']).toEqual([expect.stringMatching(/^rows\[1\]\.requesterKind: unknown agency kind "digital-agency"/)]);
    await expectRefused(await publish(withoutAwardRow(2, later)), 409, 'TABLE_VERSION_NOT_NEWER', 'PublishAuthorizationTable');
    await expectRefused(await publish(withoutAwardRow(3, new Date(T0.getTime() - 1000))), 422, 'TABLE_NOT_EFFECTIVE', 'PublishAuthorizationTable');
    await expectRefused(await publish({ ...withoutAwardRow(3, later), rows: [V2.rows[0], ...V2.rows] }), 422, 'INVALID_AUTHORIZATION_TABLE', 'PublishAuthorizationTable');
    // Not the operator: refused, recorded as the agency's.
    const forbidden = expectProblem(await publish(withoutAwardRow(3, later), bearer(pension.token)), 403, 'FORBIDDEN');
    expect((await eventsOf(String(forbidden['serial'])))[0]).toMatchObject({ type: 'RequestRefused', data: { command: 'PublishAuthorizationTable', reason: 'FORBIDDEN', callerKind: 'agency', agencyId: PENSION } });
    expect(await states()).toEqual(['2 in-force']);
  });
});

describe('a version withdrawn before it takes effect, and one that takes effect (no restart)', () => {
  let subscriptionId: string;

  it('publishes version 3 (scheduled), withdraws it before its effectiveFrom; it never comes into force and ends no subscription', async () => {
    const sub = await hub.post('/v1/subscriptions', { code: pensionCode, providerAgencyId: MURORAN_CITY, procedureCode: AWARD, itemCodes: ['local-tax'] }, bearer(pension.token));
    expect(sub.statusCode, sub.body).toBe(201);
    subscriptionId = sub.json<{ subscriptionId: string }>().subscriptionId;

    const res = await publish(withoutAwardRow(3, new Date(T0.getTime() + DAY)));
    expect(res.statusCode, res.body).toBe(201);
    const published = res.json<{ serial: string; digest: string }>();
    expect(published).toMatchObject({ version: 3, state: 'scheduled', serial: expect.stringMatching(/^\d{20}$/), digest: expect.stringMatching(/^[0-9a-f]{64}$/), diff: { againstVersion: 2, rowsRemoved: [expect.objectContaining({ procedure: AWARD })] } });
    expect((await eventsOf(published.serial)).map((e) => [e.type, e.terminal])).toEqual([['AuthorizationTablePublished', 'completed']]);
    expect(await states()).toEqual(['2 in-force', '3 scheduled']);

    now = new Date(T0.getTime() + DAY / 2);
    const out = await withdraw(3);
    expect(out.statusCode, out.body).toBe(201);
    const withdrawn = out.json<{ serial: string }>();
    expect(withdrawn).toEqual({ version: 3, serial: expect.stringMatching(/^\d{20}$/), withdrawnAt: now.toISOString() });
    expect(withdrawn.serial).not.toBe(published.serial);
    // Public in full (I10): stored as decided.
    const stored = (await hub.store.readAll({ fromPosition: 0 })).filter((e) => e.serial === withdrawn.serial);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ type: 'AuthorizationTableWithdrawn', terminal: 'completed', data: { version: 3, digest: published.digest, reason: 'the amending ordinance was postponed', withdrawnAt: now.toISOString() } });
    await expectRefused(await withdraw(3), 409, 'TABLE_VERSION_WITHDRAWN', 'WithdrawAuthorizationTable');
    await expectRefused(await withdraw(9), 404, 'TABLE_VERSION_NOT_FOUND', 'WithdrawAuthorizationTable');

    // Past its effectiveFrom: still version 2 in force, the query allowed, the subscription active.
    now = new Date(T0.getTime() + 2 * DAY);
    expect(await states()).toEqual(['2 in-force', '3 withdrawn']);
    const query = await queryLocalTax(hub, pension, pensionCode);
    expect(query.statusCode, query.body).toBe(200);
    expect(query.json()).toMatchObject({ tableVersion: 2 });
    expect((await sweep()).ended).toBe(0);
    expect((await hub.get(`/v1/subscriptions/${subscriptionId}`, bearer(pension.token))).json()).toMatchObject({ status: 'active' });
  });

  it('version 4 takes effect at its effectiveFrom: a query a millisecond before is decided under version 2, one at it under version 4; then it cannot be withdrawn', async () => {
    const effective = new Date(T0.getTime() + 3 * DAY);
    const res = await publish(withoutAwardRow(4, effective));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ version: 4, diff: { againstVersion: 2 } });

    now = new Date(effective.getTime() - 1);
    const before = await queryLocalTax(hub, pension, pensionCode);
    expect(before.statusCode, before.body).toBe(200);
    expect(before.json()).toMatchObject({ tableVersion: 2 });

    now = effective;
    const at = await queryLocalTax(hub, pension, pensionCode);
    const denied = expectProblem(at, 403, 'PROVIDER_KIND_NOT_ALLOWED');
    const [event] = await eventsOf(String(denied['serial']));
    expect(event).toMatchObject({ type: 'QueryDenied', data: { reason: 'PROVIDER_KIND_NOT_ALLOWED', tableVersion: 4 } });
    expect(await states()).toEqual(['2 superseded', '3 withdrawn', '4 in-force']);

    // The version in force drops the row: its subscriptions end (the sweeper's TABLE_WITHDREW_PUSH).
    expect((await sweep()).ended).toBe(1);
    expect((await hub.get(`/v1/subscriptions/${subscriptionId}`, bearer(pension.token))).json()).toMatchObject({ status: 'ended', endReason: 'TABLE_WITHDREW_PUSH' });

    await expectRefused(await withdraw(4), 409, 'TABLE_VERSION_IN_FORCE', 'WithdrawAuthorizationTable');
    expect((await list()).inForce).toBe(4);
  });

  it('a retry with the same Idempotency-Key answers the first publication (same serial), appending nothing', async () => {
    const table = withoutAwardRow(5, new Date(now.getTime() + DAY));
    const first = await publish(table, { ...operator, 'idempotency-key': 'publish-v5' });
    expect(first.statusCode, first.body).toBe(201);
    const head = await hub.head();
    const again = await publish(table, { ...operator, 'idempotency-key': 'publish-v5' });
    expect(again.statusCode, again.body).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expect(await hub.head()).toBe(head);
  });

  it('after a restart on the same log, the versions and their states are the log\'s (the start-up file, version 2, is published already)', async () => {
    const before = await list();
    const dataDir = hub.dataDir;
    const prefix = hub.config.linkage.redisPrefix!;
    await hub.close();
    hub = await startLinkageHub({ clock: () => now, dataDir, env: { HUB_AUTHORIZATION_TABLE_FILE: V2_FILE, HUB_CHECKPOINT_EVERY_EVENTS: '1000000', HUB_REDIS_PREFIX: prefix } });
    operator = hub.operator;
    expect(await list()).toEqual(before);
    expect(await states()).toEqual(['2 superseded', '3 withdrawn', '4 in-force', '5 scheduled']);
    expect(hub.logger.lines.filter((l) => l.level !== 'log' && /authorization table/i.test(l.message))).toEqual([]);
  });
});
