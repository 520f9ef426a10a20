import type { ResolvedEvent } from '@kurrent/kurrentdb-client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AppendRequest, EventStore, SerialNumber } from '#ledger';
import { KurrentDbEventStore } from '#ledger/kurrentdb-event-store';
import { eventStoreContract } from './event-store.contract.js';
import { FakeKurrentDb } from './fixtures/fake-kurrentdb.js';

// The planner's index on KurrentDB as a local projection of the log (a SQLite file with its checkpoint):
// a store that opens again reads only the log's tail, and every rule (idempotency, claims, serials, the
// fence of the expected revision) holds as before.

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'kurrent-index-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The stand-in server, counting the events it hands out of one stream (the log). */
class CountingKurrentDb extends FakeKurrentDb {
  eventsRead = 0;
  constructor(private readonly counted: string) {
    super();
  }
  override readStream(streamName: string, options: { fromRevision: bigint | 'start' | 'end'; maxCount: bigint; direction?: 'forwards' | 'backwards' }): AsyncIterable<ResolvedEvent> {
    const inner = super.readStream(streamName, options);
    const count = () => {
      if (streamName === this.counted) this.eventsRead += 1;
    };
    return (async function* () {
      for await (const e of inner) {
        count();
        yield e;
      }
    })();
  }
}

eventStoreContract(
  'kurrentdb adapter with its index in a file (stand-in server)',
  async ({ nodeId, now }) => {
    const server = new FakeKurrentDb();
    const indexPath = join(tempDir(), 'kurrentdb-index.sqlite');
    const store = await KurrentDbEventStore.open({ connection: server, nodeId, now, indexPath });
    return {
      store,
      reopen: async () => {
        await store.close();
        return KurrentDbEventStore.open({ connection: server, nodeId, now, indexPath });
      },
    };
  },
  { durable: true },
);

const LOG = 'linkage-ledger';
const meta = { actor: 'agency:012050', correlationId: 'corr-1' };
const clock = () => new Date('2026-11-22T03:00:00.000Z');
const request = (streamId: string, extra: Partial<AppendRequest> = {}): AppendRequest => ({
  streamId,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: 'ProvisionCompleted', data: { subjectId: streamId }, terminal: 'completed' }],
  metadata: meta,
  ...extra,
});

