import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { SqliteSubscriptionIndex } from '../src/subscriptions/subscription-index.js';

/**
 * The subscription index on its own: what the directory answers (active, unexpired, per provider, person
 * and item), paging, ends, erasure and retention, and a rebuild to the same digest (I8).
 */

const dir = mkdtempSync(join(tmpdir(), 's1-subscription-index-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ref = (subjectId: string) => `ref-${subjectId}`;
const open = (path: string) => new SqliteSubscriptionIndex({ path, subjectRef: ref, personOf: (e) => ref((e.data as { subjectId: string }).subjectId), open: (e) => e });
const T0 = Date.parse('2026-06-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

let position = 0;
function event(type: string, data: Record<string, unknown>, streamId = `subscription-${String(data['subscriptionId'])}`): RecordedEvent {
  const p = position++;
  return { eventId: `e${p}`, type, schemaVersion: 1, streamId, streamRevision: 0, position: p, serial: String(p).padStart(20, '0'), terminal: 'completed', recordedAt: iso(T0), data, metadata: { actor: 't', correlationId: 'c' } } as unknown as RecordedEvent;
}
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
function created(n: number, subjectId: string, extra: Record<string, unknown> = {}): RecordedEvent {
  return event('SubscriptionCreated', {
    subscriptionId: id(n),
    requesterAgencyId: 'jpn-pension-service',
    requesterKind: 'pension-service',
    providerAgencyId: 'muroran-city',
    providerKind: 'municipality',
    subjectId,
    procedureCode: 'pension-award-claim',
    itemCodes: ['local-tax'],
    tableVersion: 2,
    createdAt: iso(T0),
    expiresAt: iso(T0 + 10_000),
    ...extra,
  });
}

describe('SqliteSubscriptionIndex', () => {
  const log: RecordedEvent[] = [
    created(1, 'aoyama'),
    created(2, 'aoyama', { itemCodes: ['local-tax', 'resident-record'], expiresAt: iso(T0 + 5_000) }),
    created(3, 'kato'),
    created(4, 'aoyama', { requesterAgencyId: 'other-agency', providerAgencyId: 'sapporo-city' }),
    created(5, 'aoyama'),
    event('SubscriptionCancelled', { subscriptionId: id(5), cancelledAt: iso(T0 + 1) }),
    event('SubscriptionEnded', { subscriptionId: id(3), reason: 'TABLE_WITHDREW_PUSH', endedAt: iso(T0 + 2) }),
    event('SomethingElse', { subscriptionId: id(1) }, 'other'),
  ];
  const path = join(dir, 'live.sqlite');
  const index = open(path);

  it('answers the active, unexpired subscriptions of a provider\'s item for a person, oldest first', async () => {
    await index.apply(log);
    const ids = (item: string, nowMs: number, provider = 'muroran-city', subject = 'aoyama') => index.activeSubscribers(provider, subject, item, nowMs).map((r) => r.subscriptionId);
    expect(ids('local-tax', T0)).toEqual([id(1), id(2)]);
    expect(ids('resident-record', T0)).toEqual([id(2)]);
    expect(ids('local-tax', T0 + 5_000)).toEqual([id(1)]);
    expect(ids('local-tax', T0 + 10_000)).toEqual([]);
    expect(ids('local-tax', T0, 'sapporo-city')).toEqual([id(4)]);
    expect(ids('local-tax', T0, 'muroran-city', 'kato')).toEqual([]);
    expect(index.due(T0 + 5_000, 10)).toEqual([id(2)]);
    expect(index.subscription(id(5))).toMatchObject({ status: 'cancelled', endedAt: iso(T0 + 1), endReason: 'CANCELLED' });
    expect(index.subscription(id(3))).toMatchObject({ status: 'ended', endReason: 'TABLE_WITHDREW_PUSH' });
    expect(index.activeTableRows()).toEqual([{ requesterKind: 'pension-service', procedureCode: 'pension-award-claim', providerKind: 'municipality' }]);
  });

  it('overlapping: the agency\'s oldest active, unexpired subscription to any of the items of the provider for the person', () => {
    const P = 'jpn-pension-service';
    expect(index.overlapping(P, 'muroran-city', 'aoyama', ['local-tax'], T0)).toEqual({ subscriptionId: id(1), itemCodes: ['local-tax'] });
    expect(index.overlapping(P, 'muroran-city', 'aoyama', ['resident-record'], T0)).toEqual({ subscriptionId: id(2), itemCodes: ['local-tax', 'resident-record'] });
    expect(index.overlapping(P, 'muroran-city', 'aoyama', ['resident-record'], T0 + 5_000)).toBeUndefined();
    expect(index.overlapping(P, 'muroran-city', 'aoyama', ['livelihood-protection', 'local-tax'], T0 + 9_999)).toEqual({ subscriptionId: id(1), itemCodes: ['local-tax'] });
    expect(index.overlapping(P, 'muroran-city', 'aoyama', ['local-tax'], T0 + 10_000)).toBeUndefined();
    // Another agency's, another provider's, another person's, an ended one's: none.
    expect(index.overlapping(P, 'sapporo-city', 'aoyama', ['local-tax'], T0)).toBeUndefined();
    expect(index.overlapping('other-agency', 'muroran-city', 'aoyama', ['local-tax'], T0)).toBeUndefined();
    expect(index.overlapping(P, 'muroran-city', 'kato', ['local-tax'], T0)).toBeUndefined();
  });

  it('pages one agency\'s subscriptions in order with after/next', () => {
    const first = index.page('jpn-pension-service', { limit: 2 });
    expect(first.subscriptions.map((s) => s.subscriptionId)).toEqual([id(1), id(2)]);
    const second = index.page('jpn-pension-service', { limit: 2, after: first.next! });
    expect(second.subscriptions.map((s) => s.subscriptionId)).toEqual([id(3), id(5)]);
    expect(second.next).toBeUndefined();
    expect(index.page('other-agency').subscriptions.map((s) => s.subscriptionId)).toEqual([id(4)]);
  });

  it('a rebuild from the log gives the same digest; applying an event twice changes nothing', async () => {
    const again = open(join(dir, 'rebuilt.sqlite'));
    await again.apply(log);
    await again.apply(log.slice(2));
    expect(await again.digest()).toEqual(await index.digest());
    await again.close();
  });

  it('an erasure deletes the person\'s rows; a retention sweep those created in the years it shreds', async () => {
    await index.apply([event('KeysShredded', { scope: 'erasure', subject: 'aoyama', shreddedAt: iso(T0 + 3) }, 'keys-shredded')]);
    expect(index.activeSubscribers('muroran-city', 'aoyama', 'local-tax', T0)).toEqual([]);
    expect(index.subscription(id(1))).toBeUndefined();
    expect(index.subscription(id(3))).toBeDefined();
    await index.apply([event('KeysShredded', { scope: 'retention', throughEpoch: 2026, shreddedAt: iso(T0 + 4) }, 'keys-shredded')]);
    expect(index.subscription(id(3))).toBeUndefined();
    expect([...index.rows()]).toEqual([]);
    await index.close();
  });
});
