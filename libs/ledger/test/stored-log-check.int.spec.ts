import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKey, leafHash, toHex } from '#audit-log';
import {
  MerkleTreeProjection,
  SqliteEventStore,
  VerifiedMark,
  checkStoredLog,
  checkpointAppendRequest,
  defaultCheckpointOrigin,
  signedCheckpointData,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'stored-log-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const meta = { actor: 'agency:test', correlationId: 'c' };

interface Fixture {
  readonly path: string;
  readonly key: { privateKey: Uint8Array; publicKey: Uint8Array };
  readonly checkpoints: { position: number; size: number }[];
  readonly head: number;
}

/** A ledger kept as the hub keeps it (tree in the writer's transactions), with a checkpoint every `every` events. */
async function build(events = 700, every = 200): Promise<Fixture> {
  const path = join(dir, `ledger-${Math.random().toString(36).slice(2)}.sqlite`);
  const key = generateSigningKey();
  const store = new SqliteEventStore({ path, nodeId: 1, tree: true });
  const checkpoints: { position: number; size: number }[] = [];
  let written = 0;
  while (written < events) {
    const n = Math.min(every, events - written);
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        store.append({ streamId: `s-${written + i}`, expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'Noted', data: { i: written + i, text: 'provision record' }, terminal: 'completed' }], metadata: meta }),
      ),
    );
    written += n;
    const tree = new MerkleTreeProjection({ source: path, maintainedByLedger: true });
    const size = tree.size;
    const data = signedCheckpointData(defaultCheckpointOrigin(1), size, tree.root(size), Date.now() + written, key.privateKey);
    tree.close();
    const cp = await store.append(checkpointAppendRequest(data, meta));
    checkpoints.push({ position: cp.firstPosition, size });
    written += 1;
  }
  const head = await store.head();
  await store.close();
  return { path, key, checkpoints, head };
}

function tamper(path: string): Database.Database {
  const db = new Database(path);
  db.exec('DROP TRIGGER IF EXISTS events_append_only_update; DROP TRIGGER IF EXISTS events_append_only_delete;');
  return db;
}

const check = (f: Fixture, from = 0, extra: Partial<Parameters<typeof checkStoredLog>[0]> = {}) => checkStoredLog({ path: f.path, publicKey: f.key.publicKey, from, threads: 2, ...extra });

