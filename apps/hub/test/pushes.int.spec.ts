import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { acquire, bearer, issuePerson, MURORAN_CITY, PENSION, JASSO, SAPPORO_CITY, registerAgency, startLinkageHub, until, type Agency } from './support/linkage-fixture.js';
import { expectProblem } from './support/problem-assertions.js';
import type { TestHub } from './support/test-hub.js';
import { PushReceiver, subscribe, writePushTable } from './pushes.support.js';
import { schemaValidator } from '../../../test/support/json-schema.js';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { replayProvisionRecords } from '../../auditor/src/replay/replay-provision-records.js';
import { readKey } from './support/read-key.js';

interface PushRecord {
  pushId: string;
  serial: string;
  updateId: string;
  subscriber: { agencyId: string; name: string | null };
  provider: { agencyId: string; name: string | null };
  procedureCode: string;
  itemCode: string;
  status: string;
  attempts: number;
  endSerial: string | null;
}

async function eventsOf(hub: TestHub, from: number, types?: readonly string[]): Promise<RecordedEvent[]> {
  const events = await hub.store.readAll({ fromPosition: from });
  return events.filter((e) => types === undefined || types.includes(e.type)) as RecordedEvent[];
}

const SCHEMAS = {
  CopyUpdated: schemaValidator('schemas/events/copy-updated.v1.json', ['schemas/events/sealed-section.v1.json']),
  PushIssued: schemaValidator('schemas/events/push-issued.v1.json', ['schemas/events/sealed-section.v1.json']),
  PushDelivered: schemaValidator('schemas/events/push-delivered.v1.json'),
  PushAbandoned: schemaValidator('schemas/events/push-abandoned.v1.json'),
} as const;

