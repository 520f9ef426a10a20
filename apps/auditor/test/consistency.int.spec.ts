import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { leafHash, signCheckpoint, toHex } from '#audit-log';
import { MerkleTreeProjection } from '#ledger';
import { loadOrCreateCheckpointKey } from '../../hub/src/audit/audit-keys.js';
import { TreeFollower } from '../../hub/src/audit/tree-follower.service.js';
import { startTestHub } from '../../hub/test/support/test-hub.js';
import { checkConsistency } from '../src/consistency/check-consistency.js';
import { buildLedger, tmp } from './support/ledger-fixture.js';

const dir = tmp('auditor-consistency-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (text: string) => {
  const path = join(dir, `f-${++n}`);
  writeFileSync(path, text);
  return path;
};

/** Two checkpoint notes of one ledger, as files, the proof between them as the hub serves it, and the key. */
async function twoCheckpoints() {
  const f = await buildLedger(dir, 40, 30);
  const db = new Database(f.path, { readonly: true });
  const notes = db.prepare('SELECT size, note FROM tree_checkpoints ORDER BY size').all() as { size: number; note: string }[];
  db.close();
  const [older, newer] = [notes[0]!, notes.at(-1)!];
  expect(older.size).toBeLessThan(newer.size);
  const tree = new MerkleTreeProjection({ source: f.path });
  const proof = { from: older.size, to: newer.size, proof: tree.consistencyProof(older.size, newer.size).map(toHex) };
  tree.close();
  return { f, older: file(older.note), newer: file(newer.note), proof, proofFile: file(JSON.stringify(proof)) };
}

