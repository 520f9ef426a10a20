import { describe, expect, it } from 'vitest';
import { InMemoryEventStore, type RecordedEvent } from '#ledger';
import { foldProvisionRecords, type ProvisionRecord } from '#projections';
import { AOYAMA, KATO, MURORAN, NOW, PENSION, SAPPORO, codeOf, richLog, sha256, subject } from './scenario.js';

async function rows(): Promise<{ events: readonly RecordedEvent[]; byQuery: Map<string, ProvisionRecord> }> {
  let clock = Date.parse(NOW);
  const store = new InMemoryEventStore({ now: () => new Date((clock += 3)) });
  await richLog(store);
  const events = await store.readAll();
  await store.close();
  return { events, byQuery: new Map(foldProvisionRecords(events).map((r) => [r.queryId, r])) };
}

const { events, byQuery } = await rows();
const row = (queryId: string) => byQuery.get(queryId)!;

describe('provision records folded from the query stream', () => {
  it('records an answered query: when, who, from whom, what and why, with the names of the time', () => {
    const r = row('q-march');
    expect(r).toEqual({
      serial: expect.stringMatching(/^\d{20}$/),
      queryId: 'q-march',
      subjectId: AOYAMA,
      kind: 'query',
      requester: { id: PENSION, kind: 'pension-service', name: '日本年金機構' },
      provider: { id: MURORAN, kind: 'municipality', name: '室蘭市' },
      procedure: { code: 'pre-twenty-disability-pension-income-check', name: '20歳前の傷病による障害基礎年金受給者の所得確認に関する事務' },
      items: [{ code: 'local-tax', name: '地方税関係情報' }],
      tableVersion: 1,
      batch: null,
      status: 'answered',
      reason: null,
      requestedAt: '2026-03-31T14:59:59.000Z',
      endedAt: '2026-03-31T14:59:59.500Z',
    });
    const first = events.find((e) => e.type === 'QueryAccepted' && (e.data as { queryId: string }).queryId === 'q-march')!;
    expect(r.serial).toBe(first.serial);
  });

  it('gives one row per query serial, and no other rows', () => {
    const serials = new Set(events.filter((e) => e.streamId.startsWith('query-')).map((e) => e.serial));
    expect(byQuery.size).toBe(serials.size);
    expect([...byQuery.values()].map((r) => r.serial).sort()).toEqual([...serials].sort());
  });

  it('records each outcome with its reason', () => {
    expect(row('q-april')).toMatchObject({ status: 'refused-by-provider', reason: 'NO_RECORD', endedAt: '2026-03-31T15:00:01.000Z' });
    expect(row('q-fail')).toMatchObject({ status: 'failed', reason: 'PROVIDER_TIMEOUT', endedAt: '2026-04-02T01:00:30.000Z', items: [{ code: 'local-tax', name: '地方税関係情報' }, { code: 'resident-record', name: '住民票関係情報' }] });
    expect(row('q-nocode')).toMatchObject({ status: 'denied', reason: 'NO_CODE_AT_PROVIDER', subjectId: AOYAMA, endedAt: '2026-04-03T00:01:00.000Z', tableVersion: 1 });
    expect(row('q-pending')).toMatchObject({ status: 'pending', reason: null, endedAt: null });
  });

  it('records a denial that named no person without a subject, and an unregistered requester without a name', () => {
    expect(row('q-stolen')).toMatchObject({ status: 'denied', reason: 'CREDENTIAL_MISMATCH', subjectId: null, requester: { id: PENSION, kind: 'pension-service', name: '日本年金機構' } });
    expect(row('q-unknown')).toMatchObject({
      status: 'denied',
      reason: 'UNKNOWN_REQUESTER',
      subjectId: null,
      requester: { id: 'ghost-agency', kind: null, name: null },
      // No version in the denial: the names come from the version in force at its time.
      procedure: { code: 'pre-twenty-disability-pension-income-check', name: '20歳前の傷病による障害基礎年金受給者の所得確認に関する事務' },
      tableVersion: 1,
    });
  });

  it('records each person of a bulk query on their own serial, with the batch', () => {
    const bulk = [0, 1, 2].map((i) => row(`q-bulk-${i}`));
    expect(bulk.map((r) => r.batch)).toEqual([0, 1, 2].map((index) => ({ batchId: 'batch-2026-07', index, size: 3 })));
    expect(bulk.map((r) => r.subjectId)).toEqual([subject(10), subject(11), subject(12)]);
    expect(new Set(bulk.map((r) => r.serial)).size).toBe(3);
    expect(bulk.map((r) => r.status)).toEqual(['answered', 'refused-by-provider', 'voided']);
    expect(bulk[1]!.reason).toBe('AUTOMATIC_ANSWER_RESTRICTED');
  });

  it('ends a serial the hub voided after a crash at the time the void was recorded', () => {
    const voidEvent = events.find((e) => e.type === 'SerialVoided')!;
    expect(row('q-bulk-2')).toMatchObject({ status: 'voided', reason: 'hub restarted: the query was in flight', endedAt: voidEvent.recordedAt });
  });

  it('keeps the agency and table names in force when each query was made', () => {
    expect(row('q-v1')).toMatchObject({
      subjectId: KATO,
      requester: { id: SAPPORO, name: '札幌市' },
      provider: { id: MURORAN, name: '室蘭市役所' },
      procedure: { code: 'child-allowance', name: '児童手当の支給に関する事務' },
      items: [{ code: 'local-tax', name: '地方税関係情報' }],
      tableVersion: 1,
    });
    expect(row('q-v2')).toMatchObject({
      procedure: { code: 'child-allowance', name: '児童手当の支給（令和改正）' },
      items: [{ code: 'local-tax', name: '地方税関係情報（改正後）' }],
      tableVersion: 2,
    });
    // Rows made before the rename keep the old name.
    expect(row('q-fail').provider.name).toBe('室蘭市');
  });

  it('stores no agency code and no digest of one', () => {
    const text = JSON.stringify([...byQuery.values()]);
    for (const r of byQuery.values()) {
      if (r.subjectId === null) continue;
      for (const agency of [PENSION, MURORAN, SAPPORO]) {
        expect(text).not.toContain(codeOf(r.subjectId, agency));
        expect(text).not.toContain(sha256(codeOf(r.subjectId, agency)));
      }
    }
    expect(text).not.toMatch(/[0-9a-f]{64}/);
  });

  it('is a function of the log: folding the same events twice gives the same rows', () => {
    expect(foldProvisionRecords(events)).toEqual(foldProvisionRecords(events));
  });
});
