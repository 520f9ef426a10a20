import { beforeAll, describe, expect, it } from 'vitest';
import { InMemoryEventStore, type RecordedEvent } from '#ledger';
import { foldProvisionRecords, type CitizenRecord, type CitizenRecordsOptions, type ProvisionRecordStore } from '#projections';
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
      expect(await store.citizenRecords(AOYAMA, { now: NOW })).toEqual({ records: [] });
      expect(await store.citizenMonths(AOYAMA, { now: NOW })).toEqual([]);
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
      const PCODE = 'pre-twenty-disability-pension-income-check';
      const PNAME = '20歳前の傷病による障害基礎年金受給者の所得確認に関する事務';
      const all = async (store: ProvisionRecordStore, subjectId: string, options: Omit<CitizenRecordsOptions, 'after'>): Promise<{ records: CitizenRecord[]; pages: number }> => {
        const records: CitizenRecord[] = [];
        let after: string | undefined;
        let pages = 0;
        for (;;) {
          const page = await store.citizenRecords(subjectId, { ...options, ...(after === undefined ? {} : { after }) });
          pages += 1;
          records.push(...page.records);
          if (page.next === undefined) return { records, pages };
          expect(page.records).toHaveLength(options.limit ?? 100);
          after = page.next;
        }
      };

      it('shows the last 7 years before now, newest first, with date and time in Japan time, agencies, procedure and items with codes and names', async () => {
        const store = await loaded();
        const page = await store.citizenRecords(AOYAMA, { now: NOW });
        expect(page.next).toBeUndefined();
        const mine = page.records;
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
          kind: 'query',
          requester: { agencyId: PENSION, name: '日本年金機構' },
          provider: { agencyId: MURORAN, name: '室蘭市' },
          procedure: { code: PCODE, name: PNAME },
          items: [{ code: 'local-tax', name: '地方税関係情報' }],
          outcome: 'refused-by-provider',
        });
        const text = JSON.stringify(mine);
        for (const secret of [AOYAMA, subjectRef(AOYAMA), 'CREDENTIAL_MISMATCH', 'NO_RECORD', 'queryId']) expect(text).not.toContain(secret);
        // The denial that named nobody is not the person's record.
        expect(mine.some((r) => r.at === '2026-04-03T00:00:00.000Z')).toBe(false);
        await store.close();
      });

      it('moves the window with now: a year later the oldest rows are gone, years earlier the later ones are not yet there', async () => {
        const store = await loaded();
        expect((await store.citizenRecords(AOYAMA, { now: '2026-11-24T00:00:00.000Z' })).records.at(-1)!.at).toBe('2026-03-31T14:59:59.000Z');
        expect((await store.citizenRecords(AOYAMA, { now: new Date('2026-11-20T00:00:00.000Z') })).records.map((r) => r.at)).toContain('2019-11-21T00:00:00.000Z');
        expect((await store.citizenRecords(AOYAMA, { now: '2019-11-22T00:00:00.000Z' })).records).toHaveLength(1);
        expect((await store.citizenRecords(KATO, { now: NOW })).records.map((r) => r.procedure.name)).toEqual(['児童手当の支給（令和改正）', '児童手当の支給に関する事務']);
        await expect(store.citizenRecords(AOYAMA, { now: 'yesterday' })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
        // A from before the window does not widen it.
        expect((await store.citizenRecords(AOYAMA, { now: NOW, from: '2000-01-01T00:00:00Z' })).records.map((r) => r.at).at(-1)).toBe('2019-11-23T00:00:00.000Z');
        // Nor does a to after now.
        expect((await store.citizenRecords(AOYAMA, { now: '2026-04-02T00:00:00.000Z', to: '2030-01-01T00:00:00Z' })).records[0]!.at).toBe('2026-03-31T15:00:00.000Z');
        await store.close();
      });

      it('pages newest first with a cursor: every record once, no gap, whatever the page size', async () => {
        const store = await loaded();
        const whole = (await store.citizenRecords(AOYAMA, { now: NOW, limit: 1000 })).records;
        for (const limit of [1, 2, 4, 5]) {
          const { records, pages } = await all(store, AOYAMA, { now: NOW, limit });
          expect(records).toEqual(whole);
          expect(pages).toBe(Math.ceil(whole.length / limit));
        }
        await expect(store.citizenRecords(AOYAMA, { now: NOW, limit: 0 })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
        await expect(store.citizenRecords(AOYAMA, { now: NOW, limit: 1001 })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
        await expect(store.citizenRecords(AOYAMA, { now: NOW, after: 'x' })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
        await store.close();
      });

      it('filters by time (from inclusive, to exclusive) and by an agency that asked or provided', async () => {
        const store = await loaded();
        const april = await store.citizenRecords(AOYAMA, { now: NOW, from: '2026-04-01T00:00:00+09:00', to: '2026-05-01T00:00:00+09:00' });
        expect(april.records.map((r) => r.at)).toEqual(['2026-04-03T00:01:00.000Z', '2026-04-02T01:00:00.000Z', '2026-03-31T15:00:00.000Z']);
        expect((await store.citizenRecords(AOYAMA, { now: NOW, to: '2026-03-31T15:00:00.000Z', from: '2026-03-31T14:59:59.000Z' })).records.map((r) => r.at)).toEqual(['2026-03-31T14:59:59.000Z']);
        const sapporo = await store.citizenRecords(AOYAMA, { now: NOW, agencyId: SAPPORO });
        expect(sapporo.records.map((r) => [r.requester?.agencyId, r.provider.agencyId])).toEqual([[SAPPORO, MURORAN]]);
        // Muroran provided every one of them; the pension service asked all but Sapporo's.
        expect((await store.citizenRecords(AOYAMA, { now: NOW, agencyId: MURORAN })).records).toHaveLength(6);
        expect((await store.citizenRecords(AOYAMA, { now: NOW, agencyId: PENSION })).records).toHaveLength(5);
        expect((await store.citizenRecords(AOYAMA, { now: NOW, agencyId: 'nobody' })).records).toEqual([]);
        const { records } = await all(store, AOYAMA, { now: NOW, agencyId: PENSION, limit: 2 });
        expect(records.map((r) => r.serial)).toEqual((await store.citizenRecords(AOYAMA, { now: NOW, agencyId: PENSION })).records.map((r) => r.serial));
        await store.close();
      });

      it('counts per Japan-time month and outcome, oldest month first, empty months omitted', async () => {
        const store = await loaded();
        expect(await store.citizenMonths(AOYAMA, { now: NOW })).toEqual([
          { month: '2019-11', total: 1, byOutcome: { answered: 1 } },
          { month: '2026-03', total: 1, byOutcome: { answered: 1 } },
          { month: '2026-04', total: 3, byOutcome: { denied: 1, failed: 1, 'refused-by-provider': 1 } },
          { month: '2026-11', total: 1, byOutcome: { pending: 1 } },
        ]);
        expect(await store.citizenMonths(AOYAMA, { now: NOW, from: '2026-01-01T00:00:00+09:00', to: '2026-04-01T00:00:00+09:00' })).toEqual([{ month: '2026-03', total: 1, byOutcome: { answered: 1 } }]);
        expect(await store.citizenMonths(KATO, { now: NOW })).toEqual([
          { month: '2026-05', total: 1, byOutcome: { answered: 1 } },
          { month: '2026-06', total: 1, byOutcome: { answered: 1 } },
        ]);
        await store.close();
      });

      it('folds a self-information request (the citizen asked; no requester agency) as kind self-information, with requester null, in the provider\'s records too', async () => {
        const store = await loaded();
        const last = events.at(-1)!;
        let position = last.position;
        const serial = '20261122010000099999';
        const at = (type: string, data: Record<string, unknown>, terminal?: 'completed'): RecordedEvent => {
          position += 1;
          return { ...last, eventId: `self-${position}` as RecordedEvent['eventId'], type, streamId: 'query-self-1', streamRevision: position - last.position - 1, position, serial: serial as RecordedEvent['serial'], data, ...(terminal === undefined ? { terminal: null } : { terminal }) } as RecordedEvent;
        };
        const common = { queryId: 'self-1', providerAgencyId: MURORAN, providerKind: 'municipality', procedureCode: 'self-information', itemCodes: ['local-tax'], subjectId: AOYAMA };
        await store.apply([
          at('QueryAccepted', { ...common, requesterKind: 'citizen', tableVersion: 1, acceptedAt: '2026-11-21T23:30:00.000Z' }),
          at('ProvisionRequested', { queryId: 'self-1', subjectId: AOYAMA, providerAgencyId: MURORAN, procedureCode: 'self-information', itemCodes: ['local-tax'], requestedAt: '2026-11-21T23:30:00.000Z' }),
          at('QueryCompleted', { queryId: 'self-1', outcome: 'answered', completedAt: '2026-11-21T23:30:01.000Z' }, 'completed'),
        ]);
        const [newest] = (await store.citizenRecords(AOYAMA, { now: NOW })).records;
        expect(newest).toEqual({
          serial,
          at: '2026-11-21T23:30:00.000Z',
          date: '2026-11-22',
          time: '08:30:00',
          kind: 'self-information',
          requester: null,
          provider: { agencyId: MURORAN, name: '室蘭市役所' },
          procedure: { code: 'self-information', name: '自己情報表示' },
          items: [{ code: 'local-tax', name: '地方税関係情報（改正後）' }],
          outcome: 'answered',
        });
        // The agency filter finds it by its provider; the requester's does not.
        expect((await store.citizenRecords(AOYAMA, { now: NOW, agencyId: MURORAN })).records[0]!.serial).toBe(serial);
        expect((await store.citizenRecords(AOYAMA, { now: NOW, agencyId: PENSION })).records.some((r) => r.serial === serial)).toBe(false);
        // The provider sees it among its provisions, with no requester; no requester's records hold it.
        const provided = await store.agencyRecords(MURORAN, { limit: 1 });
        expect(provided.records[0]).toMatchObject({ serial, role: 'provider', kind: 'self-information', requester: null, status: 'answered' });
        expect((await store.agencyRecords(MURORAN, { role: 'provider', limit: 1 })).records[0]!.serial).toBe(serial);
        expect((await store.agencyMonthlyCounts(MURORAN, { month: '2026-11' })).find((c) => c.procedure.code === 'self-information')).toEqual({ month: '2026-11', procedure: { code: 'self-information', name: '自己情報表示' }, role: 'provider', status: 'answered', count: 1 });
        expect((await store.record(serial))).toMatchObject({ kind: 'self-information', requester: null, subjectId: subjectRef(AOYAMA) });
        // A denied one (e.g. SELF_DISCLOSURE_NOT_ALLOWED) folds alike.
        position += 1;
        await store.apply([
          { ...last, eventId: 'self-denied' as RecordedEvent['eventId'], type: 'QueryDenied', streamId: 'query-self-2', streamRevision: 0, position, serial: '20261122010000099998' as RecordedEvent['serial'], terminal: 'denied', data: { queryId: 'self-2', requesterKind: 'citizen', providerAgencyId: SAPPORO, procedureCode: 'self-information', itemCodes: ['resident-record'], reason: 'SELF_DISCLOSURE_NOT_ALLOWED', subjectId: AOYAMA, deniedAt: '2026-11-21T23:40:00.000Z' } } as RecordedEvent,
        ]);
        expect((await store.citizenRecords(AOYAMA, { now: NOW, limit: 1 })).records[0]).toMatchObject({ kind: 'self-information', requester: null, provider: { agencyId: SAPPORO, name: '札幌市' }, outcome: 'denied' });
        expect((await store.citizenMonths(AOYAMA, { now: NOW })).at(-1)).toEqual({ month: '2026-11', total: 3, byOutcome: { answered: 1, denied: 1, pending: 1 } });
        await store.close();
      });
      it('folds every push as a row of kind push (subscriber told as requester, provider whose copy changed): the citizen\'s and both agencies\' records, pending until delivered or abandoned; a rebuild gives the same rows (I8)', async () => {
        const store = await loaded();
        const last = events.at(-1)!;
        let position = last.position;
        const ev = (type: string, streamId: string, serial: string, data: Record<string, unknown>, terminal: 'completed' | 'failed'): RecordedEvent => {
          position += 1;
          return { ...last, eventId: `push-${position}` as RecordedEvent['eventId'], type, streamId, streamRevision: 0, position, serial: serial as RecordedEvent['serial'], data, terminal } as RecordedEvent;
        };
        const issued = (pushId: string, serial: string, issuedAt: string) =>
          ev('PushIssued', `push-${pushId}`, serial, { pushId, updateId: 'u-1', subjectId: AOYAMA, subscriptionId: `s-${pushId}`, code: 'the-subscribers-code', requesterAgencyId: PENSION, providerAgencyId: MURORAN, procedureCode: 'pension-award-claim', itemCode: 'local-tax', updatedAt: '2026-11-21T23:00:00.000Z', issuedAt, deliverBy: '2026-11-22T23:50:00.000Z' }, 'completed');
        const ended = (type: 'PushDelivered' | 'PushAbandoned', pushId: string, serial: string, at: string) =>
          ev(type, `push-${pushId}`, serial, type === 'PushDelivered'
            ? { pushId, requesterAgencyId: PENSION, providerAgencyId: MURORAN, attempts: 1, duplicate: false, deliveredAt: at }
            : { pushId, requesterAgencyId: PENSION, providerAgencyId: MURORAN, attempts: 9, lastError: 'the receiver answered HTTP 500', deliverBy: at, abandonedAt: at }, type === 'PushDelivered' ? 'completed' : 'failed');
        const more = [
          issued('p-1', '20261122010000099901', '2026-11-21T23:50:00.000Z'),
          issued('p-2', '20261122010000099903', '2026-11-21T23:51:00.000Z'),
          ended('PushAbandoned', 'p-2', '20261122010000099904', '2026-11-21T23:59:00.000Z'),
          issued('p-3', '20261122010000099905', '2026-11-21T23:52:00.000Z'),
        ];
        // The first batch issues p-1, p-2 (ended in the same batch) and p-3; p-1 is delivered in a later batch (its row read back from the store).
        await store.apply(more);
        const delivered = ended('PushDelivered', 'p-1', '20261122010000099902', '2026-11-21T23:50:01.000Z');
        await store.apply([delivered]);
        // A repeated end changes nothing: a push ends once.
        const again = ended('PushAbandoned', 'p-1', '20261122010000099906', '2026-11-22T00:00:00.000Z');
        await store.apply([again]);
        const rows = (await store.citizenRecords(AOYAMA, { now: NOW, limit: 3 })).records;
        expect(rows.map((r) => [r.serial, r.kind, r.outcome])).toEqual([
          ['20261122010000099905', 'push', 'pending'],
          ['20261122010000099903', 'push', 'abandoned'],
          ['20261122010000099901', 'push', 'delivered'],
        ]);
        expect(rows[2]).toEqual({
          serial: '20261122010000099901',
          at: '2026-11-21T23:50:00.000Z',
          date: '2026-11-22',
          time: '08:50:00',
          kind: 'push',
          requester: { agencyId: PENSION, name: expect.any(String) },
          provider: { agencyId: MURORAN, name: '室蘭市役所' },
          procedure: { code: 'pension-award-claim', name: expect.any(String) },
          items: [{ code: 'local-tax', name: '地方税関係情報（改正後）' }],
          outcome: 'delivered',
        });
        expect(JSON.stringify(rows)).not.toContain('the-subscribers-code');
        expect(await store.record('20261122010000099903')).toMatchObject({ kind: 'push', queryId: 'p-2', status: 'abandoned', reason: 'the receiver answered HTTP 500', endedAt: '2026-11-21T23:59:00.000Z', subjectId: subjectRef(AOYAMA) });
        expect(await store.record('20261122010000099902')).toBeUndefined();
        // Both agencies' records hold each push: the subscriber as requester, the provider as provider.
        expect((await store.agencyRecords(PENSION, { role: 'requester', limit: 3 })).records.map((r) => [r.queryId, r.kind, r.status])).toEqual([['p-3', 'push', 'pending'], ['p-2', 'push', 'abandoned'], ['p-1', 'push', 'delivered']]);
        expect((await store.agencyRecords(MURORAN, { role: 'provider', limit: 3 })).records.map((r) => [r.queryId, r.kind, r.status])).toEqual([['p-3', 'push', 'pending'], ['p-2', 'push', 'abandoned'], ['p-1', 'push', 'delivered']]);
        expect((await store.citizenMonths(AOYAMA, { now: NOW })).at(-1)!.byOutcome).toMatchObject({ delivered: 1, abandoned: 1 });
        // I8: the same log folded at once gives the identical rows, and so does the in-memory fold.
        const rebuilt = await open();
        await rebuilt.apply([...events, ...more, delivered, again]);
        expect(await rebuilt.digest()).toBe(await store.digest());
        expect(foldProvisionRecords([...events, ...more, delivered, again]).filter((r) => r.kind === 'push').map((r) => [r.queryId, r.status])).toEqual([['p-1', 'delivered'], ['p-2', 'abandoned'], ['p-3', 'pending']]);
        await rebuilt.close();
        await store.close();
      });
    });

    describe('agency view', () => {
      it('lists the queries an agency made and the provisions asked of it, newest first, with its role', async () => {
        const store = await loaded();
        const asked = await store.agencyRecords(PENSION, { role: 'requester' });
        expect(asked.records.every((r) => r.role === 'requester' && r.kind === 'query' && r.requester?.id === PENSION)).toBe(true);
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