const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(process.execPath, ['--conditions=source', '--import', 'tsx', join(import.meta.dirname, '../src/main.ts'), 'consistency', ...args]).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('auditor consistency', () => {
  it('verifies both signatures and the proof from a file (exit 0; --json)', async () => {
    const c = await twoCheckpoints();
    const report = await checkConsistency({ olderFile: c.older, newerFile: c.newer, verifierKey: c.f.verifierKey, proof: { file: c.proofFile } });
    expect(report).toMatchObject({ ok: true, failure: null, older: { size: c.proof.from }, newer: { size: c.proof.to }, proof: c.proof.proof });
    const text = await cli(c.older, c.newer, '--verifier-key', c.f.verifierKey, '--proof', c.proofFile);
    expect(text).toMatchObject({ code: 0, stdout: expect.stringContaining(`OK: the checkpoint of size ${c.proof.from} is a prefix of the checkpoint of size ${c.proof.to}`) });
    const json = await cli(c.older, c.newer, '--verifier-key', c.f.verifierKey, '--proof', c.proofFile, '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, older: { size: c.proof.from }, newer: { size: c.proof.to } });
  });

  it('fails a tampered proof, with the expected and calculated roots (exit 1)', async () => {
    const c = await twoCheckpoints();
    const tampered = file(JSON.stringify({ ...c.proof, proof: c.proof.proof.map((h, i) => (i === c.proof.proof.length - 1 ? toHex(leafHash('not a node of this tree')) : h)) }));
    const report = await checkConsistency({ olderFile: c.older, newerFile: c.newer, verifierKey: c.f.verifierKey, proof: { file: tampered } });
    expect(report.ok).toBe(false);
    expect(report.failure).toMatchObject({ code: 'CHECKPOINTS_INCONSISTENT', expected: report.newer.rootHex, calculated: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(report.failure!.calculated).not.toBe(report.newer.rootHex);
    const cliRun = await cli(c.older, c.newer, '--verifier-key', c.f.verifierKey, '--proof', tampered);
    expect(cliRun).toMatchObject({ code: 1, stdout: expect.stringContaining('FAILED: CHECKPOINTS_INCONSISTENT') });
  });

  it('fails swapped checkpoints, and a proof between other sizes (exit 1)', async () => {
    const c = await twoCheckpoints();
    const swapped = await checkConsistency({ olderFile: c.newer, newerFile: c.older, verifierKey: c.f.verifierKey, proof: { file: c.proofFile } });
    expect(swapped).toMatchObject({ ok: false, failure: { code: 'CHECKPOINTS_OUT_OF_ORDER', calculated: c.proof.to } });
    expect(await cli(c.newer, c.older, '--verifier-key', c.f.verifierKey, '--proof', c.proofFile)).toMatchObject({ code: 1, stdout: expect.stringContaining('FAILED: CHECKPOINTS_OUT_OF_ORDER') });
    const other = file(JSON.stringify({ ...c.proof, from: c.proof.from + 1 }));
    const report = await checkConsistency({ olderFile: c.older, newerFile: c.newer, verifierKey: c.f.verifierKey, proof: { file: other } });
    expect(report.failure).toMatchObject({ code: 'PROOF_INVALID', expected: `${c.proof.from} → ${c.proof.to}` });
  });

  it('fails checkpoints signed with another key (exit 1) before looking at the proof', async () => {
    const c = await twoCheckpoints();
    const other = await twoCheckpoints();
    const report = await checkConsistency({ olderFile: c.older, newerFile: other.newer, verifierKey: c.f.verifierKey, proof: { file: c.proofFile } });
    expect(report).toMatchObject({ ok: false, newer: { size: null }, failure: { code: 'CHECKPOINT_SIGNATURE_INVALID', calculated: 'NOTE_NOT_SIGNED' } });
    expect(report.failure!.message).toContain(other.newer);
    expect(await cli(c.older, other.newer, '--verifier-key', c.f.verifierKey, '--proof', c.proofFile)).toMatchObject({ code: 1, stdout: expect.stringContaining('FAILED: CHECKPOINT_SIGNATURE_INVALID') });
  });

  it('exits 2 when it cannot run: a missing note, a bad key, no proof source', async () => {
    const c = await twoCheckpoints();
    expect(await cli(c.older, join(dir, 'absent.note'), '--verifier-key', c.f.verifierKey, '--proof', c.proofFile)).toMatchObject({ code: 2, stderr: expect.stringContaining('SOURCE_UNREADABLE') });
    expect(await cli(c.older, c.newer, '--verifier-key', 'not-a-key', '--proof', c.proofFile)).toMatchObject({ code: 2, stderr: expect.stringContaining('VERIFIER_KEY_INVALID') });
    expect(await cli(c.older, c.newer, '--verifier-key', c.f.verifierKey)).toMatchObject({ code: 2 });
  });

  it("fetches the proof from a hub (--hub), and fails a newer checkpoint the hub's log does not extend", async () => {
    const hub = await startTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '3' } });
    try {
      for (let i = 0; i < 12; i++) await hub.post('/v1/corporate-numbers', { name: `株式会社整合${i}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, hub.operator);
      const follower = hub.app.get(TreeFollower);
      // The signer signs in the background, every 3 events: wait (bounded) until it has signed twice.
      const signed = () => {
        const db = new Database(hub.config.ledgerPath, { readonly: true });
        try {
          return db.prepare('SELECT size, note FROM tree_checkpoints ORDER BY size').all() as { size: number; note: string }[];
        } finally {
          db.close();
        }
      };
      let notes = signed();
      for (let waited = 0; notes.length < 2 && waited < 15_000; waited += 100) {
        await new Promise((r) => setTimeout(r, 100));
        await follower.catchUp();
        notes = signed();
      }
      expect(notes.length).toBeGreaterThanOrEqual(2);
      await hub.app.listen({ host: '127.0.0.1', port: 0 });
      const url = await hub.app.getUrl();
      const key = file((await hub.get('/v1/audit/verifier-key')).body);
      const [older, newer] = [file(notes[0]!.note), file(notes.at(-1)!.note)];
      expect(await cli(older, newer, '--verifier-key', key, '--hub', url)).toMatchObject({ code: 0, stdout: expect.stringContaining(`OK: the checkpoint of size ${notes[0]!.size} is a prefix`) });
      // Signed with the hub's own key, but over another tree: the hub's proof from its stored tree cannot reach it.
      const last = notes.at(-1)!;
      const forged = file(signCheckpoint({ origin: 'linkage-ledger.example/hub/01', size: last.size, root: leafHash('another tree'), timeMs: Date.now() }, { name: 'linkage-ledger.example/hub/01', privateKey: loadOrCreateCheckpointKey(hub.config.keysDir) }));
      expect(await cli(older, forged, '--verifier-key', key, '--hub', url)).toMatchObject({ code: 1, stdout: expect.stringContaining('FAILED: CHECKPOINTS_INCONSISTENT') });
    } finally {
      await hub.dispose();
    }
  });
});
