import { beforeAll, describe, expect, it } from 'vitest';
import { InMemoryEventStore, type RecordedEvent } from '#ledger';
import { foldProvisionRecords, type ProvisionRecordStore } from '#projections';
import { AOYAMA, KATO, MURORAN, NOW, PENSION, SAPPORO, richLog, subjectRef } from './scenario.js';

/** The events of richLog, built once per suite on an in-memory ledger with a fixed clock. */
export async function richEvents(): Promise<readonly RecordedEvent[]> {
  let clock = Date.parse(NOW);
  const store = new InMemoryEventStore({ now: () => new Date((clock += 3)) });
  await richLog(store);
  const events = await store.readAll();
  await store.close();
  return events;
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** The contract every provision record store MUST pass. */
export function provisionStoreContract(name: string, open: () => Promise<ProvisionRecordStore>): void {
  describe(`${name}: provision record store contract`, () => {
    let events: readonly RecordedEvent[];
    beforeAll(async () => {
      events = await richEvents();
    });
    const loaded = async (batch = events.length) => {
      const store = await open();
      for (const c of chunks(events, batch)) await store.apply(c);
      return store;
    };

    it('holds exactly the rows of the pure fold, and its checkpoint is the last position, other streams included', async () => {
      const store = await loaded();
      // Stores file a person by the reference (scenario's subjectRef), not the subject id.
      expect(await store.records()).toEqual(foldProvisionRecords(events).map((r) => (r.subjectId === null ? r : { ...r, subjectId: subjectRef(r.subjectId) })));
      expect(await store.checkpoint()).toBe(events.at(-1)!.position);
      await store.close();
    });

    it('a retention sweep forgets every record of the years it shredded; an erasure every record of the person', async () => {
      const store = await loaded();
      const before = await store.records();
      expect(before.some((r) => r.requestedAt.startsWith('2019'))).toBe(true);
      const next = events.at(-1)!.position + 1;
      const shred = (position: number, data: Record<string, unknown>): RecordedEvent => ({ ...events.at(-1)!, eventId: `shred-${position}` as RecordedEvent['eventId'], type: 'KeysShredded', streamId: 'keys-shredded', streamRevision: position - next, position, data });
      await store.apply([shred(next, { shredId: 's1', scope: 'retention', throughEpoch: 2019, epochs: [2019], reason: 'seven years', shreddedAt: NOW })]);
      const afterRetention = await store.records();
      expect(afterRetention.some((r) => r.requestedAt < '2019-12-31T15:00:00.000Z')).toBe(false);
      expect(afterRetention.length).toBe(before.filter((r) => r.requestedAt >= '2019-12-31T15:00:00.000Z').length);
      await store.apply([shred(next + 1, { shredId: 's2', scope: 'erasure', subject: AOYAMA, reason: 'erasure', shreddedAt: NOW })]);
      expect(await store.citizenRecords(AOYAMA, { now: NOW })).toEqual([]);
      expect((await store.records()).some((r) => r.subjectId === subjectRef(AOYAMA))).toBe(false);
      expect((await store.records()).some((r) => r.subjectId === subjectRef(KATO))).toBe(true);
      expect(await store.checkpoint()).toBe(next + 1);
      await store.close();
    });

    it('skips events of other streams, but moves its checkpoint past them', async () => {
      const store = await open();
      const others = events.slice(0, events.findIndex((e) => e.streamId.startsWith('query-')));
      expect(others.length).toBeGreaterThan(3);
      await store.apply(others);
      expect(await store.checkpoint()).toBe(others.at(-1)!.position);
      expect(await store.records()).toEqual([]);
      await store.close();
    });

    it('gives the same rows and digest whether the events come at once or in batches of any size', async () => {
      const once = await loaded();
      const expected = await once.digest();
      for (const size of [1, 2, 7]) {
        const store = await loaded(size);
        expect(await store.digest()).toBe(expected);
        await store.close();
      }
      expect(expected).toMatch(/^[0-9a-f]{64}$/);
      await once.close();
    });

    it('skips events at or before its checkpoint: delivery at least once changes nothing', async () => {
      const store = await open();
      const half = Math.floor(events.length / 2);
      await store.apply(events.slice(0, half + 5));
      await store.apply(events.slice(half - 10, half + 20));
      await store.apply(events.slice(0, 3));
      await store.apply(events.slice(half + 20));
      await store.apply(events);
      const reference = await loaded();
      expect(await store.digest()).toBe(await reference.digest());
      expect(await store.checkpoint()).toBe(events.at(-1)!.position);
      await Promise.all([store.close(), reference.close()]);
    });

    it('refuses a batch with a hole after its checkpoint, and changes nothing', async () => {
      const store = await open();
      await store.apply(events.slice(0, 10));
      const before = await store.digest();
      await expect(store.apply([...events.slice(10, 12), ...events.slice(13, 40)])).rejects.toThrow(expect.objectContaining({ code: 'PROJECTION_GAP' }));
      expect(await store.checkpoint()).toBe(events[9]!.position);
      expect(await store.digest()).toBe(before);
      await store.apply(events.slice(10));
      const reference = await loaded();
      expect(await store.digest()).toBe(await reference.digest());
      await Promise.all([store.close(), reference.close()]);
    });

    it('reset drops every row and the checkpoint; applying again gives the same digest', async () => {
      const store = await loaded();
      const digest = await store.digest();
      await store.reset();
      expect(await store.checkpoint()).toBe(-1);
      expect(await store.records()).toEqual([]);
      await store.apply(events);
      expect(await store.digest()).toBe(digest);
      await store.close();
    });

    it('a different row gives a different digest', async () => {
      const store = await loaded();
      const shorter = await open();
      const cut = events.findIndex((e) => e.type === 'QueryCompleted');
      await shorter.apply(events.slice(0, cut));
      expect(await shorter.digest()).not.toBe(await store.digest());
      await Promise.all([store.close(), shorter.close()]);
    });

    describe('citizen view', () => {
      it('shows the last 7 years before now, newest first, with date and time in Japan time and names only', async () => {
        const store = await loaded();
        const mine = await store.citizenRecords(AOYAMA, { now: NOW });
        expect(mine.map((r) => r.at)).toEqual([
          '2026-11-21T23:00:00.000Z',
          '2026-04-03T00:01:00.000Z',
          '2026-04-02T01:00:00.000Z',
          '2026-03-31T15:00:00.000Z',
          '2026-03-31T14:59:59.000Z',
          '2019-11-23T00:00:00.000Z',
        ]);
        expect(mine[3]).toEqual({
          serial: expect.stringMatching(/^\d{20}$/),
          at: '2026-03-31T15:00:00.000Z',
          date: '2026-04-01',
          time: '00:00:00',
          requester: '日本年金機構',
          provider: '室蘭市',
          procedure: '20歳前の傷病による障害基礎年金受給者の所得確認に関する事務',
          items: ['地方税関係情報'],
          outcome: 'refused-by-provider',
        });
        const text = JSON.stringify(mine);
        for (const code of [AOYAMA, PENSION, MURORAN, 'pre-twenty-disability-pension-income-check', 'local-tax', 'CREDENTIAL_MISMATCH']) expect(text).not.toContain(code);
        // The denial that named nobody is not the person's record.
        expect(mine.some((r) => r.at === '2026-04-03T00:00:00.000Z')).toBe(false);
        await store.close();
      });

      it('moves the window with now: a year later the oldest rows are gone, years earlier the later ones are not yet there', async () => {
        const store = await loaded();
        expect((await store.citizenRecords(AOYAMA, { now: '2026-11-24T00:00:00.000Z' })).at(-1)!.at).toBe('2026-03-31T14:59:59.000Z');
        expect((await store.citizenRecords(AOYAMA, { now: new Date('2026-11-20T00:00:00.000Z') })).map((r) => r.at)).toContain('2019-11-21T00:00:00.000Z');
        expect(await store.citizenRecords(AOYAMA, { now: '2019-11-22T00:00:00.000Z' })).toHaveLength(1);
        expect((await store.citizenRecords(KATO, { now: NOW })).map((r) => r.procedure)).toEqual(['児童手当の支給（令和改正）', '児童手当の支給に関する事務']);
        await expect(store.citizenRecords(AOYAMA, { now: 'yesterday' })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
        await store.close();
      });
    });

    describe('agency view', () => {
      it('lists the queries an agency made and the provisions asked of it, newest first, with its role', async () => {
        const store = await loaded();
        const asked = await store.agencyRecords(PENSION, { role: 'requester' });
        expect(asked.records.every((r) => r.role === 'requester' && r.requester.id === PENSION)).toBe(true);
        expect(asked.records.map((r) => r.queryId)).toEqual(['q-pending', 'q-bulk-2', 'q-bulk-1', 'q-bulk-0', 'q-nocode', 'q-stolen', 'q-april', 'q-march', 'q-edge', 'q-old']);
        expect(asked.next).toBeUndefined();
        const provided = await store.agencyRecords(MURORAN, { role: 'provider' });
        expect(provided.records).toHaveLength(14);
        expect((await store.agencyRecords(MURORAN, { role: 'requester' })).records).toEqual([]);
        const both = await store.agencyRecords(SAPPORO);
        expect(both.records.map((r) => [r.queryId, r.role])).toEqual([['q-v2', 'requester'], ['q-v1', 'requester'], ['q-fail', 'requester']]);
        expect(JSON.stringify(both)).not.toContain(KATO);
        await store.close();
      });

      it('pages with a cursor and filters by time', async () => {
        const store = await loaded();
        const all = (await store.agencyRecords(MURORAN, { limit: 1000 })).records;
        const paged: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.agencyRecords(MURORAN, { limit: 4, ...(after === undefined ? {} : { after }) });
          paged.push(...page.records.map((r) => r.serial));
          if (page.next === undefined) break;
          after = page.next;
        }
        expect(paged).toEqual(all.map((r) => r.serial));
        const april = await store.agencyRecords(MURORAN, { from: '2026-04-01T00:00:00+09:00', to: '2026-05-01T00:00:00+09:00' });
        expect(april.records.map((r) => r.queryId)).toEqual(['q-unknown', 'q-nocode', 'q-stolen', 'q-fail', 'q-april']);
        await expect(store.agencyRecords(MURORAN, { limit: 0 })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
        await expect(store.agencyRecords(MURORAN, { after: 'x' })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
        await store.close();
      });

      it('counts per Japan-time month, procedure, role and outcome', async () => {
        const store = await loaded();
        const pcode = 'pre-twenty-disability-pension-income-check';
        const pname = '20歳前の傷病による障害基礎年金受給者の所得確認に関する事務';
        expect(await store.agencyMonthlyCounts(PENSION, { month: '2026-03' })).toEqual([{ month: '2026-03', procedure: { code: pcode, name: pname }, role: 'requester', status: 'answered', count: 1 }]);
        expect(await store.agencyMonthlyCounts(PENSION, { month: '2026-04' })).toEqual([
          { month: '2026-04', procedure: { code: pcode, name: pname }, role: 'requester', status: 'denied', count: 2 },
          { month: '2026-04', procedure: { code: pcode, name: pname }, role: 'requester', status: 'refused-by-provider', count: 1 },
        ]);
        const muroran = await store.agencyMonthlyCounts(MURORAN);
        expect(muroran.filter((c) => c.month === '2026-07')).toEqual([
          { month: '2026-07', procedure: { code: pcode, name: pname }, role: 'provider', status: 'answered', count: 1 },
          { month: '2026-07', procedure: { code: pcode, name: pname }, role: 'provider', status: 'refused-by-provider', count: 1 },
          { month: '2026-07', procedure: { code: pcode, name: pname }, role: 'provider', status: 'voided', count: 1 },
        ]);
        expect(muroran.reduce((n, c) => n + c.count, 0)).toBe(14);
        expect(muroran.filter((c) => c.month === '2026-05' || c.month === '2026-06').map((c) => [c.month, c.procedure.name])).toEqual([
          ['2026-05', '児童手当の支給に関する事務'],
          ['2026-06', '児童手当の支給（令和改正）'],
        ]);
        await expect(store.agencyMonthlyCounts(PENSION, { month: '2026-13' })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
        await store.close();
      });
    });
  });
}
