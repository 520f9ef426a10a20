import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppendRequest, LedgerError } from '#ledger';
import { KurrentDbEventStore, logStreamLength, readLogTexts } from '#ledger/kurrentdb-event-store';
import { eventStoreContract } from './event-store.contract.js';
import { announceKurrentServer, startKurrentTestServer, type KurrentTestServer } from './fixtures/kurrentdb-test-server.js';

// The event store contract through the real @kurrent/kurrentdb-client (gRPC, its error mapping): against
// the KurrentDB server at KURRENTDB_URL when set (for example kurrentdb://127.0.0.1:2113?tls=false), else
// against the wire-level stand-in (fixtures/kurrentdb-wire-server.ts) on an ephemeral port. Each test
// writes its own log stream, so a shared server is fine.
announceKurrentServer('KurrentDB contract suite');

let server: KurrentTestServer;
beforeAll(async () => {
  server = await startKurrentTestServer();
});
afterAll(async () => {
  await server.dispose();
});

eventStoreContract(
  `kurrentdb through the client (${process.env['KURRENTDB_URL'] ? 'KURRENTDB_URL' : 'wire-level stand-in'})`,
  async ({ nodeId, now }) => {
    const logStream = `linkage-ledger-test-${randomUUID()}`;
    const store = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId, now });
    return {
      store,
      reopen: async () => {
        await store.close();
        return KurrentDbEventStore.open({ connection: server.url, logStream, nodeId, now });
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

describe('KurrentDbEventStore through the client: what the server answers', () => {
  it('stores each event as a binary event at the revision equal to its position, read back byte for byte over the wire', async () => {
    const logStream = `linkage-ledger-test-${randomUUID()}`;
    const store = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 3, now: clock });
    try {
      await store.append(request('linkage-1'));
      await store.append(request('linkage-2'));
      const client = server.connect();
      expect(await logStreamLength(client, logStream)).toBe(2);
      const texts = await readLogTexts(client, logStream, 0, 2);
      const events = await store.readAll();
      expect(texts.map((t) => (JSON.parse(t) as { eventId: string }).eventId)).toEqual(events.map((e) => e.eventId));
      expect(texts[1]).toContain('室蘭市 → 日本年金機構');
      const revisions: bigint[] = [];
      for await (const r of client.readStream(logStream, { fromRevision: 'start', maxCount: 10n })) {
        expect(r.event?.isJson).toBe(false);
        expect(r.event?.type).toBe('ProvisionCompleted');
        revisions.push(r.event!.revision);
      }
      expect(revisions).toEqual([0n, 1n]);
    } finally {
      await store.close();
    }
  });

  it('a second writer at the same revision gets the server wrong-expected-version: LOG_CONFLICT, and retries after reading what it missed', async () => {
    const logStream = `linkage-ledger-test-${randomUUID()}`;
    const a = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 3, now: clock });
    const b = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 4, now: clock });
    try {
      await a.append(request('linkage-a'));
      const refused = await b.append(request('linkage-b')).catch((e: LedgerError) => e);
      expect((refused as LedgerError).code).toBe('LOG_CONFLICT');
      const ok = await b.append(request('linkage-b'));
      expect(ok.firstPosition).toBe(1);
      expect(await logStreamLength(server.connect(), logStream)).toBe(2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a fenced writer stops at the first wrong-expected-version and refuses with NOT_WRITER', async () => {
    const logStream = `linkage-ledger-test-${randomUUID()}`;
    const fenced: LedgerError[] = [];
    const a = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 3, now: clock, onConflict: 'fence', onFenced: (e) => fenced.push(e) });
    const b = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 4, now: clock });
    try {
      await b.append(request('linkage-b'));
      expect(((await a.append(request('linkage-a')).catch((e: LedgerError) => e)) as LedgerError).code).toBe('LOG_CONFLICT');
      expect(fenced.map((e) => e.code)).toEqual(['LOG_CONFLICT']);
      expect(((await a.append(request('linkage-a')).catch((e: LedgerError) => e)) as LedgerError).code).toBe('NOT_WRITER');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('an append larger than the server takes is refused as APPEND_TOO_LARGE with the server maximum, and nothing is written', async () => {
    if (server.db === undefined) return; // a real server's maximum append size is its own setting
    const logStream = `linkage-ledger-test-${randomUUID()}`;
    // The adapter would cut a batch into appends below maxAppendBytes: let it send more than the server's 1 MiB.
    const store = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 3, now: clock, maxAppendBytes: 4 * 1024 * 1024 });
    try {
      const big = request('linkage-big', { events: [{ type: 'ProvisionCompleted', data: { blob: 'x'.repeat(1_100_000) }, terminal: 'completed' }] });
      const refused = (await store.append(big).catch((e: LedgerError) => e)) as LedgerError & { maxAppendSize?: number };
      expect(refused.code).toBe('APPEND_TOO_LARGE');
      expect(refused.maxAppendSize).toBe(1024 * 1024);
      expect(await logStreamLength(server.connect(), logStream)).toBe(0);
      expect((await store.append(request('linkage-small'))).firstPosition).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('a server that fails the append (UNAVAILABLE) is LOG_UNAVAILABLE; one that wrote but lost the answer is read back before the retry, so nothing is written twice', async () => {
    if (server.db === undefined) return; // faults are injected into the stand-in only
    const logStream = `linkage-ledger-test-${randomUUID()}`;
    const store = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 3, now: clock });
    try {
      const keyed = request('linkage-1', { idempotency: { key: 'k-lost', requestDigest: 'd' } });
      server.db.failNextAppend('before');
      const refused = (await store.append(keyed).catch((e: LedgerError) => e)) as LedgerError;
      expect(refused.code).toBe('LOG_UNAVAILABLE');
      expect(refused.message).toContain('UNAVAILABLE');
      expect(await logStreamLength(server.connect(), logStream)).toBe(0);
      server.db.failNextAppend('after');
      expect(((await store.append(keyed).catch((e: LedgerError) => e)) as LedgerError).code).toBe('LOG_UNAVAILABLE');
      expect(await logStreamLength(server.connect(), logStream)).toBe(1);
      const retried = await store.append(keyed);
      expect(retried).toMatchObject({ status: 'duplicate', firstPosition: 0, lastPosition: 0 });
      expect(await logStreamLength(server.connect(), logStream)).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('a log stream that was tombstoned cannot be opened: the server stream-deleted reaches the caller as LOG_UNAVAILABLE naming it', async () => {
    const logStream = `linkage-ledger-test-${randomUUID()}`;
    const client = server.connect();
    const store = await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 3, now: clock });
    await store.append(request('linkage-1'));
    await store.close();
    await client.tombstoneStream(logStream);
    const refused = (await KurrentDbEventStore.open({ connection: server.url, logStream, nodeId: 3, now: clock }).catch((e: LedgerError) => e)) as LedgerError;
    expect(refused.code).toBe('LOG_UNAVAILABLE');
    expect(refused.message).toContain('StreamDeletedError');
  });
});
