import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { agencyCodeFromRandomBytes } from '#linkage';
import { demoCopies, startTestNode, testSigner, type TestNode } from './support/agency-fixture.js';
import { json, startFakeHub, type FakeHub, type SeenRequest } from './support/fake-hub.js';

// The update command (副本更新) and the subscription staff endpoints of Muroran City's and the pension
// service's intermediate servers, against a stand-in hub that checks every request it is sent.

const NOW = new Date('2026-12-05T03:10:00.000Z');
const STAFF = 'staff-token-for-update-tests';
const AOYAMA = 'M-000123';
const SPOUSE = 'M-000124';
const codes = { aoyama: code(), spouse: code(), pension: code() };
const NEW_TAX = { fiscalYear: 2026, taxableIncome: 2980000, municipalTaxAmount: 178800, prefecturalTaxAmount: 119200, dependents: 1 };
let hub: FakeHub;
let muroran: TestNode;
let serialSeq = 0;

function code(): string {
  return agencyCodeFromRandomBytes(randomBytes(16));
}

function serial(): string {
  serialSeq++;
  return `2026120503${String(serialSeq).padStart(10, '0')}`;
}

async function staff(node: TestNode, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, token: string | null = STAFF) {
  const res = await node.app.inject({
    method,
    url,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

/** The hub's POST /v1/updates as the contract has it: the caller's token, an idempotency key, {code, itemCodes, updatedAt}. */
function acceptUpdates(subscribers = 1) {
  const byKey = new Map<string, Record<string, unknown>>();
  return (req: SeenRequest, res: Parameters<Parameters<FakeHub['handle']>[0]>[1]) => {
    expect(req).toMatchObject({ method: 'POST', path: '/v1/updates' });
    expect(req.headers['authorization']).toBe('Bearer test-agency-token');
    const key = req.headers['idempotency-key'] as string;
    expect(key).toMatch(/^[\x20-\x7e]{1,200}$/);
    expect(Object.keys(req.body).sort()).toEqual(['code', 'itemCodes', 'updatedAt']);
    const answer = byKey.get(key) ?? { updateId: randomUUID(), serial: serial(), subscribers };
    byKey.set(key, answer);
    json(res, 202, answer);
  };
}

beforeAll(async () => {
  hub = await startFakeHub();
  muroran = await startTestNode({ agencyId: 'muroran-city', signer: testSigner(), hubUrl: hub.url, staffToken: STAFF, now: NOW });
  muroran.runtime.store.loadCopies(demoCopies('muroran-city'), new Date('2026-11-01T00:00:00Z'));
  muroran.runtime.store.setAgencyCode(AOYAMA, codes.aoyama, NOW.toISOString());
  muroran.runtime.store.setAgencyCode(SPOUSE, codes.spouse, NOW.toISOString());
});
afterAll(async () => {
  await muroran.close();
  await hub.close();
});
beforeEach(() => {
  hub.seen.length = 0;
});

describe('POST /v1/updates: changed copies loaded and reported', () => {
  test('stores the new value and reports it to the hub by the agency\'s own code, without the data; the answer names the hub\'s update, serial and pushes', async () => {
    hub.handle(acceptUpdates(1));
    const res = await staff(muroran, 'POST', '/v1/updates', { updatedAt: '2026-12-05T03:09:00.000Z', changes: [{ localId: AOYAMA, items: { 'local-tax': NEW_TAX } }] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ updateId: expect.any(String), updatedAt: '2026-12-05T03:09:00.000Z', results: [{ localId: AOYAMA, itemCodes: ['local-tax'], outcome: 'reported', serial: expect.stringMatching(/^\d{20}$/), subscribers: 1, hubUpdateId: expect.any(String) }] });
    expect(hub.seen).toHaveLength(1);
    expect(hub.seen[0]!.body).toEqual({ code: codes.aoyama, itemCodes: ['local-tax'], updatedAt: '2026-12-05T03:09:00.000Z' });
    expect(JSON.stringify(hub.seen[0]!.body)).not.toContain('2980000');
    expect(muroran.runtime.store.copies(AOYAMA, ['local-tax'])!.get('local-tax')).toEqual(NEW_TAX);
  });

  test('only the items whose value changed are reported; a person with none changed is "unchanged" and not reported', async () => {
    hub.handle(acceptUpdates(0));
    const resident = muroran.runtime.store.copies(AOYAMA, ['resident-record'])!.get('resident-record');
    const spouseTax = muroran.runtime.store.copies(SPOUSE, ['local-tax'])!.get('local-tax');
    const res = await staff(muroran, 'POST', '/v1/updates', {
      changes: [
        { localId: AOYAMA, items: { 'local-tax': { ...NEW_TAX, dependents: 2 }, 'resident-record': resident } },
        { localId: SPOUSE, items: { 'local-tax': spouseTax } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body['results']).toEqual([
      expect.objectContaining({ localId: AOYAMA, itemCodes: ['local-tax'], outcome: 'reported', subscribers: 0 }),
      { localId: SPOUSE, itemCodes: [], outcome: 'unchanged' },
    ]);
    expect(hub.seen.map((r) => r.body)).toEqual([{ code: codes.aoyama, itemCodes: ['local-tax'], updatedAt: NOW.toISOString() }]);
  });

  test('idempotent: the same update id and changes again loads nothing twice and sends nothing already reported', async () => {
    hub.handle(acceptUpdates(2));
    const body = { updateId: 'tax-2026-12-05-a', changes: [{ localId: SPOUSE, items: { 'local-tax': { ...NEW_TAX, taxableIncome: 1 } } }] };
    const first = await staff(muroran, 'POST', '/v1/updates', body);
    expect(first.body['results']).toEqual([expect.objectContaining({ outcome: 'reported', subscribers: 2 })]);
    // Later (the clock moved), without an updatedAt: the update as first stored.
    muroran.setNow(new Date(NOW.getTime() + 60_000));
    const again = await staff(muroran, 'POST', '/v1/updates', body);
    muroran.setNow(NOW);
    expect(again.body).toEqual(first.body);
    expect(hub.seen).toHaveLength(1);
    expect(await staff(muroran, 'POST', '/v1/updates', { ...body, updatedAt: '2026-12-05T03:11:00.000Z' })).toMatchObject({ status: 409, body: { code: 'UPDATE_ID_REUSED' } });
    // The same id with other changes is refused, and nothing is stored.
    const other = await staff(muroran, 'POST', '/v1/updates', { ...body, changes: [{ localId: SPOUSE, items: { 'local-tax': { ...NEW_TAX, taxableIncome: 2 } } }] });
    expect(other).toMatchObject({ status: 409, body: { code: 'UPDATE_ID_REUSED', updateId: 'tax-2026-12-05-a' } });
    expect(muroran.runtime.store.copies(SPOUSE, ['local-tax'])!.get('local-tax')).toMatchObject({ taxableIncome: 1 });
  });

  test('the hub unreachable: the copy is stored, the report stays pending and is sent again with the same idempotency key', async () => {
    hub.handle((_req, res) => json(res, 503, { code: 'NOT_LEADER', title: 'x', detail: 'standby' }));
    const body = { updateId: 'tax-2026-12-05-b', changes: [{ localId: AOYAMA, items: { 'local-tax': { ...NEW_TAX, dependents: 3 } } }] };
    const first = await staff(muroran, 'POST', '/v1/updates', body);
    expect(first.body['results']).toEqual([{ localId: AOYAMA, itemCodes: ['local-tax'], outcome: 'pending', reason: 'NOT_LEADER' }]);
    expect(muroran.runtime.store.copies(AOYAMA, ['local-tax'])!.get('local-tax')).toMatchObject({ dependents: 3 });
    expect(muroran.runtime.store.mesh.counts().pendingReports).toBe(1);

    hub.handle(acceptUpdates(1));
    expect(await muroran.runtime.updates.reportPending()).toEqual({ reported: 1, pending: 0 });
    expect(hub.seen).toHaveLength(2);
    expect(hub.seen[1]!.headers['idempotency-key']).toBe(hub.seen[0]!.headers['idempotency-key']);
    expect(hub.seen[1]!.body).toEqual(hub.seen[0]!.body);
    const again = await staff(muroran, 'POST', '/v1/updates', body);
    expect(again.body['results']).toEqual([expect.objectContaining({ outcome: 'reported', subscribers: 1 })]);
    expect(hub.seen).toHaveLength(2);
  });

  test('a refusal by the hub is final and kept with its code and serial', async () => {
    const s = serial();
    hub.handle((_req, res) => json(res, 404, { code: 'UNKNOWN_CODE', title: 'x', detail: 'no person holds this code', serial: s }));
    const res = await staff(muroran, 'POST', '/v1/updates', { changes: [{ localId: AOYAMA, items: { 'local-tax': { ...NEW_TAX, dependents: 4 } } }] });
    expect(res.body['results']).toEqual([{ localId: AOYAMA, itemCodes: ['local-tax'], outcome: 'refused', serial: s, reason: 'UNKNOWN_CODE' }]);
    expect(await muroran.runtime.updates.reportPending()).toEqual({ reported: 0, pending: 0 });
  });

  test('a person without a code is loaded and not reported (CODE_NOT_ACQUIRED)', async () => {
    const res = await staff(muroran, 'POST', '/v1/updates', { changes: [{ localId: 'M-000126', items: { 'resident-record': { address: '北海道室蘭市幸町2番' } } }] });
    expect(res.body['results']).toEqual([{ localId: 'M-000126', itemCodes: ['resident-record'], outcome: 'not-reported', reason: 'CODE_NOT_ACQUIRED' }]);
    expect(hub.seen).toHaveLength(0);
  });

  test('bad input: one refusal naming each field, nothing stored, the hub not asked', async () => {
    const before = muroran.runtime.store.copies(AOYAMA, ['local-tax'])!.get('local-tax');
    const res = await staff(muroran, 'POST', '/v1/updates', {
      updatedAt: 'today',
      changes: [{ localId: AOYAMA, items: { 'local-tax': { taxableIncome: 0 } } }, { localId: '123456789018', items: {} }, { localId: AOYAMA, items: { 'Local Tax': 1 }, extra: 1 }],
    });
    expect(res.status).toBe(400);
    expect((res.body['errors'] as { field: string }[]).map((e) => e.field).sort()).toEqual(['changes[1].items', 'changes[1].localId', 'changes[2].extra', 'changes[2].items.Local Tax', 'changes[2].localId', 'updatedAt']);
    expect(muroran.runtime.store.copies(AOYAMA, ['local-tax'])!.get('local-tax')).toEqual(before);
    const unknown = await staff(muroran, 'POST', '/v1/updates', { changes: [{ localId: 'M-999999', items: { 'local-tax': 1 } }] });
    expect(unknown).toMatchObject({ status: 404, body: { code: 'PERSON_NOT_FOUND' } });
    expect(await staff(muroran, 'POST', '/v1/updates', { changes: [], more: 1 })).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED' } });
    expect(await staff(muroran, 'POST', '/v1/updates', { changes: [] }, null)).toMatchObject({ status: 401, body: { code: 'STAFF_TOKEN_INVALID' } });
    expect(hub.seen).toHaveLength(0);
  });

  test('a report left pending (the hub unreachable, then the node stopped: the state a crash between store and send leaves) is sent at the next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agency-node-updates-'));
    try {
      let node = await startTestNode({ agencyId: 'muroran-city', signer: testSigner(), hubUrl: 'http://127.0.0.1:9', now: NOW, dataDir: dir });
      node.runtime.store.loadCopies(demoCopies('muroran-city'), NOW);
      node.runtime.store.setAgencyCode(AOYAMA, codes.aoyama, NOW.toISOString());
      const pending = await node.runtime.updates.update({ updateId: 'crash-1', changes: [{ localId: AOYAMA, items: { 'local-tax': NEW_TAX } }] });
      expect(pending.results).toEqual([expect.objectContaining({ outcome: 'pending', reason: 'HUB_UNREACHABLE' })]);
      await node.close();
      hub.handle(acceptUpdates(1));
      node = await startTestNode({ agencyId: 'muroran-city', signer: testSigner(), hubUrl: hub.url, now: NOW, dataDir: dir });
      try {
        for (let i = 0; i < 100 && node.runtime.store.mesh.counts().pendingReports > 0; i++) await new Promise((r) => setTimeout(r, 20));
        expect(node.runtime.store.mesh.updates('crash-1')[0]!.report).toMatchObject({ outcome: 'reported', subscribers: 1 });
        expect(hub.seen.map((r) => r.body)).toEqual([{ code: codes.aoyama, itemCodes: ['local-tax'], updatedAt: pending.updatedAt }]);
      } finally {
        await node.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('subscriptions for the staff (/v1/subscriptions on the node, kept by the hub)', () => {
  let pension: TestNode;
  const subscription = { subscriptionId: randomUUID(), serial: '', status: 'active', tableVersion: 2, createdAt: NOW.toISOString(), expiresAt: '2027-12-05T03:10:00.000Z' };
  beforeAll(async () => {
    pension = await startTestNode({ agencyId: 'jpn-pension-service', signer: testSigner(), hubUrl: hub.url, staffToken: STAFF, now: NOW });
    pension.runtime.store.loadCopies(demoCopies('jpn-pension-service'), NOW);
    pension.runtime.store.setAgencyCode('P-4410-0000123', codes.pension, NOW.toISOString());
  });
  afterAll(async () => pension.close());

  test('subscribe: the hub is asked with the agency\'s own code; the answer carries the local id', async () => {
    subscription.serial = serial();
    hub.handle((req, res) => {
      expect(req).toMatchObject({ method: 'POST', path: '/v1/subscriptions' });
      expect(req.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
      json(res, 201, subscription);
    });
    const res = await staff(pension, 'POST', '/v1/subscriptions', { localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], expiresAt: '2027-12-05T03:10:00Z' });
    expect(res).toEqual({ status: 201, body: { ...subscription, localId: 'P-4410-0000123' } });
    expect(hub.seen[0]!.body).toEqual({ code: codes.pension, providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], expiresAt: '2027-12-05T03:10:00Z' });
  });

  test('a refusal by the hub (the table allows no push) is passed on with its status, code and serial', async () => {
    const s = serial();
    hub.handle((_req, res) => json(res, 403, { code: 'PUSH_NOT_AUTHORIZED', title: 'No push allowed', detail: 'the table in force allows no push of resident-record', serial: s }));
    const res = await staff(pension, 'POST', '/v1/subscriptions', { localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['resident-record'] });
    expect(res).toMatchObject({ status: 403, body: { code: 'PUSH_NOT_AUTHORIZED', serial: s, title: 'No push allowed' } });
  });

  test('refused before the hub is asked: unknown person, no code, bad fields', async () => {
    const base = { providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] };
    expect(await staff(pension, 'POST', '/v1/subscriptions', { localId: 'P-0000-0000000', ...base })).toMatchObject({ status: 404, body: { code: 'PERSON_NOT_FOUND' } });
    expect(await staff(pension, 'POST', '/v1/subscriptions', { localId: 'P-4410-0000456', ...base })).toMatchObject({ status: 409, body: { code: 'CODE_NOT_ACQUIRED' } });
    const bad = await staff(pension, 'POST', '/v1/subscriptions', { localId: 'P-4410-0000123', ...base, itemCodes: [], expiresAt: 'next year' });
    expect(bad.status).toBe(400);
    expect((bad.body['errors'] as { field: string }[]).map((e) => e.field).sort()).toEqual(['expiresAt', 'itemCodes']);
    expect(await staff(pension, 'GET', '/v1/subscriptions', undefined, null)).toMatchObject({ status: 401, body: { code: 'STAFF_TOKEN_INVALID' } });
    expect(hub.seen).toHaveLength(0);
  });

  test('list: the hub\'s page with each code turned into the node\'s local id, paging passed on', async () => {
    const foreign = code();
    hub.handle((req, res) => {
      expect(req.path).toBe('/v1/subscriptions?limit=2&after=abc');
      json(res, 200, {
        subscriptions: [
          { ...subscription, code: codes.pension, providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] },
          { subscriptionId: 's-2', code: foreign, status: 'cancelled' },
        ],
        next: 'def',
      });
    });
    const res = await staff(pension, 'GET', '/v1/subscriptions?limit=2&after=abc');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      subscriptions: [expect.objectContaining({ subscriptionId: subscription.subscriptionId, localId: 'P-4410-0000123', status: 'active' }), expect.objectContaining({ subscriptionId: 's-2', localId: null })],
      next: 'def',
    });
    expect(hub.seen[0]!.method).toBe('GET');
    expect(await staff(pension, 'GET', '/v1/subscriptions?limit=0')).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED' } });
  });

  test('one, and cancel; the hub\'s 404 passed on', async () => {
    hub.handle((req, res) => {
      if (req.method === 'GET') return json(res, 200, { ...subscription, code: codes.pension });
      expect(req).toMatchObject({ method: 'DELETE', path: `/v1/subscriptions/${subscription.subscriptionId}` });
      expect(req.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
      json(res, 200, { subscriptionId: subscription.subscriptionId, serial: serial(), status: 'cancelled' });
    });
    expect(await staff(pension, 'GET', `/v1/subscriptions/${subscription.subscriptionId}`)).toMatchObject({ status: 200, body: { localId: 'P-4410-0000123', status: 'active' } });
    expect(await staff(pension, 'DELETE', `/v1/subscriptions/${subscription.subscriptionId}`)).toMatchObject({ status: 200, body: { subscriptionId: subscription.subscriptionId, status: 'cancelled' } });
    hub.handle((_req, res) => json(res, 404, { code: 'SUBSCRIPTION_NOT_FOUND', title: 'x', detail: 'no such subscription of this agency' }));
    expect(await staff(pension, 'DELETE', '/v1/subscriptions/unknown-1')).toMatchObject({ status: 404, body: { code: 'SUBSCRIPTION_NOT_FOUND' } });
  });
});
