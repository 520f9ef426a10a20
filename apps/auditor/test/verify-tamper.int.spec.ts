import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKey, leafHash, toHex } from '#audit-log';
import { MerkleTreeProjection, SqliteEventStore, checkpointAppendRequest, signedCheckpointData, type EventId, type SerialNumber } from '#ledger';
import { verifyLog } from '../src/verify/verify-log.js';
import { appendCheckpoint, buildLedger, envelopeAt, insertRow, tamper, tmp } from './support/ledger-fixture.js';

const dir = tmp('auditor-tamper-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const verify = (path: string, verifierKey: string, extra: Partial<Parameters<typeof verifyLog>[0]> = {}) =>
  verifyLog({ source: { kind: 'db', path }, verifierKey, threads: 2, ...extra });

describe('verify on an untouched log', () => {
  it('recomputes the same root as the hub, verifies every checkpoint and reports nothing', async () => {
    const f = await buildLedger(dir);
    const report = await verify(f.path, f.verifierKey);
    const tree = new MerkleTreeProjection({ source: f.path });
    expect(report).toMatchObject({ ok: true, events: tree.size, findingCount: 0, firstFailure: null, rootHex: toHex(tree.root()) });
    expect(report.checkpoints).toMatchObject({ seen: f.checkpointPositions.length, verified: f.checkpointPositions.length });
    expect(f.checkpointPositions.length).toBeGreaterThanOrEqual(3);
    tree.close();
  });

  it('accepts a serial open at a checkpoint that ends after it (a query waiting for its provider)', async () => {
    const f = await buildLedger(dir, 10, 30);
    const store = new SqliteEventStore({ path: f.path, nodeId: 1 });
    const meta = { actor: 'a:1', correlationId: 'c' };
    const open = await store.append({ streamId: 'linkage-waiting', expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'ProvisionRequested', data: {} }], metadata: meta });
    const cp = await appendCheckpoint(f, store);
    expect(cp.size).toBeGreaterThan(open.firstPosition);
    await store.append({ streamId: 'linkage-waiting', expectedRevision: 0, serial: { continue: open.serial }, events: [{ type: 'QueryCompleted', data: {}, terminal: 'completed' }], metadata: meta });
    await appendCheckpoint(f, store);
    await store.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report).toMatchObject({ ok: true, findingCount: 0, openSerials: [] });
  });

  it('reports a serial still open at the head as open, not as an error, however many checkpoints cover its start', async () => {
    const f = await buildLedger(dir, 10, 30);
    const store = new SqliteEventStore({ path: f.path, nodeId: 1 });
    const meta = { actor: 'a:1', correlationId: 'c' };
    const open = await store.append({ streamId: 'linkage-waiting', expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'ProvisionRequested', data: {} }], metadata: meta });
    await appendCheckpoint(f, store);
    await store.append({ streamId: 'linkage-other', expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'QueryDenied', data: {}, terminal: 'denied' }], metadata: meta });
    await appendCheckpoint(f, store);
    await store.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report).toMatchObject({ ok: true, findingCount: 0, openSerials: [{ serial: open.serial, firstPosition: open.firstPosition }] });
    const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=source', '--import', 'tsx', join(import.meta.dirname, '../src/main.ts'), 'verify', '--db', f.path, '--verifier-key', f.verifierKey]);
    expect(stdout).toContain(`open:        1 serial(s) not ended at the head of the log (not an error): ${open.serial} (from position ${open.firstPosition})`);
    expect(stdout).toMatch(/^OK: /m);
  });

  it('reports a serial opened after the last checkpoint as open, not as an error', async () => {
    const f = await buildLedger(dir, 10, 30);
    const store = new SqliteEventStore({ path: f.path, nodeId: 1 });
    const open = await store.append({ streamId: 'linkage-open', expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'QueryReceived', data: {} }], metadata: { actor: 'a:1', correlationId: 'c' } });
    await store.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.ok).toBe(true);
    expect(report.openSerials).toEqual([{ serial: open.serial, firstPosition: open.firstPosition }]);
  });
});

