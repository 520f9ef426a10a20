import { afterEach, describe, expect, it } from 'vitest';
import {
  japanDay,
  voidOpenSerials,
  type AppendRequest,
  type EventStore,
  type NewEvent,
  type RecordedEvent,
  type SerialNumber,
} from '#ledger';

export interface StoreFactoryOptions {
  readonly nodeId: number;
  readonly now: () => Date;
}
/** Creates a fresh, empty store. `reopen` (optional) closes it and opens the same storage again. */
export type StoreFactory = (options: StoreFactoryOptions) => Promise<{ store: EventStore; reopen?: () => Promise<EventStore> }>;

const meta = { actor: 'system:test', correlationId: 'c-1' };

export function opened(streamId: string, events: NewEvent[], extra: Partial<AppendRequest> = {}): AppendRequest {
  return { streamId, expectedRevision: 'any', serial: { allocate: true }, events, metadata: meta, ...extra };
}
const done = (type = 'Done', data: unknown = {}): NewEvent => ({ type, data, terminal: 'completed' });
const step = (type = 'Step', data: unknown = {}): NewEvent => ({ type, data });

/** The behaviour every EventStore adapter MUST have. */
/** `durable`: the adapter keeps its events across a reopen, so the durability cases apply to it. */
export function eventStoreContract(adapter: string, factory: StoreFactory, { durable }: { durable: boolean }): void {
  describe(`EventStore contract: ${adapter}`, () => {
    let clock = new Date('2026-11-22T03:00:00.000Z');
    const now = () => clock;
    const stores: EventStore[] = [];
    const make = async (nodeId = 7) => {
      clock = new Date('2026-11-22T03:00:00.000Z');
      const made = await factory({ nodeId, now });
      stores.push(made.store);
      return made;
    };
    afterEach(async () => {
      for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    });

    describe('append and read', () => {
      it('given an empty store, when events are appended, then positions and revisions start at 0 and are contiguous', async () => {
        const { store } = await make();
        const a = await store.append(opened('order-1', [step('A', { n: 1 }), done('B', { n: 2 })], { expectedRevision: 'no_stream' }));
        const b = await store.append(opened('order-2', [done('C', { n: 3 })]));
        expect(a).toMatchObject({ status: 'appended', firstPosition: 0, lastPosition: 1, nextExpectedRevision: 1 });
        expect(b).toMatchObject({ firstPosition: 2, lastPosition: 2, nextExpectedRevision: 0 });
        expect(await store.head()).toBe(3);
        const all = await store.readAll();
        expect(all.map((e) => [e.position, e.streamId, e.streamRevision, e.type])).toEqual([
          [0, 'order-1', 0, 'A'],
          [1, 'order-1', 1, 'B'],
          [2, 'order-2', 0, 'C'],
        ]);
        expect(all[0]!.data).toEqual({ n: 1 });
        expect(all[0]!.eventId).toBe(a.eventIds[0]);
        expect(all[0]!.metadata).toEqual(meta);
        expect(all[0]!.schemaVersion).toBe(1);
        expect(all[1]!.terminal).toBe('completed');
        expect(all[0]!.terminal).toBeUndefined();
      });

      it('reads a stream from a revision with a limit, and an unknown stream as empty', async () => {
        const { store } = await make();
        await store.append(opened('s', [step('A'), step('B'), step('C'), done('D')]));
        expect((await store.readStream('s', { fromRevision: 1, maxCount: 2 })).map((e) => e.type)).toEqual(['B', 'C']);
        expect(await store.readStream('nope')).toEqual([]);
      });

      it('pages through the whole log with readAll', async () => {
        const { store } = await make();
        for (let i = 0; i < 25; i++) await store.append(opened(`s-${i % 3}`, [done('E', { i })]));
        const seen: number[] = [];
        for (let from = 0; ; ) {
          const page = await store.readAll({ fromPosition: from, maxCount: 7 });
          if (page.length === 0) break;
          seen.push(...page.map((e) => e.position));
          from = page.at(-1)!.position + 1;
        }
        expect(seen).toEqual([...Array(25).keys()]);
      });

      it('keeps the recorded time in ISO form and never lets it go backwards', async () => {
        const { store } = await make();
        await store.append(opened('s', [done()]));
        clock = new Date(clock.getTime() - 60_000);
        await store.append(opened('s', [done()]));
        const [a, b] = await store.readAll();
        expect(a!.recordedAt).toBe('2026-11-22T03:00:00.000Z');
        expect(b!.recordedAt >= a!.recordedAt).toBe(true);
      });
    });

    describe('expected revision', () => {
      it('accepts the exact revision and refuses any other, changing nothing', async () => {
        const { store } = await make();
        await store.append(opened('s', [done()], { expectedRevision: 'no_stream' }));
        await expect(store.append(opened('s', [done()], { expectedRevision: 'no_stream' }))).rejects.toMatchObject({
          code: 'WRONG_EXPECTED_REVISION',
          actual: 0,
        });
        await expect(store.append(opened('s', [done()], { expectedRevision: 5 }))).rejects.toThrow(/expected revision 5, actual 0/);
        await expect(store.append(opened('t', [done()], { expectedRevision: 0 }))).rejects.toMatchObject({ actual: 'no_stream' });
        expect(await store.head()).toBe(1);
        const ok = await store.append(opened('s', [done()], { expectedRevision: 0 }));
        expect(ok.nextExpectedRevision).toBe(1);
        expect(await store.head()).toBe(2);
      });

      it('lets only one of two racing writers with the same expected revision win', async () => {
        const { store } = await make();
        await store.append(opened('s', [done()]));
        const results = await Promise.allSettled([
          store.append(opened('s', [done('X')], { expectedRevision: 0 })),
          store.append(opened('s', [done('Y')], { expectedRevision: 0 })),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
        expect(await store.readStream('s')).toHaveLength(2);
      });

      it('refuses malformed requests precisely', async () => {
        const { store } = await make();
        await expect(store.append(opened('bad stream id', [done()]))).rejects.toMatchObject({ code: 'INVALID_APPEND' });
        await expect(store.append(opened('s', []))).rejects.toThrow(/has no events/);
        await expect(store.append(opened('s', [done('A'), done('B')]))).rejects.toThrow(/only the last event/);
        await expect(store.append(opened('s', [done()], { expectedRevision: -1 }))).rejects.toMatchObject({ code: 'INVALID_APPEND' });
        expect(await store.head()).toBe(0);
      });
    });

    describe('processing serial numbers (I2)', () => {
      it('allocates 20-digit serials of the Japan-time day, node id and a gap-free daily sequence', async () => {
        const { store } = await make(7);
        const serials: string[] = [];
        for (let i = 0; i < 3; i++) serials.push((await store.append(opened(`s${i}`, [done()]))).serial);
        expect(serials).toEqual(['20261122070000000001', '20261122070000000002', '20261122070000000003']);
        expect((await store.readAll()).map((e) => e.serial)).toEqual(serials);
      });

      it('starts a new daily sequence at midnight Japan time (15:00 UTC), and never goes back a day', async () => {
        const { store } = await make(3);
        clock = new Date('2026-11-22T14:59:59.999Z');
        const a = await store.append(opened('s', [done()]));
        clock = new Date('2026-11-22T15:00:00.000Z');
        const b = await store.append(opened('s', [done()]));
        clock = new Date('2026-11-22T14:00:00.000Z');
        const c = await store.append(opened('s', [done()]));
        expect([a.serial, b.serial, c.serial]).toEqual(['20261122030000000001', '20261123030000000001', '20261123030000000002']);
        expect(japanDay(new Date('2026-11-22T15:00:00.000Z'))).toBe('20261123');
      });

      it('continues an open serial across appends and ends it with exactly one terminal event', async () => {
        const { store } = await make();
        const first = await store.append(opened('q-1', [step('QueryAccepted')]));
        expect(await store.openSerials()).toEqual([first.serial]);
        expect(await store.serialStatus(first.serial)).toMatchObject({ state: 'open', firstPosition: 0 });
        const next = await store.append(opened('q-1', [step('ProviderCalled')], { serial: { continue: first.serial } }));
        expect(next.serial).toBe(first.serial);
        await store.append(opened('q-1', [done('Provided')], { serial: { continue: first.serial } }));
        expect(await store.serialStatus(first.serial)).toMatchObject({ state: 'closed', outcome: 'completed' });
        expect(await store.openSerials()).toEqual([]);
        await expect(store.append(opened('q-1', [done('Again')], { serial: { continue: first.serial } }))).rejects.toMatchObject({
          code: 'SERIAL_NOT_OPEN',
          state: 'closed',
        });
        expect((await store.readSerial(first.serial)).map((e) => e.type)).toEqual(['QueryAccepted', 'ProviderCalled', 'Provided']);
      });

      it('refuses to continue a serial it never allocated', async () => {
        const { store } = await make();
        await expect(
          store.append(opened('s', [done()], { serial: { continue: '20261122079999999999' as SerialNumber } })),
        ).rejects.toMatchObject({ code: 'SERIAL_NOT_OPEN', state: 'unknown' });
      });

      it('a refused append does not consume a serial', async () => {
        const { store } = await make(7);
        await store.append(opened('s', [done()], { expectedRevision: 'no_stream' }));
        await expect(store.append(opened('s', [done()], { expectedRevision: 'no_stream' }))).rejects.toThrow();
        const next = await store.append(opened('t', [done()]));
        expect(next.serial).toBe('20261122070000000002');
      });

      it('voids serials left open (as after a crash) with an explicit terminal event in their stream', async () => {
        const { store } = await make();
        const open = await store.append(opened('q-9', [step('QueryAccepted')]));
        await store.append(opened('q-8', [done()]));
        const voided = await voidOpenSerials(store, 'crash-recovery', 'boot-1');
        expect(voided).toEqual([{ serial: open.serial, streamId: 'q-9' }]);
        const events = await store.readSerial(open.serial);
        expect(events.at(-1)).toMatchObject({ type: 'SerialVoided', terminal: 'voided', streamId: 'q-9' });
        expect(await store.openSerials()).toEqual([]);
        expect(await voidOpenSerials(store, 'crash-recovery', 'boot-2')).toEqual([]);
      });
    });

    describe('idempotency', () => {
      it('returns the original outcome for a retried key and appends nothing', async () => {
        const { store } = await make();
        const keyed = (digest: string) =>
          opened('s', [done('Issued', { v: digest })], {
            idempotency: { key: 'agency:1/k-1', requestDigest: digest },
          });
        const first = await store.append(keyed('d1'));
        const again = await store.append(keyed('d1'));
        expect(again).toEqual({ ...first, status: 'duplicate' });
        expect(await store.head()).toBe(1);
        await expect(store.append(keyed('d2'))).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
        expect(await store.idempotentOutcome('agency:1/k-1')).toEqual({ requestDigest: 'd1', result: { ...first, status: 'duplicate' } });
        expect(await store.idempotentOutcome('agency:1/never-used')).toBeUndefined();
        expect(await store.head()).toBe(1);
        expect((await store.readAll())[0]!.metadata.idempotency).toEqual({ key: 'agency:1/k-1', requestDigest: 'd1', events: 1 });
      });

      it('holds when the retries race in the same batch', async () => {
        const { store } = await make();
        const req = opened('s', [done()], {
          idempotency: { key: 'agency:1/k-2', requestDigest: 'd' },
        });
        const results = await Promise.all([store.append(req), store.append(req), store.append(req)]);
        expect(results.map((r) => r.status).sort()).toEqual(['appended', 'duplicate', 'duplicate']);
        expect(new Set(results.map((r) => r.serial)).size).toBe(1);
        expect(await store.head()).toBe(1);
      });
    });

    describe('uniqueness claims', () => {
      it('refuses an append whose claim is held, also within one batch, and writes nothing for it', async () => {
        const { store } = await make();
        await store.append(opened('a', [{ ...done(), claims: ['number:x'] }]));
        await expect(store.append(opened('b', [{ ...done(), claims: ['number:x'] }]))).rejects.toMatchObject({ code: 'CLAIM_CONFLICT' });
        const racing = await Promise.allSettled([
          store.append(opened('c', [{ ...done(), claims: ['number:y'] }])),
          store.append(opened('d', [{ ...done(), claims: ['number:y'] }])),
        ]);
        expect(racing.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
        expect(await store.head()).toBe(2);
        expect((await store.readAll())[0]!.claims).toEqual(['number:x']);
      });
    });

    describe('group commit', () => {
      it('acknowledges concurrent appends with unique contiguous positions, and fails only the bad request', async () => {
        const { store } = await make();
        const requests = Array.from({ length: 300 }, (_, i) =>
          store.append(opened(`s-${i % 10}`, [step('A', { i }), done('B', { i })], i === 150 ? { expectedRevision: 99 } : {})),
        );
        const results = await Promise.allSettled(requests);
        expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
        expect(results[150]!.status).toBe('rejected');
        const positions = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.firstPosition, r.value.lastPosition] : []));
        expect(new Set(positions).size).toBe(598);
        expect(Math.max(...positions)).toBe(597);
        const log = await store.readAll();
        expect(log.map((e) => e.position)).toEqual([...Array(598).keys()]);
        const serials = [...new Set(log.map((e) => e.serial))];
        expect(serials.map((s) => Number(s.slice(10)))).toEqual([...Array(299).keys()].map((i) => i + 1));
      });
    });

    describe('subscriptions', () => {
      it('catches up from a position and then follows live appends', async () => {
        const { store } = await make();
        for (let i = 0; i < 5; i++) await store.append(opened('s', [done('E', { i })]));
        const controller = new AbortController();
        const seen: RecordedEvent[] = [];
        const consumed = (async () => {
          for await (const e of store.subscribe({ fromPosition: 2, signal: controller.signal, pageSize: 2 })) {
            seen.push(e);
            if (seen.length === 6) controller.abort();
          }
        })();
        await new Promise((r) => setTimeout(r, 20));
        for (let i = 5; i < 8; i++) await store.append(opened('s', [done('E', { i })]));
        await consumed;
        expect(seen.map((e) => (e.data as { i: number }).i)).toEqual([2, 3, 4, 5, 6, 7]);
      });

      it('gives several subscribers at different positions each the whole log in order, as frozen events', async () => {
        const { store } = await make();
        for (let i = 0; i < 6; i++) await store.append(opened('s', [done('E', { i, nested: { list: [i] } })]));
        const controller = new AbortController();
        const follow = async (from: number, pageSize: number, until: number): Promise<RecordedEvent[]> => {
          const seen: RecordedEvent[] = [];
          for await (const e of store.subscribe({ fromPosition: from, signal: controller.signal, pageSize })) {
            seen.push(e);
            if (e.position === until) break;
          }
          return seen;
        };
        const followers = [follow(0, 2, 9), follow(0, 4, 9), follow(3, 3, 9)];
        await new Promise((r) => setTimeout(r, 20));
        for (let i = 6; i < 10; i++) await store.append(opened('s', [done('E', { i, nested: { list: [i] } })]));
        const [a, b, c] = await Promise.all(followers);
        controller.abort();
        expect(a!.map((e) => e.position)).toEqual([...Array(10).keys()]);
        expect(b!.map((e) => (e.data as { i: number }).i)).toEqual([...Array(10).keys()]);
        expect(c!.map((e) => e.position)).toEqual([3, 4, 5, 6, 7, 8, 9]);
        // Shared between subscribers, so no subscriber can change what another sees.
        const event = a![7]!;
        expect(() => ((event.data as { nested: { list: number[] } }).nested.list[0] = 99)).toThrow(TypeError);
        expect(() => ((event as { type: string }).type = 'Changed')).toThrow(TypeError);
        expect((b![7]!.data as { nested: { list: number[] } }).nested.list).toEqual([7]);
      });

      it('gives a subscriber that starts while another is mid-page the events in order from its own position', async () => {
        const { store } = await make();
        for (let i = 0; i < 10; i++) await store.append(opened('s', [done('E', { i })]));
        const stop = new AbortController();
        const first = store.subscribe({ fromPosition: 0, signal: stop.signal, pageSize: 4 })[Symbol.asyncIterator]();
        expect((await first.next()).value).toMatchObject({ position: 0 });
        const second = store.subscribe({ fromPosition: 1, signal: stop.signal, pageSize: 2 })[Symbol.asyncIterator]();
        const got: number[] = [];
        for (let i = 0; i < 9; i++) got.push(((await second.next()).value as RecordedEvent).position);
        expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        stop.abort();
        await first.return?.();
        await second.return?.();
      });
    });

    if (durable) describe('durability', () => {
      it('after reopening, every acknowledged event is there and serials continue the daily sequence', async () => {
        const made = await make(7);
        if (!made.reopen) throw new Error(`${adapter} is declared durable but its factory gives no reopen()`);
        const acked = await Promise.all(Array.from({ length: 50 }, (_, i) => made.store.append(opened(`s-${i % 5}`, [done('E', { i })]))));
        const open = await made.store.append(opened('q', [step('Accepted')]));
        const reopened = await made.reopen();
        stores.push(reopened);
        const log = await reopened.readAll();
        expect(log.map((e) => e.eventId)).toEqual([...acked.map((a) => a.eventIds[0]), open.eventIds[0]]);
        expect(await reopened.openSerials()).toEqual([open.serial]);
        const next = await reopened.append(opened('s-0', [done()], { expectedRevision: 9 }));
        expect(next.serial).toBe('20261122070000000052');
        expect(next.firstPosition).toBe(51);
      });
    });
  });
}
