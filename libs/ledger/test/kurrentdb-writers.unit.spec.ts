import { afterEach, describe, expect, it } from 'vitest';
import type { AppendRequest, EventStore, LedgerError, RecordedEvent } from '#ledger';
import { KurrentDbEventStore, type LogConflictError } from '#ledger/kurrentdb-event-store';
import { FakeKurrentDb } from './fixtures/fake-kurrentdb.js';

// Two stores on one log stream, as a leader hub and a standby hub: only the writable one appends, the
// standby follows with refresh(), and a deposed writer is fenced by the log's expected revision.
const meta = { actor: 'operator:ops', correlationId: 'corr-1' };
const request = (streamId: string): AppendRequest => ({
  streamId,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: 'ProvisionCompleted', data: { subjectId: streamId }, terminal: 'completed' }],
  metadata: meta,
});
const clock = () => new Date('2026-11-22T03:00:00.000Z');

describe('KurrentDbEventStore with several writers', () => {
  const stores: EventStore[] = [];
  const open = async (server: FakeKurrentDb, options: Partial<Parameters<typeof KurrentDbEventStore.open>[0]> = {}) => {
    const store = await KurrentDbEventStore.open({ connection: server, nodeId: 1, now: clock, ...options });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  });

  it('a read-only store refuses every append with NOT_WRITER and writes nothing', async () => {
    const server = new FakeKurrentDb();
    const standby = await open(server, { writable: false });
    await expect(standby.append(request('s-1'))).rejects.toMatchObject({ code: 'NOT_WRITER', reason: 'read-only' });
    expect(server.streams.size).toBe(0);
    standby.setWritable(true);
    await expect(standby.append(request('s-1'))).resolves.toMatchObject({ firstPosition: 0 });
  });

  it('a standby follows what the leader appends with refresh(), and its subscribers are woken by it', async () => {
    const server = new FakeKurrentDb();
    const leader = await open(server);
    const standby = await open(server, { writable: false });
    await leader.append(request('s-1'));
    expect(await standby.head()).toBe(0);
    const stop = new AbortController();
    const seen: RecordedEvent[] = [];
    const following = (async () => {
      for await (const e of standby.subscribe({ fromPosition: 0, signal: stop.signal })) {
        seen.push(e);
        if (e.position === 2) break;
      }
    })();
    expect(await standby.refresh()).toBe(1);
    await leader.append(request('s-2'));
    await leader.append(request('s-3'));
    expect(await standby.refresh()).toBe(3);
    await following;
    stop.abort();
    expect(seen.map((e) => e.streamId)).toEqual(['s-1', 's-2', 's-3']);
    expect((await standby.readSerial(seen[2]!.serial)).map((e) => e.position)).toEqual([2]);
    expect(await standby.storedTexts(0, 10)).toEqual(server.streams.get('linkage-ledger')!.map((e) => Buffer.from(e.data as Uint8Array).toString('utf8')));
  });

  it('fence: a deposed writer whose expected revision is stale fails, appends nothing after, and is told once', async () => {
    const server = new FakeKurrentDb();
    const fenced: LogConflictError[] = [];
    const old = await open(server, { onConflict: 'fence', onFenced: (e) => fenced.push(e) });
    await old.append(request('s-1'));
    // Another hub took over: it read the log and appended at the revision it saw.
    const next = await open(server, { onConflict: 'fence' });
    await next.append(request('s-2'));
    // The old writer wakes up with commands in flight: all fail, none is written, in this batch or later.
    const inFlight = [old.append(request('z-1')), old.append(request('z-2'))];
    const outcomes = await Promise.allSettled(inFlight);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'LOG_CONFLICT' });
    await expect(old.append(request('z-3'))).rejects.toMatchObject({ code: 'NOT_WRITER', reason: 'fenced' } satisfies Partial<LedgerError> & { reason: string });
    expect(fenced).toHaveLength(1);
    expect((await next.readAll()).map((e) => e.streamId)).toEqual(['s-1', 's-2']);
    expect(server.streams.get('linkage-ledger')!.length).toBe(2);
    // Leading again (after it read the log), it appends after what the other wrote, never over it.
    await old.refresh();
    old.setWritable(true);
    await expect(old.append(request('s-3'))).resolves.toMatchObject({ firstPosition: 2 });
  });

  it('a writer that leads again allocates the next serials from the log, never again one the other writer allocated', async () => {
    const server = new FakeKurrentDb();
    const x = await open(server, { onConflict: 'fence' });
    const first = await x.append(request('x-1'));
    x.setWritable(false);
    const y = await open(server, { onConflict: 'fence' });
    const taken = [await y.append(request('y-1')), await y.append(request('y-2'))];
    y.setWritable(false);
    await x.refresh();
    x.setWritable(true);
    const again = await x.append(request('x-2'));
    expect([first, ...taken, again].map((r) => Number(r.serial.slice(10)))).toEqual([1, 2, 3, 4]);
  });

  it('retry (the default): a conflict fails one batch and the next reads what it missed and goes on', async () => {
    const server = new FakeKurrentDb();
    const a = await open(server);
    const b = await open(server);
    await a.append(request('s-1'));
    await b.append(request('s-2')).catch(() => undefined);
    await expect(b.append(request('s-2'))).resolves.toMatchObject({ firstPosition: 1 });
  });
});
