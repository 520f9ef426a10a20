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
    return (raw.prepare('SELECT name FROM ledger_saved_filters ORDER BY name').pluck().all() as string[]).sort();
  } finally {
    raw.close();
  }
};

/** Replaces a saved filter's bits by zeros ("no stream exists"): only an open that uses the saved filter is misled. */
function zeroSaved(path: string, name: string, through?: number): void {
  const raw = new Database(path);
  raw.prepare('UPDATE ledger_saved_filters SET bits = zeroblob(length(bits)) WHERE name = ?').run(name);
  if (through !== undefined) raw.prepare('UPDATE ledger_saved_filters SET through = ? WHERE name = ?').run(through, name);
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

describe('the ledger\'s filters are of a fixed size (I11: memory does not grow with the log)', () => {
  /** What a store must still answer, however full its filters: every stream, key and claim of the log is known. */
  async function allKnown(store: SqliteEventStore, count: number): Promise<void> {
    for (let i = 0; i < count; i += 7) {
      expect(await store.append(keyed(i))).toMatchObject({ status: 'duplicate', firstPosition: i });
      await expect(store.append({ ...keyed(100_000 + i), idempotency: { key: `agency:1/claim-${i}`, requestDigest: 'd' }, events: [{ type: 'X', data: {}, claims: [`claim:${i}`] }] })).rejects.toMatchObject({ code: 'CLAIM_CONFLICT' });
      await expect(store.append({ ...keyed(200_000 + i), streamId: `s-${i}`, idempotency: { key: `agency:1/stream-${i}`, requestDigest: 'd' }, events: [{ type: 'X', data: {} }] })).rejects.toMatchObject({ code: 'WRONG_EXPECTED_REVISION' });
    }
  }

  it('a saturated filter (every bit set) misses nothing: duplicates, held claims and existing streams are found through the index, new ones are appended', async () => {
    const path = file();
    // 1,024 bits, 16 probes a key: a few hundred keys set every bit.
    const filters = { bytes: 128, hashes: 16 };
    const store = new SqliteEventStore({ path, nodeId: 1, filters, keyIndex: { recentLimit: 16 } });
    try {
      for (let i = 0; i < 600; i++) await store.append(keyed(i));
      const stats = store.filterStats;
      expect(stats.map((f) => f.name)).toEqual(['streams', 'idempotency_keys', 'claims']);
      for (const f of stats) {
        expect(f.bytes).toBe(128);
        // Full: every look-up of a new key also reads the index.
        expect(f.falsePositiveRate).toBeGreaterThan(0.99);
      }
      await allKnown(store, 600);
      // New streams, keys and claims: a "maybe" from the filter, "no" from the index.
      for (let i = 600; i < 620; i++) expect(await store.append(keyed(i))).toMatchObject({ status: 'appended' });
    } finally {
      await store.close();
    }
    // Saved full (every bit of the three filters set), restored full: still right after a clean restart.
    const raw = new Database(path, { readonly: true });
    const saved = raw.prepare('SELECT name, bits FROM ledger_saved_filters ORDER BY name').all() as { name: string; bits: Buffer }[];
    raw.close();
    expect(saved.map((f) => [f.name, f.bits.length, f.bits.every((b) => b === 0xff)])).toEqual([
      ['claims', 128, true],
      ['idempotency_keys', 128, true],
      ['streams', 128, true],
    ]);
    const again = new SqliteEventStore({ path, nodeId: 1, filters });
    try {
      expect(again.filterStats.map((f) => f.count)).toEqual(store.filterStats.map((f) => f.count));
      await allKnown(again, 620);
    } finally {
      await again.close();
    }
  });

  it('the filters keep their configured size as the log grows (1,000 then 5,000 events: 3 × 4 KiB), and by default 3 × 4 MiB', async () => {
    const store = new SqliteEventStore({ path: file(), nodeId: 1, filters: { bytes: 4096 }, keyIndex: { recentLimit: 64 } });
    try {
      for (let i = 0; i < 1000; i++) await store.append(keyed(i));
      const at1000 = store.filterStats;
      expect(at1000.map((f) => f.bytes)).toEqual([4096, 4096, 4096]);
      const rate1000 = at1000[0]!.falsePositiveRate;
      const writes = Array.from({ length: 4000 }, (_, i) => store.append(keyed(1000 + i)));
      await Promise.all(writes);
      const at5000 = store.filterStats;
      expect(at5000.map((f) => f.bytes)).toEqual([4096, 4096, 4096]);
      expect(at5000[0]!.count).toBe(5000);
      // More keys in the same bits: only the false-positive rate rises.
      expect(at5000[0]!.falsePositiveRate).toBeGreaterThan(rate1000);
      await allKnown(store, 5000);
    } finally {
      await store.close();
    }
    const dflt = new SqliteEventStore({ path: file(), nodeId: 1 });
    try {
      expect(dflt.filterStats.map((f) => [f.bytes, f.hashes])).toEqual([
        [4 << 20, 3],
        [4 << 20, 3],
        [4 << 20, 3],
      ]);
    } finally {
      await dflt.close();
    }
   // 5,000 appends and their look-ups: more than the default minute on a busy machine.
  }, 180_000);

  it('a filter saved with another size is not used: the open rebuilds it at the size asked for, and nothing is missed', async () => {
    const path = file();
    const first = new SqliteEventStore({ path, nodeId: 1, filters: { bytes: 1024 }, keyIndex: { recentLimit: 8 } });
    for (let i = 0; i < 100; i++) await first.append(keyed(i));
    await first.close();
    zeroSaved(path, 'streams');
    zeroSaved(path, 'claims');
    zeroSaved(path, 'idempotency_keys');
    // Were the zeroed 1 KiB filters used, the existing streams would look new (see the tampered test above).
    const store = new SqliteEventStore({ path, nodeId: 1, filters: { bytes: 2048 } });
    try {
      expect(store.filterStats.map((f) => f.bytes)).toEqual([2048, 2048, 2048]);
      await allKnown(store, 100);
    } finally {
      await store.close();
    }
  });

  it('a filter saved by an earlier build (table ledger_filters, sized by the log) is dropped and rebuilt', async () => {
    const path = file();
    await written(path, 20);
    const raw = new Database(path);
    raw.exec('CREATE TABLE ledger_filters (name TEXT PRIMARY KEY, through INTEGER NOT NULL, capacity INTEGER NOT NULL, count INTEGER NOT NULL, bits BLOB NOT NULL) STRICT');
    raw.prepare('INSERT INTO ledger_filters VALUES (?, ?, ?, ?, zeroblob(131072))').run('streams', 20, 1 << 20, 20);
    raw.close();
    const store = new SqliteEventStore({ path, nodeId: 1 });
    try {
      await allKnown(store, 20);
      expect(store.db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'ledger_filters'`).pluck().get()).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('a filter size out of range is refused before the file is opened', () => {
    const path = file();
    expect(() => new SqliteEventStore({ path, nodeId: 1, filters: { bytes: 16 } })).toThrow(/128 bytes to 256 MiB/);
    expect(() => new SqliteEventStore({ path, nodeId: 1, filters: { hashes: 0 } })).toThrow(/1 to 16 probes/);
  });
});