describe('updates and pushes: fan-out, delivery, retries, records, refusals', () => {
  const dir = mkdtempSync(join(tmpdir(), 's2-pushes-'));
  let hub: TestHub;
  let muroran: Agency;
  let pension: Agency;
  let jasso: Agency;
  let sapporo: Agency;
  const receivers = { pension: new PushReceiver(), jasso: new PushReceiver(), sapporo: new PushReceiver(), muroran: new PushReceiver() };
  let person: { individualNumber: string; citizenSecret: string };
  const codes: Record<string, string> = {};

  beforeAll(async () => {
    hub = await startLinkageHub({ env: { HUB_AUTHORIZATION_TABLE_FILE: writePushTable(dir), HUB_PUSH_RETRY_BASE_MS: '40', HUB_PUSH_RETRY_MAX_MS: '200' } });
    for (const r of Object.values(receivers)) await r.start(hub);
    muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', receivers.muroran.endpoint);
    pension = await registerAgency(hub, PENSION, 'pension-service', receivers.pension.endpoint);
    jasso = await registerAgency(hub, JASSO, 'jasso', receivers.jasso.endpoint);
    sapporo = await registerAgency(hub, SAPPORO_CITY, 'municipality', receivers.sapporo.endpoint);
    person = await issuePerson(hub);
    for (const a of [muroran, pension, jasso, sapporo]) codes[a.agencyId] = await acquire(hub, a, person.individualNumber);
    await subscribe(hub, pension, codes[PENSION]!, MURORAN_CITY, 'pension-award-claim', ['local-tax']);
    await subscribe(hub, jasso, codes[JASSO]!, MURORAN_CITY, 'jasso-scholarship', ['local-tax']);
    await subscribe(hub, sapporo, codes[SAPPORO_CITY]!, MURORAN_CITY, 'child-allowance', ['local-tax', 'resident-record']);
  });

  afterAll(async () => {
    await hub?.dispose();
    for (const r of Object.values(receivers)) await r.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an update fans out one signed push per subscriber, carrying the subscriber\'s own code; each delivered once; nothing personal in clear', async () => {
    const from = await hub.head();
    const res = await hub.post('/v1/updates', { code: codes[MURORAN_CITY], itemCodes: ['local-tax'], updatedAt: '2026-06-01T09:00:00+09:00' }, bearer(muroran.token));
    expect(res.statusCode, res.body).toBe(202);
    const reported = res.json<{ updateId: string; serial: string; subscribers: number }>();
    expect(reported.subscribers).toBe(3);
    await until(async () => (await eventsOf(hub, from, ['PushDelivered'])).length === 3, 'three deliveries', 15_000);

    const events = await eventsOf(hub, from);
    const copy = events.filter((e) => e.type === 'CopyUpdated');
    const issued = events.filter((e) => e.type === 'PushIssued');
    expect(copy).toHaveLength(1);
    expect(copy[0]!.serial).toBe(reported.serial);
    expect(issued).toHaveLength(3);
    // Each push its own serial, every serial ended once.
    const serials = new Set([...copy, ...issued, ...events.filter((e) => e.type === 'PushDelivered')].map((e) => e.serial));
    expect(serials.size).toBe(7);
    for (const e of events.filter((x) => ['CopyUpdated', 'PushIssued', 'PushDelivered'].includes(x.type))) {
      expect(e.terminal, e.type).toBe('completed');
      const validate = SCHEMAS[e.type as keyof typeof SCHEMAS];
      expect(validate(e.data).errors, e.type).toBe('No errors');
    }
    // I10: no code and no subject id in the stored text.
    const text = JSON.stringify(events);
    for (const code of Object.values(codes)) expect(text).not.toContain(code);

    for (const [agency, receiver] of [[PENSION, receivers.pension], [JASSO, receivers.jasso], [SAPPORO_CITY, receivers.sapporo]] as const) {
      expect(receiver.received, agency).toHaveLength(1);
      const push = receiver.received[0]!;
      expect(push.signatureValid).toBe(true);
      expect(push.duplicate).toBe(false);
      expect(push.body['code']).toBe(codes[agency]);
      expect(push.body).toMatchObject({ subscriberAgencyId: agency, providerAgencyId: MURORAN_CITY, itemCode: 'local-tax', updatedAt: '2026-06-01T00:00:00.000Z' });
      expect(Object.keys(push.body).sort()).toEqual(['code', 'issuedAt', 'itemCode', 'procedureCode', 'providerAgencyId', 'pushId', 'serial', 'subscriberAgencyId', 'subscriptionId', 'updatedAt']);
      const event = issued.find((e) => (e.data as { pushId: string }).pushId === push.body['pushId']);
      expect(event?.serial).toBe(push.body['serial']);
      expect((event!.data as { requesterAgencyId: string }).requesterAgencyId).toBe(agency);
    }
    expect(receivers.muroran.received).toHaveLength(0);
  });

  test('a receiver that fails is tried again (backoff) until it answers 2xx; the attempts are recorded', async () => {
    receivers.pension.failures = [500, 503, 502];
    const before = receivers.pension.received.length;
    const from = await hub.head();
    const res = await hub.post('/v1/updates', { code: codes[MURORAN_CITY], itemCodes: ['local-tax'] }, bearer(muroran.token));
    expect(res.statusCode, res.body).toBe(202);
    await until(async () => (await eventsOf(hub, from, ['PushDelivered'])).length === 3, 'three deliveries', 15_000);
    const delivered = (await eventsOf(hub, from, ['PushDelivered'])).map((e) => e.data as { requesterAgencyId: string; attempts: number });
    expect(delivered.find((d) => d.requesterAgencyId === PENSION)?.attempts).toBe(4);
    expect(delivered.filter((d) => d.requesterAgencyId !== PENSION).map((d) => d.attempts)).toEqual([1, 1]);
    expect(receivers.pension.received.length - before).toBe(1);
    expect(receivers.pension.failures).toEqual([]);
    // The metrics count the tries: three failed and were scheduled again; nothing is pending any more.
    const metrics = (await hub.get('/metrics')).body;
    expect(metrics).toMatch(/^linkage_ledger_push_tries_total\{outcome="retry"\} 3$/m);
    expect(metrics).toMatch(/^linkage_ledger_push_tries_total\{outcome="delivered"\} 6$/m);
    expect(metrics).toMatch(/^linkage_ledger_push_pending 0$/m);
  });

  test('only the subscribers of the reported item are pushed (resident-record: Sapporo alone)', async () => {
    const from = await hub.head();
    const res = await hub.post('/v1/updates', { code: codes[MURORAN_CITY], itemCodes: ['resident-record'] }, bearer(muroran.token));
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json<{ subscribers: number }>().subscribers).toBe(1);
    await until(async () => (await eventsOf(hub, from, ['PushDelivered'])).length === 1, 'one delivery', 15_000);
    expect((await eventsOf(hub, from, ['PushIssued'])).map((e) => (e.data as { requesterAgencyId: string }).requesterAgencyId)).toEqual([SAPPORO_CITY]);
  });

  test('records: every push in the citizen\'s records and in both agencies\'; GET /v1/pushes by role', async () => {
    const citizen = await hub.get('/v1/citizens/me/push-records', bearer(person.citizenSecret));
    expect(citizen.statusCode, citizen.body).toBe(200);
    const mine = citizen.json<{ pushes: PushRecord[] }>().pushes;
    expect(mine).toHaveLength(7);
    expect(mine.every((p) => p.status === 'delivered' && p.provider.agencyId === MURORAN_CITY && p.endSerial !== null)).toBe(true);
    expect(JSON.stringify(mine)).not.toMatch(new RegExp(Object.values(codes).map((c) => c.replace(/[-_]/g, '.')).join('|')));

    const provider = await hub.get('/v1/agencies/me/push-records', bearer(muroran.token));
    expect(provider.json<{ pushes: PushRecord[] }>().pushes).toHaveLength(7);
    const subscriber = await hub.get('/v1/pushes?role=subscriber', bearer(pension.token));
    const pensionPushes = subscriber.json<{ pushes: PushRecord[] }>().pushes;
    expect(pensionPushes).toHaveLength(2);
    expect(pensionPushes.map((p) => p.attempts).sort()).toEqual([1, 4]);
    expect(pensionPushes[0]!.subscriber).toEqual({ agencyId: PENSION, name: `${PENSION} (test)` });
    expect((await hub.get('/v1/pushes?role=provider', bearer(pension.token))).json<{ pushes: PushRecord[] }>().pushes).toHaveLength(0);
    // Paging: newest first, `next` until the end.
    const first = (await hub.get('/v1/pushes?limit=4', bearer(muroran.token))).json<{ pushes: PushRecord[]; next?: string }>();
    expect(first.pushes).toHaveLength(4);
    const second = (await hub.get(`/v1/pushes?limit=4&after=${first.next}`, bearer(muroran.token))).json<{ pushes: PushRecord[]; next?: string }>();
    expect(second.pushes).toHaveLength(3);
    expect(second.next).toBeUndefined();
    expect(new Set([...first.pushes, ...second.pushes].map((p) => p.pushId)).size).toBe(7);
    expectProblem(await hub.get('/v1/pushes?after=nope', bearer(muroran.token)), 400, 'VALIDATION_FAILED');
  });

  test('provision records: every push is a row (kind push) of the citizen\'s records, CSV and statistics, and of both agencies\' records; no code shown', async () => {
    const pushIds = new Set((await hub.get('/v1/citizens/me/push-records', bearer(person.citizenSecret))).json<{ pushes: PushRecord[] }>().pushes.map((p) => p.pushId));
    const res = await hub.get('/v1/citizens/me/provision-records?limit=1000', bearer(person.citizenSecret));
    expect(res.statusCode, res.body).toBe(200);
    type Row = { serial: string; kind: string; outcome: string; requester: { agencyId: string } | null; provider: { agencyId: string }; procedure: { code: string }; items: { code: string }[] };
    const rows = res.json<{ records: Row[] }>().records.filter((r) => r.kind === 'push');
    expect(rows).toHaveLength(7);
    expect(rows.every((r) => r.outcome === 'delivered' && r.provider.agencyId === MURORAN_CITY && r.procedure.code !== '')).toBe(true);
    expect(rows.filter((r) => r.requester?.agencyId === PENSION).map((r) => r.items.map((i) => i.code))).toEqual([['local-tax'], ['local-tax']]);
    // Each row's serial is its PushIssued's: the same pushes as the push records.
    const issued = await eventsOf(hub, 0, ['PushIssued']);
    expect(new Set(rows.map((r) => (issued.find((e) => e.serial === r.serial)!.data as { pushId: string }).pushId))).toEqual(pushIds);
    expect(JSON.stringify(rows)).not.toMatch(new RegExp(Object.values(codes).map((c) => c.replace(/[-_]/g, '.')).join('|')));
    const csv = await hub.get('/v1/citizens/me/provision-records.csv', bearer(person.citizenSecret));
    expect(csv.body.split('\r\n').filter((l) => l.includes('更新のお知らせ（プッシュ）') && l.endsWith(',お知らせ済み'))).toHaveLength(7);
    const stats = (await hub.get('/v1/citizens/me/statistics', bearer(person.citizenSecret))).json<{ months: { byOutcome: Record<string, number> }[] }>();
    expect(stats.months.reduce((n, m) => n + (m.byOutcome['delivered'] ?? 0), 0)).toBe(7);
    // The subscriber's records (as requester: it was told) and the provider's (its copy changed).
    type AgencyRow = { queryId: string; kind: string; role: string; status: string };
    const told = (await hub.get('/v1/agencies/me/provision-records?role=requester&limit=1000', bearer(pension.token))).json<{ records: AgencyRow[] }>().records.filter((r) => r.kind === 'push');
    expect(told.map((r) => r.status)).toEqual(['delivered', 'delivered']);
    const changed = (await hub.get('/v1/agencies/me/provision-records?role=provider&limit=1000', bearer(muroran.token))).json<{ records: AgencyRow[] }>().records.filter((r) => r.kind === 'push');
    expect(new Set(changed.map((r) => r.queryId))).toEqual(pushIds);
  });

  test('refusals: an unknown code, an item the caller\'s kind does not provide, a malformed body: each answered with its code and recorded, nothing else appended', async () => {
    const cases: [Agency, unknown, number, string][] = [
      [muroran, { code: codes[PENSION], itemCodes: ['local-tax'] }, 404, 'UNKNOWN_CODE'],
      [pension, { code: codes[PENSION], itemCodes: ['local-tax'] }, 403, 'UPDATE_ITEM_NOT_PROVIDED'],
      [muroran, { code: codes[MURORAN_CITY], itemCodes: ['no-such-item'] }, 403, 'UPDATE_ITEM_NOT_PROVIDED'],
      [muroran, { code: codes[MURORAN_CITY], itemCodes: [] }, 400, 'VALIDATION_FAILED'],
      [muroran, { code: codes[MURORAN_CITY], itemCodes: ['local-tax', 'local-tax'] }, 400, 'VALIDATION_FAILED'],
      [muroran, { code: '123456789012', itemCodes: ['local-tax'] }, 400, 'VALIDATION_FAILED'],
      [muroran, { code: codes[MURORAN_CITY], itemCodes: ['local-tax'], updatedAt: 'yesterday' }, 400, 'VALIDATION_FAILED'],
    ];
    for (const [agency, body, status, code] of cases) {
      const from = await hub.head();
      const res = await hub.post('/v1/updates', body, bearer(agency.token));
      const problem = expectProblem(res, status, code);
      if (code === 'UPDATE_ITEM_NOT_PROVIDED') expect(problem['items']).toBeDefined();
      const appended = await eventsOf(hub, from);
      expect(appended.map((e) => e.type), JSON.stringify(body)).toEqual(['RequestRefused']);
      expect(appended[0]!.data).toMatchObject({ command: 'ReportUpdate', reason: code });
    }
    expectProblem(await hub.post('/v1/updates', { code: codes[MURORAN_CITY], itemCodes: ['local-tax'] }), 401, 'UNAUTHENTICATED');
  });

  test('the log with the reports and pushes verifies for an auditor (I3, I10)', async () => {
    const verifierKey = (await hub.get('/v1/audit/verifier-key')).body;
    const report = await verifyLog({ source: { kind: 'db', path: hub.config.ledgerPath }, verifierKey, threads: 1 });
    expect(report.firstFailure).toBeNull();
    expect(report.ok).toBe(true);
    // I8: the auditor's replay of the provision records, push rows included, equals the live projection.
    await hub.get('/v1/citizens/me/provision-records', bearer(person.citizenSecret));
    const { sealer, close } = readKey(hub.dataDir);
    try {
      const diff = await replayProvisionRecords(hub.config.ledgerPath, join(hub.dataDir, 'projections.sqlite'), true, sealer);
      expect(diff).toMatchObject({ ok: true, differingRecords: 0 });
      expect(diff.skipped).toBeUndefined();
      expect(diff.liveRecords).toBeGreaterThanOrEqual(7);
      expect(diff.rebuiltRecords).toBe(diff.liveRecords);
    } finally {
      close();
    }
  });

  test('an Idempotency-Key replays the report without a second fan-out', async () => {
    const from = await hub.head();
    const headers = { ...bearer(muroran.token), 'idempotency-key': 'update-once-1' };
    const first = await hub.post('/v1/updates', { code: codes[MURORAN_CITY], itemCodes: ['resident-record'] }, headers);
    const again = await hub.post('/v1/updates', { code: codes[MURORAN_CITY], itemCodes: ['resident-record'] }, headers);
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual(first.json());
    await until(async () => (await eventsOf(hub, from, ['PushDelivered'])).length === 1, 'one delivery', 15_000);
    expect(await eventsOf(hub, from, ['CopyUpdated', 'PushIssued'])).toHaveLength(2);
  });
});