describe('verify detects and locates a log broken on purpose', () => {
  it('one flipped byte in one stored envelope', async () => {
    const f = await buildLedger(dir);
    const db = tamper(f.path);
    const position = 37;
    const original = db.prepare('SELECT envelope FROM events WHERE position = ?').pluck().get(position) as string;
    expect(original).toContain('provision record');
    const altered = original.replace('provision record', 'provision recorc');
    db.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(altered, position);
    const serial = envelopeAt(db, position).serial;
    db.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.ok).toBe(false);
    expect(report.firstFailure).toMatchObject({ code: 'LEAF_MISMATCH', position, serial, expected: toHex(leafHash(original)), calculated: toHex(leafHash(altered)) });
    expect(report.findings).toContainEqual(expect.objectContaining({ code: 'CHECKPOINT_ROOT_MISMATCH', expected: expect.stringMatching(/^[0-9a-f]{64}$/) }));
  });

  it('one deleted row', async () => {
    const f = await buildLedger(dir);
    const db = tamper(f.path);
    db.prepare('DELETE FROM events WHERE position = 50').run();
    db.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.firstFailure).toMatchObject({ code: 'POSITION_MISSING', position: 50, expected: 50, calculated: 51 });
  });

  it('two rows swapped', async () => {
    const f = await buildLedger(dir);
    const db = tamper(f.path);
    const rows = db.prepare('SELECT position, stream_id, stream_revision, serial, envelope FROM events WHERE position IN (20, 26) ORDER BY position').all() as { position: number; stream_id: string; stream_revision: number; serial: string; envelope: string }[];
    const put = db.prepare('UPDATE events SET stream_id = ?, stream_revision = ?, serial = ?, envelope = ? WHERE position = ?');
    db.transaction(() => {
      // The unique (stream, revision) index needs a free slot for the moment of the swap.
      put.run('tmp', 0, rows[0]!.serial, rows[0]!.envelope, 20);
      put.run(rows[0]!.stream_id, rows[0]!.stream_revision, rows[0]!.serial, rows[0]!.envelope, 26);
      put.run(rows[1]!.stream_id, rows[1]!.stream_revision, rows[1]!.serial, rows[1]!.envelope, 20);
    })();
    db.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.firstFailure).toMatchObject({ code: 'FIELD_MISMATCH', field: 'position', position: 20, serial: rows[1]!.serial, expected: 20, calculated: 26 });
    expect(report.findings).toContainEqual(expect.objectContaining({ code: 'FIELD_MISMATCH', position: 26, expected: 26, calculated: 20 }));
  });

  it('the tail truncated after a checkpoint (the hub recorded the checkpoint)', async () => {
    const f = await buildLedger(dir);
    const last = f.checkpointPositions.at(-1)!;
    const db = tamper(f.path);
    db.prepare('DELETE FROM events WHERE position >= ?').run(last - 5);
    db.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.firstFailure).toMatchObject({ code: 'LOG_TRUNCATED', position: last - 5, expected: last + 1, calculated: last - 5 });
  });

  it('the tail truncated after a checkpoint kept by the auditor (--checkpoint), even with the hub tables gone', async () => {
    const f = await buildLedger(dir);
    const last = f.checkpointPositions.at(-1)!;
    const db = tamper(f.path);
    const note = JSON.parse(db.prepare('SELECT envelope FROM events WHERE position = ?').pluck().get(last) as string).data.note as string;
    const size = Number(note.split('\n')[1]);
    db.prepare('DELETE FROM events WHERE position >= ?').run(size - 3);
    db.exec('DROP TABLE tree_checkpoints; DROP TABLE tree_state; DROP TABLE tree_tiles;');
    db.close();
    const report = await verify(f.path, f.verifierKey, { trustedCheckpoints: [note] });
    expect(report.firstFailure).toMatchObject({ code: 'LOG_TRUNCATED', position: size - 3, expected: size, calculated: size - 3 });
  });

  it('a checkpoint forged with another key', async () => {
    const f = await buildLedger(dir, 12, 100);
    const store = new SqliteEventStore({ path: f.path, nodeId: 1 });
    const tree = new MerkleTreeProjection({ source: f.path });
    tree.catchUp();
    const forged = signedCheckpointData(f.origin, tree.size, tree.root(), Date.now(), generateSigningKey().privateKey);
    const at = await store.append(checkpointAppendRequest(forged, { actor: 'system:checkpoint', correlationId: 'x' }));
    await store.close();
    tree.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.firstFailure).toMatchObject({ code: 'CHECKPOINT_KEY_UNANNOUNCED', position: at.firstPosition, serial: at.serial, calculated: 'CHECKPOINT_KEY_UNANNOUNCED' });
    expect(report.firstFailure!.expected).toMatch(/^linkage-ledger\.example\/hub\/01\+[0-9a-f]{8}$/);
  });

  it('a checkpoint whose root does not match', async () => {
    const f = await buildLedger(dir, 12, 100);
    const store = new SqliteEventStore({ path: f.path, nodeId: 1 });
    const tree = new MerkleTreeProjection({ source: f.path });
    tree.catchUp();
    const wrongRoot = tree.root(tree.size - 1);
    const bad = signedCheckpointData(f.origin, tree.size, wrongRoot, Date.now(), f.privateKey);
    const at = await store.append(checkpointAppendRequest(bad, { actor: 'system:checkpoint', correlationId: 'x' }));
    const right = toHex(tree.root());
    await store.close();
    tree.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.firstFailure).toMatchObject({ code: 'CHECKPOINT_ROOT_MISMATCH', position: at.firstPosition, serial: at.serial, expected: toHex(wrongRoot), calculated: right });
    // No stored event differs from the hub's tree: the checkpoint itself is what is wrong.
    expect(report.findings.filter((x) => x.code === 'LEAF_MISMATCH')).toEqual([]);
  });

  it('a serial with two terminal events', async () => {
    const f = await buildLedger(dir, 12, 100);
    const db = tamper(f.path);
    const end = envelopeAt(db, 5);
    expect(end.terminal).toBe('completed');
    const position = insertRow(db, { ...end, eventId: 'dup-terminal' as EventId, streamRevision: end.streamRevision + 1, type: 'ProvisionFailed', terminal: 'failed' });
    db.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.firstFailure).toMatchObject({ code: 'SERIAL_TERMINAL_DUPLICATE', position, serial: end.serial, calculated: 'failed' });
  });

  it('a missing serial', async () => {
    const f = await buildLedger(dir, 12, 100);
    const db = tamper(f.path);
    const last = envelopeAt(db, (db.prepare('SELECT max(position) FROM events').pluck().get() as number));
    const next = (n: number) => `${last.serial.slice(0, 10)}${String(Number(last.serial.slice(10)) + n).padStart(10, '0')}` as SerialNumber;
    const position = insertRow(db, { ...last, eventId: 'skip' as EventId, streamId: 'linkage-skip', streamRevision: 0, serial: next(2), type: 'QueryDenied', terminal: 'denied' });
    db.close();
    const report = await verify(f.path, f.verifierKey);
    expect(report.firstFailure).toMatchObject({ code: 'SERIAL_GAP', position, serial: next(2), expected: next(1), calculated: next(2) });
  });
});