describe('checkStoredLog', () => {
  it('re-hashes every leaf of an untouched file as the writer did, and verifies every checkpoint', async () => {
    const f = await build();
    const progress: number[] = [];
    const report = await check(f, 0, { onProgress: (checked) => progress.push(checked) });
    expect(report).toMatchObject({ from: 0, to: f.head, head: f.head, treeSize: f.head, checked: f.head, checkpoints: f.checkpoints.length, findingCount: 0, findings: [] });
    expect(progress.at(-1)).toBe(f.head);
  });

  it('from a mark: re-hashes from the tile boundary below it; checks the checkpoints there, and always the latest', async () => {
    const f = await build();
    const inRange = f.checkpoints.filter((c) => c.position >= 512).length;
    expect(inRange).toBe(2);
    expect(await check(f, 600)).toMatchObject({ from: 512, to: f.head, checked: f.head - 512, checkpoints: inRange, findingCount: 0 });
    // A range that ends before the latest checkpoint still checks it.
    expect(await check(f, 0, { to: 300 })).toMatchObject({ from: 0, to: 300, checked: 300, checkpoints: 2, findingCount: 0 });
  });

  it('finds an event changed after it was written, naming its position, serial and both leaf hashes', async () => {
    const f = await build();
    const db = tamper(f.path);
    const position = 123;
    const { envelope: original, serial } = db.prepare('SELECT envelope, serial FROM events WHERE position = ?').get(position) as { envelope: string; serial: string };
    const altered = original.replace('provision record', 'provision recorc');
    db.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(altered, position);
    db.close();
    const report = await check(f);
    expect(report.findingCount).toBe(1);
    expect(report.findings[0]).toMatchObject({ check: 'leaf', code: 'LEAF_MISMATCH', position, serial, expected: toHex(leafHash(original)), calculated: toHex(leafHash(altered)) });
    // Above the change: the leaves since a later mark do not include it.
    expect((await check(f, 256)).findingCount).toBe(0);
  });

  it('finds a changed tree node above untouched events, and the signed roots it breaks', async () => {
    const f = await build();
    const db = tamper(f.path);
    const tile = db.prepare('SELECT hashes FROM tree_tiles WHERE level = 1 AND idx = 0').pluck().get() as Buffer;
    const original = toHex(tile.subarray(0, 32));
    tile[5] = tile[5]! ^ 0x01;
    db.prepare('UPDATE tree_tiles SET hashes = ? WHERE level = 1 AND idx = 0').run(tile);
    const serial0 = db.prepare('SELECT serial FROM events WHERE position = 0').pluck().get() as string;
    db.close();
    const report = await check(f);
    expect(report.findings[0]).toMatchObject({ check: 'tile', code: 'TILE_MISMATCH', position: 0, serial: serial0, expected: toHex(tile.subarray(0, 32)), calculated: original });
    const late = f.checkpoints.filter((c) => c.size >= 256);
    expect(report.findings.filter((x) => x.code === 'CHECKPOINT_ROOT_MISMATCH').map((x) => x.position)).toEqual(late.map((c) => c.position));
  });

  it('finds a checkpoint that is not signed with the given key', async () => {
    const f = await build(300, 200);
    const other = generateSigningKey();
    const report = await checkStoredLog({ path: f.path, publicKey: other.publicKey, from: 0, threads: 1 });
    expect(report.findings.map((x) => [x.code, x.position])).toEqual(f.checkpoints.map((c) => ['CHECKPOINT_SIGNATURE_INVALID', c.position]));
    expect(report.findings[0]!.calculated).toBe('NOTE_NOT_SIGNED');
  });

  it('finds a deleted row', async () => {
    const f = await build(300, 200);
    const db = tamper(f.path);
    db.prepare('DELETE FROM events WHERE position = 40').run();
    db.close();
    const report = await check(f);
    expect(report.findings[0]).toMatchObject({ code: 'ROW_MISSING', position: 40, expected: 40, calculated: 41 });
  });
});

describe('VerifiedMark', () => {
  it('is 0 until set, and keeps the size in the ledger file', async () => {
    const f = await build(10, 10);
    const mark = new VerifiedMark(f.path);
    expect(mark.get()).toBe(0);
    expect(mark.logHead()).toBe(f.head);
    mark.set(11);
    mark.close();
    const db = new Database(f.path, { readonly: true });
    expect(db.prepare(`SELECT value FROM ledger_meta WHERE key = ?`).pluck().get(VerifiedMark.KEY)).toBe('11');
    db.close();
  });
});

describe('a background check is bounded in memory (I11)', () => {
  it('runs in one thread whose young generation is the 2 MiB it asks for, even in a process run with --max-semi-space-size=64 (as the hub is)', async () => {
    const f = await build(2000, 1000);
    const child = spawnSync(
      process.execPath,
      ['--max-semi-space-size=64', '--conditions=source', '--import', 'tsx', fileURLToPath(new URL('./fixtures/scrub-young-generation.ts', import.meta.url)), f.path, String(f.head)],
      { encoding: 'utf8', timeout: 150_000 },
    );
    expect(child.status, child.stderr).toBe(0);
    const out = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    // The process-wide flag overrides a worker's resource limits: a plain worker's young generation grows past them.
    expect(out['plain']).toBeGreaterThanOrEqual(16);
    // Made while the flag is cleared, a worker keeps its own limit, and later workers get the flag again.
    expect(out['own']).toBeLessThanOrEqual(2);
    expect(out['afterwards']).toBeGreaterThanOrEqual(16);
    // The scrub's pool: one thread (four were asked for), its young generation 2 MiB after re-hashing the log.
    expect(out).toMatchObject({ threads: 1, checked: f.head });
    expect(out['scrub']).toBeLessThanOrEqual(2);
    // A ledger to write and a child process to start: more than the default minute on a busy machine.
  }, 180_000);
});