describe('pushes: the deadline', () => {
  const dir = mkdtempSync(join(tmpdir(), 's2-pushes-deadline-'));
  let hub: TestHub;
  const receiver = new PushReceiver();

  beforeAll(async () => {
    hub = await startLinkageHub({ env: { HUB_AUTHORIZATION_TABLE_FILE: writePushTable(dir), HUB_PUSH_DEADLINE_MS: '1200', HUB_PUSH_RETRY_BASE_MS: '100', HUB_PUSH_RETRY_MAX_MS: '300' } });
    await receiver.start(hub);
  });

  afterAll(async () => {
    await hub?.dispose();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a push the receiver never accepts ends in PushAbandoned (terminal failed) after HUB_PUSH_DEADLINE_MS, and is not tried again', async () => {
    receiver.always = 500;
    const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', receiver.endpoint);
    const pension = await registerAgency(hub, PENSION, 'pension-service', receiver.endpoint);
    const person = await issuePerson(hub);
    const muroranCode = await acquire(hub, muroran, person.individualNumber);
    await subscribe(hub, pension, await acquire(hub, pension, person.individualNumber), MURORAN_CITY, 'pension-award-claim', ['local-tax']);
    const from = await hub.head();
    const started = Date.now();
    expect((await hub.post('/v1/updates', { code: muroranCode, itemCodes: ['local-tax'] }, bearer(muroran.token))).statusCode).toBe(202);
    await until(async () => (await eventsOf(hub, from, ['PushAbandoned'])).length === 1, 'the abandon', 15_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
    const [abandoned] = await eventsOf(hub, from, ['PushAbandoned']);
    expect(abandoned!.terminal).toBe('failed');
    expect(SCHEMAS.PushAbandoned(abandoned!.data).errors).toBe('No errors');
    const data = abandoned!.data as { attempts: number; lastError: string };
    expect(data.attempts).toBeGreaterThanOrEqual(2);
    expect(data.lastError).toBe('the receiver answered HTTP 500');
    expect(await eventsOf(hub, from, ['PushDelivered'])).toHaveLength(0);
    const tries = receiver.hits;
    expect(tries).toBe(data.attempts);
    const list = (await hub.get('/v1/pushes', bearer(pension.token))).json<{ pushes: PushRecord[] }>().pushes;
    expect(list.map((p) => p.status)).toEqual(['abandoned']);
    const rows = (await hub.get('/v1/citizens/me/provision-records', bearer(person.citizenSecret))).json<{ records: { kind: string; outcome: string }[] }>().records;
    expect(rows.filter((r) => r.kind === 'push').map((r) => r.outcome)).toEqual(['abandoned']);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.hits).toBe(tries);
  });
});
