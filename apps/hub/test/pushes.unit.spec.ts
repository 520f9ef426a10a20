import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { decidePushIssue, decidePushOutcome, evolvePush, itemsNotProvided, parseAuthorizationTable, pushRetryDelayMs, type AgencyId, type PushIssuedData, type SubjectId } from '#linkage';
import { pushIdOf } from '../src/pushes/push-fan-out.js';
import { PushStore } from '../src/pushes/push-store.js';
import { readFileSync } from 'node:fs';

const issued: PushIssuedData = {
  pushId: '00000000-0000-8000-8000-000000000001',
  updateId: '00000000-0000-4000-8000-000000000002',
  subjectId: 'subject' as SubjectId,
  subscriptionId: '00000000-0000-4000-8000-000000000003',
  code: 'code',
  requesterAgencyId: 'jpn-pension-service' as AgencyId,
  providerAgencyId: 'muroran-city' as AgencyId,
  procedureCode: 'pension-award-claim',
  itemCode: 'local-tax',
  updatedAt: '2026-06-01T00:00:00.000Z',
  issuedAt: '2026-06-01T00:00:01.000Z',
  deliverBy: '2026-06-02T00:00:01.000Z',
};

describe('push rules', () => {
  test('retry delays double from the base up to the cap, half of each jittered', () => {
    const s = { baseMs: 1000, maxMs: 60_000 };
    expect([1, 2, 3, 4].map((n) => pushRetryDelayMs(n, s, 0))).toEqual([500, 1000, 2000, 4000]);
    expect([1, 2, 3, 4].map((n) => pushRetryDelayMs(n, s, 0.999999))).toEqual([1000, 2000, 4000, 8000]);
    expect(pushRetryDelayMs(30, s, 0.5)).toBe(45_000);
    expect(pushRetryDelayMs(1000, s, 1)).toBe(60_000);
  });

  test('a push ends once: delivered or, only after its deadline, abandoned', () => {
    const state = evolvePush({ status: 'none' }, { type: 'PushIssued', data: issued });
    const delivered = decidePushOutcome({ type: 'RecordDelivery', data: { attempts: 2, duplicate: false, at: '2026-06-01T00:01:00.000Z' } }, state);
    expect(delivered).toEqual([expect.objectContaining({ type: 'PushDelivered', terminal: 'completed', data: expect.objectContaining({ attempts: 2, requesterAgencyId: 'jpn-pension-service' }) })]);
    expect(JSON.stringify(delivered)).not.toContain('subject');
    expect(JSON.stringify(delivered)).not.toContain('"code"');
    const ended = evolvePush(state, delivered[0]!);
    expect(decidePushOutcome({ type: 'AbandonPush', data: { attempts: 3, lastError: 'x', at: '2026-06-03T00:00:00.000Z' } }, ended)).toEqual([]);
    expect(() => decidePushOutcome({ type: 'AbandonPush', data: { attempts: 3, lastError: 'x', at: '2026-06-01T12:00:00.000Z' } }, state)).toThrow(/deadline/);
    expect(decidePushOutcome({ type: 'AbandonPush', data: { attempts: 3, lastError: 'HTTP 500', at: '2026-06-02T00:00:01.000Z' } }, state)).toEqual([
      expect.objectContaining({ type: 'PushAbandoned', terminal: 'failed', data: expect.objectContaining({ lastError: 'HTTP 500', deliverBy: issued.deliverBy }) }),
    ]);
    // An erased person's push (its fields no longer open) ends at once.
    expect(decidePushOutcome({ type: 'AbandonPush', data: { attempts: 0, lastError: 'the person was erased', at: '2026-06-01T00:00:02.000Z', erased: true } }, state)).toHaveLength(1);
    expect(() => decidePushIssue({ ...issued, deliverBy: '2026-05-01T00:00:00.000Z' })).toThrow();
  });

  test('a kind may report only the items it provides in the table', () => {
    const table = parseAuthorizationTable(JSON.parse(readFileSync('schemas/authorization/authorization-table.v1.json', 'utf8')));
    expect(itemsNotProvided(table, 'municipality', ['local-tax', 'resident-record'])).toEqual([]);
    expect(itemsNotProvided(table, 'pension-service', ['local-tax', 'pension-benefit'])).toEqual(['local-tax']);
    expect(itemsNotProvided(table, 'municipality', ['no-such-item'])).toEqual(['no-such-item']);
  });

  test('push ids: one per report, subscription and item, stable, UUID-shaped', () => {
    const a = pushIdOf('u1', 's1', 'local-tax');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(pushIdOf('u1', 's1', 'local-tax')).toBe(a);
    expect(new Set([a, pushIdOf('u2', 's1', 'local-tax'), pushIdOf('u1', 's2', 'local-tax'), pushIdOf('u1', 's1', 'resident-record')]).size).toBe(4);
  });
});

