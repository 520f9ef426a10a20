import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore, type AppendRequest } from '#ledger';

const dir = mkdtempSync(join(tmpdir(), 'ledger-filters-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `f-${++n}.sqlite`);
const meta = { actor: 'system:test', correlationId: 'c' };
const keyed = (i: number): AppendRequest => ({
  streamId: `s-${i}`,
  expectedRevision: 'no_stream',
  serial: { allocate: true },
  events: [{ type: 'Done', data: { i }, terminal: 'completed', claims: [`claim:${i}`] }],
  metadata: meta,
  idempotency: { key: `agency:1/key-${i}`, requestDigest: 'd' },
});

async function written(path: string, count: number): Promise<void> {
  const store = new SqliteEventStore({ path, nodeId: 1, keyIndex: { recentLimit: 8 } });
  for (let i = 0; i < count; i++) await store.append(keyed(i));
  await store.close();
}

const savedNames = (path: string): string[] => {
  const raw = new Database(path, { readonly: true });
  try {
    return (raw.prepare('SELECT name FROM ledger_filters ORDER BY name').pluck().all() as string[]).sort();
  } finally {
    raw.close();
  }
};

/** Replaces a saved filter's bits by zeros ("no stream exists"): only an open that uses the saved filter is misled. */
function zeroSaved(path: string, name: string, through?: number): void {
  const raw = new Database(path);
  raw.prepare('UPDATE ledger_filters SET bits = zeroblob(length(bits)) WHERE name = ?').run(name);
  if (through !== undefined) raw.prepare('UPDATE ledger_filters SET through = ? WHERE name = ?').run(through, name);
  raw.close();
}

describe('the ledger\'s filters saved at a clean close (I11: an open does not read every stream id and key)', () => {
  it('a clean close saves them, the next open takes them out of the file, and every stream, key and claim is still known', async () => {
    const path = file();
    await written(path, 50);
    expect(savedNames(path)).toEqual(['claims', 'idempotency_keys', 'streams']);
    const store = new SqliteEventStore({ path, nodeId: 1 });
    try {
      // Taken at open: a crash of this run leaves none behind, and the next open rebuilds them.
      expect(savedNames(path)).toEqual([]);
      for (let i = 0; i < 50; i++) expect(await store.append(keyed(i))).toMatchObject({ status: 'duplicate', firstPosition: i });
      await expect(store.append({ ...keyed(1000), idempotency: { key: 'agency:1/other', requestDigest: 'd' }, events: [{ type: 'X', data: {}, claims: ['claim:7'] }] })).rejects.toMatchObject({ code: 'CLAIM_CONFLICT' });
      await expect(store.append({ ...keyed(2000), streamId: 's-3', idempotency: { key: 'agency:1/again', requestDigest: 'd' }, events: [{ type: 'X', data: {} }] })).rejects.toMatchObject({ code: 'WRONG_EXPECTED_REVISION' });
      expect(await store.append({ ...keyed(50) })).toMatchObject({ status: 'appended' });
    } finally {
      await store.close();
    }
    expect(savedNames(path)).toEqual(['claims', 'idempotency_keys', 'streams']);
  });

  it('the open uses the saved filter rather than reading the log (shown with a filter tampered to say no stream exists)', async () => {
    const path = file();
    await written(path, 5);
    zeroSaved(path, 'streams');
    const store = new SqliteEventStore({ path, nodeId: 1 });
    try {
      // Misled by the zeroed filter, the planner takes s-3 for a new stream (proof that the open did not
      // rebuild the filter from the log); the file's own unique index still refuses the write.
      await expect(store.append({ ...keyed(3), idempotency: { key: 'agency:1/fresh', requestDigest: 'd' }, events: [{ type: 'X', data: {} }] })).rejects.toThrow(/UNIQUE constraint failed: events\.stream_id, events\.stream_revision/);
    } finally {
      await store.close();
    }
  });

  it('a saved filter of another point of the log is not used: the open rebuilds it from the log', async () => {
    const path = file();
    await written(path, 5);
    zeroSaved(path, 'streams', 3);
    zeroSaved(path, 'claims', 1);
    const store = new SqliteEventStore({ path, nodeId: 1 });
    try {
      await expect(store.append({ ...keyed(3), idempotency: { key: 'agency:1/fresh', requestDigest: 'd' }, events: [{ type: 'X', data: {} }] })).rejects.toMatchObject({ code: 'WRONG_EXPECTED_REVISION' });
      await expect(store.append({ ...keyed(900), idempotency: { key: 'agency:1/fresh-2', requestDigest: 'd' }, events: [{ type: 'X', data: {}, claims: ['claim:2'] }] })).rejects.toMatchObject({ code: 'CLAIM_CONFLICT' });
    } finally {
      await store.close();
    }
  });

  it('after a run that ended without closing, none is saved and the next open rebuilds them', async () => {
    const path = file();
    await written(path, 5);
    const crashed = new SqliteEventStore({ path, nodeId: 1 });
    await crashed.append(keyed(5));
    // No close(), as in a crash: the filters were taken out at open and never saved again.
    expect(savedNames(path)).toEqual([]);
    const store = new SqliteEventStore({ path, nodeId: 1 });
    try {
      await expect(store.append({ ...keyed(5), idempotency: { key: 'agency:1/after-crash', requestDigest: 'd' } })).rejects.toMatchObject({ code: 'WRONG_EXPECTED_REVISION' });
      expect(await store.append(keyed(4))).toMatchObject({ status: 'duplicate', firstPosition: 4 });
    } finally {
      await store.close();
      crashed.db.close();
    }
  });
});
