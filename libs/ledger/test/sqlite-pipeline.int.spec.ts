import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SqliteEventStore, type AppendRequest, type RecordedEvent, type SerialNumber } from '#ledger';

const dir = mkdtempSync(join(tmpdir(), 'ledger-pipeline-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const now = () => new Date('2026-11-22T03:00:00.000Z');
const open = () => new SqliteEventStore({ path: join(dir, `p-${++n}.sqlite`), nodeId: 7, now });
const meta = { actor: 'system:test', correlationId: 'c' };
const serial = (sequence: number) => `2026112207${String(sequence).padStart(10, '0')}` as SerialNumber;
const append = (streamId: string, extra: Partial<AppendRequest> = {}): AppendRequest => ({
  streamId,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: 'Done', data: { streamId }, terminal: 'completed' }],
  metadata: meta,
  ...extra,
});

// Appends issued together are planned in several batches while earlier ones still commit: each
// look-up must see what the batches still in flight wrote, not only the database.
describe('planning against batches still committing', () => {
  it('chains exact expected revisions of many streams across batches in flight', async () => {
    const store = open();
    const streams = 40;
    const rounds = 25;
    const all: Promise<unknown>[] = [];
    for (let r = 0; r < rounds; r++) {
      for (let s = 0; s < streams; s++) all.push(store.append(append(`s-${s}`, { expectedRevision: r === 0 ? 'no_stream' : r - 1 })));
    }
    const results = await Promise.allSettled(all);
    expect(results.filter((x) => x.status === 'rejected')).toEqual([]);
    expect(store.batchCount).toBeGreaterThan(1);
    for (let s = 0; s < streams; s++) expect((await store.readStream(`s-${s}`)).map((e) => e.streamRevision)).toEqual([...Array(rounds).keys()]);
    // Durable now: the next exact revision is known without any batch in flight, and a stale one is refused.
    await expect(store.append(append('s-3', { expectedRevision: rounds - 2 }))).rejects.toMatchObject({ code: 'WRONG_EXPECTED_REVISION', actual: rounds - 1 });
    await expect(store.append(append('s-3', { expectedRevision: rounds - 1 }))).resolves.toMatchObject({ nextExpectedRevision: rounds });
    await store.close();
  });

  it('knows the state of serials opened or closed by batches in flight', async () => {
    const store = open();
    const filler = (i: number) => store.append(append(`f-${i}`));
    const pending: Promise<unknown>[] = [];
    // Serial 1 stays open, serial 2 is opened and closed in one append.
    pending.push(store.append(append('q-1', { events: [{ type: 'Accepted', data: {} }] })));
    pending.push(store.append(append('q-2')));
    for (let i = 0; i < 300; i++) pending.push(filler(i));
    const continued = store.append(append('q-1', { serial: { continue: serial(1) }, events: [{ type: 'Provided', data: {}, terminal: 'completed' }] }));
    const closed = store.append(append('q-2', { serial: { continue: serial(2) } }));
    const unknown = store.append(append('q-3', { serial: { continue: serial(999) } }));
    await Promise.all(pending);
    await expect(continued).resolves.toMatchObject({ serial: serial(1), status: 'appended' });
    await expect(closed).rejects.toMatchObject({ code: 'SERIAL_NOT_OPEN', state: 'closed' });
    await expect(unknown).rejects.toMatchObject({ code: 'SERIAL_NOT_OPEN', state: 'unknown' });
    expect(await store.openSerials()).toEqual([]);
    await expect(store.append(append('q-1', { serial: { continue: serial(1) } }))).rejects.toMatchObject({ state: 'closed' });
    await store.close();
  });

  it('answers a retried key whose first append is still committing with that append', async () => {
    const store = open();
    const keyed = (i: number) => append(`k-${i}`, { idempotency: { key: `agency:1/${i}`, requestDigest: 'd' } });
    const first = Array.from({ length: 300 }, (_, i) => store.append(keyed(i)));
    const retries = Array.from({ length: 300 }, (_, i) => store.append(keyed(i)));
    const [a, b] = [await Promise.all(first), await Promise.all(retries)];
    expect(b).toEqual(a.map((r) => ({ ...r, status: 'duplicate' })));
    expect(await store.head()).toBe(300);
    await store.close();
  });
});

// A bulk writer queues thousands of appends in one turn: they are taken from the front of the queue batch
// by batch (without copying the rest each time), each exactly once and in the order they were made.
describe('a long queue of appends', () => {
  it('commits 20,000 appends queued in one turn, each once, in order, in bounded batches', async () => {
    const store = open();
    const count = 20_000;
    const results = await Promise.all(Array.from({ length: count }, (_, i) => store.append(append(`bulk-${i}`, { expectedRevision: 'no_stream' }))));
    expect(results.map((r) => r.firstPosition)).toEqual([...Array(count).keys()]);
    expect(results.map((r) => r.serial)).toEqual(Array.from({ length: count }, (_, i) => serial(i + 1)));
    // Batches hold at most 128 events: the queue was taken in many batches, not at once.
    expect(store.batchCount).toBeGreaterThanOrEqual(count / 128);
    expect(await store.head()).toBe(count);
    const stored = await store.readAll({ fromPosition: 0, maxCount: count });
    expect(stored.map((e) => e.streamId)).toEqual(Array.from({ length: count }, (_, i) => `bulk-${i}`));
    // Appends made after the long queue drained start a new one.
    await expect(store.append(append('after'))).resolves.toMatchObject({ firstPosition: count });
    await store.close();
  }, 120_000);
});

