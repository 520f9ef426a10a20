import { afterEach, describe, expect, it } from 'vitest';
import { canonicalize, type AppendRequest, type EventStore, type LedgerError } from '#ledger';
import { KurrentDbEventStore } from '#ledger/kurrentdb-event-store';
import { eventStoreContract } from './event-store.contract.js';
import { FakeKurrentDb } from './fixtures/fake-kurrentdb.js';

// The adapter's own logic (one log stream, the index rebuilt at open, chunked appends, error translation)
// against a stand-in server with KurrentDB's stream rules. The same contract against a real server runs
// in kurrentdb-event-store.int.spec.ts when KURRENTDB_URL is set.
eventStoreContract(
  'kurrentdb adapter (stand-in server)',
  async ({ nodeId, now }) => {
    const server = new FakeKurrentDb();
    const store = await KurrentDbEventStore.open({ connection: server, nodeId, now });
    return {
      store,
      reopen: async () => {
        await store.close();
        return KurrentDbEventStore.open({ connection: server, nodeId, now });
      },
    };
  },
  { durable: true },
);

const meta = { actor: 'agency:012050', correlationId: 'corr-1' };
const request = (streamId: string, extra: Partial<AppendRequest> = {}): AppendRequest => ({
  streamId,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: 'ProvisionCompleted', data: { subjectId: streamId, note: '室蘭市 → 日本年金機構' }, terminal: 'completed' }],
  metadata: meta,
  ...extra,
});
const clock = () => new Date('2026-11-22T03:00:00.000Z');

