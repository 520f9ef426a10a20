import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalize, SqliteEventStore, type AppendRequest } from '#ledger';

const dir = mkdtempSync(join(tmpdir(), 'ledger-storage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `s-${++n}.sqlite`);
const meta = { actor: 'system:test', correlationId: 'c' };
const keyed = (i: number, digest = 'd'): AppendRequest => ({
  streamId: `s-${i}`,
  expectedRevision: 'any',
  serial: { allocate: true },
  events: [{ type: 'Done', data: { i }, terminal: 'completed', claims: [`claim:${i}`] }],
  metadata: meta,
  idempotency: { key: `agency:1/key-${i}`, requestDigest: digest },
});

describe('SQLite storage (I1 at the storage level)', () => {
  it('refuses UPDATE and DELETE on the events table, even from a raw connection', async () => {
    const path = file();
    const store = new SqliteEventStore({ path, nodeId: 1 });
    await store.append(keyed(1));
    await store.close();
    const raw = new Database(path);
    expect(() => raw.prepare(`UPDATE events SET envelope = '{}' WHERE position = 0`).run()).toThrow(/APPEND_ONLY: events are never updated/);
    expect(() => raw.prepare('DELETE FROM events').run()).toThrow(/APPEND_ONLY: events are never deleted/);
    expect(raw.prepare('SELECT count(*) FROM events').pluck().get()).toBe(1);
    raw.close();
  });

  it('stores each event as the RFC 8785 text of its envelope, which is what a read returns', async () => {
    const path = file();
    const store = new SqliteEventStore({ path, nodeId: 1 });
    await store.append({ ...keyed(2), events: [{ type: 'Done', data: { b: [1, 'é', { z: 1, a: null }], a: 1e21 }, terminal: 'completed' }] });
    const [event] = await store.readAll();
    const stored = store.db.prepare('SELECT envelope FROM events').pluck().get() as string;
    expect(stored).toBe(canonicalize(event));
    expect(stored).toContain('"data":{"a":1e+21,"b":[1,"é",{"a":null,"z":1}]}');
    await store.close();
  });

  it('refuses to open a file of another schema version', async () => {
    const path = file();
    await new SqliteEventStore({ path, nodeId: 1 }).close();
    const raw = new Database(path);
    raw.prepare(`UPDATE ledger_meta SET value = '99' WHERE key = 'schema_version'`).run();
    raw.close();
    expect(() => new SqliteEventStore({ path, nodeId: 1 })).toThrow(/schema version 99/);
  });
});

describe('key index for idempotency keys and claims', () => {
  it('still recognises every key and claim after they moved from memory to the tables', async () => {
    const path = file();
    const store = new SqliteEventStore({ path, nodeId: 1, keyIndex: { recentLimit: 8 } });
    for (let i = 0; i < 40; i++) await store.append(keyed(i));
    expect(store.unflushedKeyCount).toBeLessThanOrEqual(8 + 2);
    for (let i = 0; i < 40; i++) {
      expect(await store.append(keyed(i))).toMatchObject({ status: 'duplicate', firstPosition: i });
      await expect(store.append({ ...keyed(1000 + i), events: [{ type: 'X', data: {}, claims: [`claim:${i}`] }] })).rejects.toMatchObject({
        code: 'CLAIM_CONFLICT',
      });
    }
    await expect(store.append(keyed(3, 'other'))).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await store.head()).toBe(40);
    await store.close();
  });

  it('rebuilds the keys not yet in the tables from the log when the process died without closing', async () => {
    const path = file();
    const first = new SqliteEventStore({ path, nodeId: 1, keyIndex: { recentLimit: 1_000_000 } });
    for (let i = 0; i < 30; i++) await first.append(keyed(i));
    // No close(): the in-memory keys are lost as in a crash; a second instance opens the same file.
    const second = new SqliteEventStore({ path, nodeId: 1 });
    expect(second.unflushedKeyCount).toBe(60);
    expect(await second.append(keyed(7))).toMatchObject({ status: 'duplicate', firstPosition: 7 });
    await expect(second.append({ ...keyed(99), events: [{ type: 'X', data: {}, claims: ['claim:29'] }] })).rejects.toMatchObject({
      code: 'CLAIM_CONFLICT',
    });
    await second.close();
    first.db.close();
  });

  it('tells apart two keys whose index hashes collide, by checking the event itself', async () => {
    const path = file();
    const store = new SqliteEventStore({ path, nodeId: 1, keyIndex: { recentLimit: 1 } });
    await store.append(keyed(1));
    await store.append(keyed(2));
    await store.append(keyed(3));
    // Force a collision: give key-9's hash row to key-1's event.
    const { keyHash } = await import('../src/key-index.js');
    store.db.prepare('INSERT INTO idempotency_keys (hash, position) VALUES (?, 0)').run(keyHash('agency:1/key-9'));
    expect(await store.append(keyed(9))).toMatchObject({ status: 'appended' });
    await store.close();
  });
});