// Callers answered by one commit append again together: an idle store commits such a group in two halves,
// so that the first half goes on sooner and the groups drift apart instead of moving in lock step.
describe('a group of appends at an idle store', () => {
  it('commits more than 16 appends queued together as two halves, the first half answered first', async () => {
    const store = open();
    const batches: number[] = [];
    store.observeBatches((appends) => batches.push(appends));
    const answered: number[] = [];
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.append(append(`g-${i}`)).then(() => answered.push(i))));
    expect(batches).toEqual([20, 20]);
    expect(answered.slice(0, 20).sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
    // Sixteen or fewer go as one batch.
    batches.length = 0;
    await Promise.all(Array.from({ length: 16 }, (_, i) => store.append(append(`h-${i}`))));
    expect(batches).toEqual([16]);
    await store.close();
  });
});

// A follower of the live log (the hub's projections) is woken by each commit: it is handed what was just
// committed as the store wrote it, without reading it back.
describe('followers of the live log', () => {
  const follow = (store: SqliteEventStore, from: number, until: number, signal: AbortSignal, pageSize = 100) =>
    (async () => {
      const seen: RecordedEvent[] = [];
      for await (const e of store.subscribe({ fromPosition: from, signal, pageSize })) {
        seen.push(e);
        if (e.position === until) break;
      }
      return seen;
    })();

  it('are handed each commit without reading the log back, exactly as the log holds it', async () => {
    const store = open();
    await store.append(append('before'));
    const stop = new AbortController();
    const total = 1 + 400 * 2;
    const followers = [follow(store, 0, total - 1, stop.signal), follow(store, 1, total - 1, stop.signal, 7)];
    await new Promise((r) => setTimeout(r, 20));
    const reads = vi.spyOn(store, 'readAll');
    // Groups of appends, as a service's requests arrive: many commits, some split in two.
    for (let g = 0; g < 10; g++) {
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.append(append(`f-${g}-${i}`, { events: [{ type: 'Seen', data: { g, i, nested: { list: [g, i] } } }, { type: 'Done', data: { g, i }, terminal: 'completed' }] }))));
    }
    const [all = [], second = []] = await Promise.all(followers);
    stop.abort();
    expect(reads).not.toHaveBeenCalled();
    reads.mockRestore();
    const log = await store.readAll();
    expect(log).toHaveLength(total);
    expect(all).toEqual(log);
    expect(second).toEqual(log.slice(1));
    // Frozen: shared between followers.
    expect(() => ((all[5]!.data as { nested: { list: number[] } }).nested.list[0] = 99)).toThrow(TypeError);
    await store.close();
  });

  it('read from the log what they fell too far behind to be handed, and nothing is kept once none follows', async () => {
    const store = open();
    const stop = new AbortController();
    const iterator = store.subscribe({ fromPosition: 0, signal: stop.signal, pageSize: 500 })[Symbol.asyncIterator]();
    const first = iterator.next();
    await store.append(append('start'));
    expect(((await first).value as RecordedEvent).position).toBe(0);
    // 20,000 events committed while the follower does not read: more than the store keeps for it.
    for (let b = 0; b < 20; b++) await Promise.all(Array.from({ length: 100 }, (_, i) => store.append(append(`x-${b}-${i}`, { events: Array.from({ length: 10 }, (_, k) => ({ type: 'Seen', data: { b, i, k } })) }))));
    const reads = vi.spyOn(store, 'readAll');
    const got: RecordedEvent[] = [];
    for (let i = 0; i < 20_000; i++) got.push((await iterator.next()).value as RecordedEvent);
    expect(reads).toHaveBeenCalled();
    reads.mockRestore();
    expect(got.map((e) => e.position)).toEqual(Array.from({ length: 20_000 }, (_, i) => i + 1));
    expect(got).toEqual((await store.readAll({ fromPosition: 1 })));
    stop.abort();
    await iterator.return?.();
    // No one follows: a new follower of what comes next reads it from the log.
    await store.append(append('after'));
    const later = new AbortController();
    const reading = vi.spyOn(store, 'readAll');
    const next = await follow(store, 20_001, 20_001, later.signal);
    later.abort();
    expect(next.map((e) => e.streamId)).toEqual(['after']);
    expect(reading).toHaveBeenCalled();
    await store.close();
  });
});
