import { describe, expect, it } from 'vitest';
import { InMemoryEventStore, type AppendRequest, type SerialNumber } from '#ledger';

const meta = { actor: 'system:test', correlationId: 'c' };
const request = (streamId: string, data: unknown, schemaVersion?: number): AppendRequest => ({
  streamId,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: 'Done', data, terminal: 'completed', ...(schemaVersion === undefined ? {} : { schemaVersion }) }],
  metadata: meta,
});

describe('a request the ledger cannot encode is refused alone', () => {
  it('refuses data that is not JSON, or a schema version that is not an integer, and writes the rest of the batch', async () => {
    const store = new InMemoryEventStore({ nodeId: 1 });
    const results = await Promise.allSettled([
      store.append(request('a', { ok: 1 })),
      store.append(request('b', { n: Number.NaN })),
      store.append(request('c', { f: 1n })),
      store.append(request('d', {}, 1.5)),
      store.append(request('e', { ok: 2 }, 3)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled']);
    for (const r of results.slice(1, 4)) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'INVALID_APPEND' });
    await expect(store.append(request('f', { n: Number.POSITIVE_INFINITY }))).rejects.toThrow(/stream f: data is not JSON/);
    const log = await store.readAll();
    expect(log.map((e) => [e.streamId, e.schemaVersion, e.serial.slice(10)])).toEqual([
      ['a', 1, '0000000001'],
      ['e', 3, '0000000002'],
    ]);
    await store.close();
  });
});

describe('serials allocated earlier in the same batch', () => {
  it('continues one still open and refuses one its own append already ended', async () => {
    const store = new InMemoryEventStore({ nodeId: 7, now: () => new Date('2026-11-22T03:00:00.000Z') });
    const s = (n: number) => `2026112207${String(n).padStart(10, '0')}` as SerialNumber;
    // Issued in one turn of the event loop, so planned as one batch.
    const results = await Promise.allSettled([
      store.append({ ...request('open', {}), events: [{ type: 'Accepted', data: {} }] }),
      store.append(request('ended', {})),
      store.append({ ...request('open', {}), serial: { continue: s(1) } }),
      store.append({ ...request('ended', {}), serial: { continue: s(2) } }),
      store.append({ ...request('open', {}), serial: { continue: s(1) } }),
      store.append({ ...request('x', {}), serial: { continue: s(3) } }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected']);
    expect((results[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'SERIAL_NOT_OPEN', state: 'closed' });
    expect((results[4] as PromiseRejectedResult).reason).toMatchObject({ code: 'SERIAL_NOT_OPEN', state: 'closed' });
    expect((results[5] as PromiseRejectedResult).reason).toMatchObject({ code: 'SERIAL_NOT_OPEN', state: 'unknown' });
    await store.close();
  });
});