describe('the pushes projection file', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  let position = 0;
  const event = (type: string, data: object, serial: string): RecordedEvent =>
    ({ type, data, serial, position: position++, streamId: 'x', revision: 0, schemaVersion: 1, eventId: `e${position}`, recordedAt: '2026-06-01T00:00:00.000Z', metadata: {} }) as unknown as RecordedEvent;

  test('pending rows are the due deliveries (by next try), ended rows leave; an open fan-out is one with fewer pushes issued than announced; pages newest first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's2-push-store-'));
    dirs.push(dir);
    position = 0;
    const store = new PushStore(join(dir, 'pushes.sqlite'), () => 'person-1');
    const { subjectId: _s, code: _c, subscriptionId: _x, ...clear } = issued;
    await store.apply([
      event('CopyUpdated', { updateId: issued.updateId, providerAgencyId: 'muroran-city', itemCodes: ['local-tax'], pushes: 3, reportedAt: issued.issuedAt }, '20260601010000000001'),
      event('PushIssued', { ...clear, pushId: 'a0000000-0000-8000-8000-000000000001', issuedAt: '2026-06-01T00:00:01.000Z' }, '20260601010000000002'),
      event('PushIssued', { ...clear, pushId: 'b0000000-0000-8000-8000-000000000002', issuedAt: '2026-06-01T00:00:02.000Z' }, '20260601010000000003'),
    ]);
    expect(store.openFanOuts(10)).toEqual([{ updateId: issued.updateId, pushes: 3, issued: 2 }]);
    expect(store.due(0, 10, new Set()).map((d) => d.pushId)).toEqual(['a0000000-0000-8000-8000-000000000001', 'b0000000-0000-8000-8000-000000000002']);
    store.reschedule('a0000000-0000-8000-8000-000000000001', 1, 5000, 'HTTP 500');
    expect(store.due(1000, 10, new Set()).map((d) => d.pushId)).toEqual(['b0000000-0000-8000-8000-000000000002']);
    expect(store.due(1000, 10, new Set(['b0000000-0000-8000-8000-000000000002']))).toEqual([]);
    expect(store.due(5000, 10, new Set())[1]).toMatchObject({ pushId: 'a0000000-0000-8000-8000-000000000001', tries: 1, lastError: 'HTTP 500' });
    await store.apply([event('PushDelivered', { pushId: 'b0000000-0000-8000-8000-000000000002', attempts: 1, duplicate: true, deliveredAt: '2026-06-01T00:00:03.000Z' }, '20260601010000000004')]);
    expect(store.pendingCount()).toBe(1);
    expect(store.push('b0000000-0000-8000-8000-000000000002')).toMatchObject({ status: 'delivered', attempts: 1, endSerial: '20260601010000000004', reason: 'duplicate' });
    const page = store.agencyPushes('muroran-city', { limit: 1 });
    expect(page.pushes.map((p) => p.pushId)).toEqual(['b0000000-0000-8000-8000-000000000002']);
    expect(store.agencyPushes('muroran-city', { limit: 1, after: page.next! }).pushes.map((p) => p.pushId)).toEqual(['a0000000-0000-8000-8000-000000000001']);
    expect(store.personPushes('person-1').pushes).toHaveLength(2);
    expect(store.agencyPushes('jpn-pension-service', { role: 'provider' }).pushes).toHaveLength(0);
    // The digest covers what the log gives, not the worker's schedule.
    const before = await store.digest();
    store.reschedule('a0000000-0000-8000-8000-000000000001', 7, 9999, 'timeout');
    expect(await store.digest()).toEqual(before);
    await store.close();
  });
});