describe('KurrentDbEventStore with its index in a file', () => {
  const stores: EventStore[] = [];
  const open = async (server: FakeKurrentDb, indexPath: string | undefined, extra: { onConflict?: 'retry' | 'fence' } = {}) => {
    const store = await KurrentDbEventStore.open({ connection: server, nodeId: 3, now: clock, logStream: LOG, ...(indexPath === undefined ? {} : { indexPath }), ...extra });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  });

  it('a reopen reads only the tail beyond the checkpoint; idempotency, claims, open serials and serial allocation hold after it', async () => {
    const server = new CountingKurrentDb(LOG);
    const indexPath = join(tempDir(), 'kurrentdb-index.sqlite');
    const first = await open(server, indexPath);
    const keyed = await first.append(request('keyed', { idempotency: { key: 'k-1', requestDigest: 'd-1' } }));
    await first.append(request('claimed', { events: [{ type: 'NumberIssued', data: {}, claims: ['number:0001'], terminal: 'completed' }] }));
    const open1 = await first.append(request('open', { events: [{ type: 'QueryAccepted', data: {} }] }));
    for (let i = 0; i < 200; i++) await first.append(request(`bulk-${i % 7}`));
    const head = await first.head();
    await first.close();

    server.eventsRead = 0;
    const second = await open(server, indexPath);
    // One event read to recognise the log (the last one indexed), none before it.
    expect(server.eventsRead).toBe(1);
    expect(await second.head()).toBe(head);
    expect(await second.idempotentOutcome('k-1')).toEqual({ requestDigest: 'd-1', result: { ...keyed, status: 'duplicate' } });
    expect(await second.append(request('keyed', { idempotency: { key: 'k-1', requestDigest: 'd-1' } }))).toEqual({ ...keyed, status: 'duplicate' });
    await expect(second.append(request('keyed', { idempotency: { key: 'k-1', requestDigest: 'other' } }))).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await expect(second.append(request('again', { events: [{ type: 'NumberIssued', data: {}, claims: ['number:0001'], terminal: 'completed' }] }))).rejects.toMatchObject({ code: 'CLAIM_CONFLICT' });
    expect(await second.openSerials()).toEqual([open1.serial]);
    expect((await second.readStream('bulk-3')).map((e) => e.streamRevision)).toEqual(Array.from({ length: 29 }, (_, i) => i));
    expect((await second.readStream('bulk-3', { fromRevision: 27, maxCount: 1 })).map((e) => e.streamRevision)).toEqual([27]);
    expect((await second.readSerial(open1.serial)).map((e) => e.type)).toEqual(['QueryAccepted']);
    const next = await second.append(request('after', { expectedRevision: 'no_stream' }));
    // The daily sequence goes on from the log: no serial twice.
    expect(Number(next.serial.slice(10))).toBe(Number(keyed.serial.slice(10)) + 203);
    await second.append({ streamId: 'open', expectedRevision: 0, serial: { continue: open1.serial as SerialNumber }, events: [{ type: 'QueryAnswered', data: {}, terminal: 'completed' }], metadata: meta });
    expect(await second.openSerials()).toEqual([]);

    // What another writer appended meanwhile is read at the next open, and only that.
    await second.close();
    const other = await open(server, undefined);
    for (let i = 0; i < 5; i++) await other.append(request(`other-${i}`));
    await other.close();
    server.eventsRead = 0;
    const third = await open(server, indexPath);
    expect(server.eventsRead).toBe(1 + 5);
    expect(await third.head()).toBe(head + 2 + 5);
    await expect(third.append(request('again', { events: [{ type: 'NumberIssued', data: {}, claims: ['number:0001'], terminal: 'completed' }] }))).rejects.toMatchObject({ code: 'CLAIM_CONFLICT' });
  });

  it('after a reopen the expected revision still fences a deposed writer off', async () => {
    const server = new FakeKurrentDb();
    const indexPath = join(tempDir(), 'kurrentdb-index.sqlite');
    const first = await open(server, indexPath);
    await first.append(request('a'));
    await first.close();
    const deposed = await open(server, indexPath, { onConflict: 'fence' });
    const leader = await open(server, undefined);
    await leader.append(request('b'));
    await expect(deposed.append(request('c'))).rejects.toMatchObject({ code: 'LOG_CONFLICT' });
    await expect(deposed.append(request('d'))).rejects.toMatchObject({ code: 'NOT_WRITER' });
    expect((await leader.readAll()).map((e) => e.streamId)).toEqual(['a', 'b']);
  });

  it('an index file of another log (the log replaced, or another log stream) is rebuilt from the log', async () => {
    const indexPath = join(tempDir(), 'kurrentdb-index.sqlite');
    const old = new FakeKurrentDb();
    const first = await open(old, indexPath);
    for (let i = 0; i < 3; i++) await first.append(request(`old-${i}`, { idempotency: { key: `k-${i}`, requestDigest: 'd' } }));
    await first.close();

    // The same stream name on another server: other events at the same positions.
    const replaced = new CountingKurrentDb(LOG);
    const writer = await open(replaced, undefined);
    for (let i = 0; i < 4; i++) await writer.append(request(`new-${i}`));
    await writer.close();
    replaced.eventsRead = 0;
    const reopened = await open(replaced, indexPath);
    expect(replaced.eventsRead).toBe(1 + 4);
    expect(await reopened.head()).toBe(4);
    expect(await reopened.idempotentOutcome('k-0')).toBeUndefined();
    expect((await reopened.readStream('new-2')).map((e) => e.position)).toEqual([2]);
    expect(await reopened.readStream('old-0')).toEqual([]);

    // A shorter log than the index (a log emptied and begun again).
    await reopened.close();
    const shorter = new FakeKurrentDb();
    const third = await open(shorter, indexPath);
    expect(await third.head()).toBe(0);
    expect(await third.readStream('new-2')).toEqual([]);
  });
});