describe('KurrentDbEventStore', () => {
  const stores: EventStore[] = [];
  const open = async (server: FakeKurrentDb, options: { maxAppendBytes?: number; logStream?: string } = {}) => {
    const store = await KurrentDbEventStore.open({ connection: server, nodeId: 3, now: clock, ...options });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  });

  it('stores each event at the log stream revision equal to its position, as the exact canonical envelope bytes, with its event id and type', async () => {
    const server = new FakeKurrentDb();
    const store = await open(server, { logStream: 'ledger-muroran' });
    await store.append(request('linkage-1'));
    await store.append(request('linkage-2'));
    const stored = server.streams.get('ledger-muroran')!;
    const events = await store.readAll();
    expect(stored.map((s) => Number(s.revision))).toEqual([0, 1]);
    for (const [i, s] of stored.entries()) {
      expect(s.isJson).toBe(false);
      expect(s.id).toBe(events[i]!.eventId);
      expect(s.type).toBe('ProvisionCompleted');
      // The bytes are the Merkle leaf input: RFC 8785 text of the envelope, nothing re-serialised.
      expect(Buffer.from(s.data as Uint8Array).toString('utf8')).toBe(canonicalize(events[i]));
    }
  });

  it('rebuilds streams, serials, claims and idempotency keys from the log at open', async () => {
    const server = new FakeKurrentDb();
    const first = await open(server);
    const keyed = await first.append(request('linkage-1', { idempotency: { key: 'k-1', requestDigest: 'd-1' } }));
    const opened = await first.append({ ...request('linkage-2'), events: [{ type: 'QueryAccepted', data: {}, claims: ['query:q-1'] }] });
    await first.close();

    const again = await open(server);
    expect(await again.head()).toBe(2);
    expect(await again.openSerials()).toEqual([opened.serial]);
    expect(await again.append(request('linkage-1', { idempotency: { key: 'k-1', requestDigest: 'd-1' } }))).toEqual({ ...keyed, status: 'duplicate' });
    const claimed = await again.append({ ...request('linkage-3'), events: [{ type: 'QueryAccepted', data: {}, claims: ['query:q-1'] }] }).catch((e: LedgerError) => e.code);
    expect(claimed).toBe('CLAIM_CONFLICT');
    const next = await again.append(request('linkage-1', { expectedRevision: 0 }));
    expect(next).toMatchObject({ firstPosition: 2, nextExpectedRevision: 1 });
    // The daily sequence continues after the serials already in the log.
    expect(Number(next.serial.slice(10))).toBe(Number(opened.serial.slice(10)) + 1);
  });

  it('refuses a batch with LOG_CONFLICT when another writer appended to the log, then continues after that writer’s events', async () => {
    const server = new FakeKurrentDb();
    const store = await open(server);
    const a = await store.append(request('linkage-1'));
    // Another hub (same log stream) writes one valid event at position 1.
    const other = await KurrentDbEventStore.open({ connection: server, nodeId: 4, now: clock });
    const foreign = await other.append(request('linkage-9'));
    await other.close();
    const refused = await store.append(request('linkage-2')).catch((e: LedgerError) => e);
    expect((refused as LedgerError).code).toBe('LOG_CONFLICT');
    expect(server.streams.get('linkage-ledger')!.length).toBe(2);
    // The next append reads what it missed first and lands after it.
    const b = await store.append(request('linkage-2'));
    expect(b.firstPosition).toBe(2);
    expect(Number(b.serial.slice(10))).toBe(Number(a.serial.slice(10)) + 1);
    expect((await store.readAll()).map((e) => e.eventId)).toEqual([a.eventIds[0], foreign.eventIds[0], b.eventIds[0]]);
  });

  it('a failure before the write: LOG_UNAVAILABLE, nothing stored, and the next append reuses the position and serial (gap-free)', async () => {
    const server = new FakeKurrentDb();
    const store = await open(server);
    const a = await store.append(request('linkage-1'));
    server.failNextAppend('before');
    const refused = await store.append(request('linkage-2')).catch((e: LedgerError) => e);
    expect((refused as LedgerError).code).toBe('LOG_UNAVAILABLE');
    expect(await store.head()).toBe(1);
    const b = await store.append(request('linkage-2'));
    expect(b.firstPosition).toBe(1);
    expect(Number(b.serial.slice(10))).toBe(Number(a.serial.slice(10)) + 1);
  });

  it('a write whose answer was lost: the caller gets LOG_UNAVAILABLE; a retry with the same key gets the original outcome and nothing is stored twice', async () => {
    const server = new FakeKurrentDb();
    const store = await open(server);
    server.failNextAppend('after');
    const keyed = request('linkage-1', { idempotency: { key: 'k-lost', requestDigest: 'd' } });
    const refused = await store.append(keyed).catch((e: LedgerError) => e);
    expect((refused as LedgerError).code).toBe('LOG_UNAVAILABLE');
    expect(server.streams.get('linkage-ledger')!.length).toBe(1);
    const retried = await store.append(keyed);
    expect(retried).toMatchObject({ status: 'duplicate', firstPosition: 0, lastPosition: 0 });
    expect(server.streams.get('linkage-ledger')!.length).toBe(1);
    expect(await store.head()).toBe(1);
  });

  it('cuts a large batch into appends below the size limit, between requests, in order', async () => {
    const server = new FakeKurrentDb(4096);
    const store = await open(server, { maxAppendBytes: 2048 });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => store.append(request(`linkage-${i}`))));
    expect(results.map((r) => r.firstPosition)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(server.appends).toBeGreaterThan(4);
    const all = await store.readAll();
    expect(all.map((e) => e.position)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('refuses, alone, an append larger than the server takes (APPEND_TOO_LARGE), and the requests after it', async () => {
    const server = new FakeKurrentDb(2048);
    const store = await open(server, { maxAppendBytes: 1024 });
    const big = { ...request('linkage-big'), events: [{ type: 'ProvisionCompleted', data: { blob: 'x'.repeat(4000) } }] };
    const small = store.append(request('linkage-small'));
    const refused = store.append(big).catch((e: LedgerError) => e.code);
    expect((await small).firstPosition).toBe(0);
    expect(await refused).toBe('APPEND_TOO_LARGE');
    expect(await store.head()).toBe(1);
    expect((await store.append(request('linkage-after'))).firstPosition).toBe(1);
  });

  it('refuses to open a log stream that holds something other than ledger envelopes (LOG_INVALID, naming the revision)', async () => {
    const server = new FakeKurrentDb();
    const store = await open(server);
    await store.append(request('linkage-1'));
    server.writeForeign('linkage-ledger', [{ id: '0190f2d4-0000-7000-8000-000000000001', type: 'Other', isJson: true, data: { hello: 'world' } }]);
    await expect(KurrentDbEventStore.open({ connection: server, nodeId: 3, now: clock })).rejects.toMatchObject({ code: 'LOG_INVALID', revision: 1 });
  });

  it('never reads past what it has applied: an event another writer appended is not returned until this store has read it', async () => {
    const server = new FakeKurrentDb();
    const store = await open(server);
    await store.append(request('linkage-1'));
    const other = await KurrentDbEventStore.open({ connection: server, nodeId: 4, now: clock });
    await other.append(request('linkage-2'));
    await other.close();
    expect((await store.readAll()).length).toBe(1);
  });

  it('closes a client it opened from a connection string, and leaves a client it was given to its owner', async () => {
    const server = new FakeKurrentDb();
    const store = await KurrentDbEventStore.open({ connection: server, nodeId: 3, now: clock });
    await store.close();
    expect(server.disposed).toBe(false);
  });
});