describe('the auditor CLI', () => {
  const run = promisify(execFile);
  const main = join(import.meta.dirname, '../src/main.ts');

  it('exits non-zero and names the first bad position, its serial, expected and calculated (--json)', async () => {
    const f = await buildLedger(dir);
    const keyFile = join(dir, 'verifier.key');
    writeFileSync(keyFile, `${f.verifierKey}\n`);
    const db = tamper(f.path);
    db.prepare('DELETE FROM events WHERE position = 44').run();
    db.close();
    const child = run(process.execPath, ['--conditions=source', '--import', 'tsx', main, 'verify', '--db', f.path, '--verifier-key', keyFile, '--json']);
    await expect(child).rejects.toMatchObject({ code: 1 });
    const { stdout } = (await child.catch((e: { stdout: string }) => e)) as { stdout: string };
    expect(JSON.parse(stdout)).toMatchObject({ ok: false, firstFailure: { code: 'POSITION_MISSING', position: 44, expected: 44, calculated: 45 } });
  });

  it('exits 0 and says OK on an untouched log', async () => {
    const f = await buildLedger(dir, 10, 30);
    const { stdout } = await run(process.execPath, ['--conditions=source', '--import', 'tsx', main, 'verify', '--db', f.path, '--verifier-key', f.verifierKey]);
    expect(stdout).toMatch(/^OK: every leaf, root, signature/m);
  });
});

