import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { formatVerifierKey, generateSigningKey } from '#audit-log';
import { proveSerial, verifyProofBundle, type ProofBundle } from '../src/prove/proof-bundle.js';
import { replayTree } from '../src/replay/replay-tree.js';
import { buildLedger, envelopeAt, tamper, tmp } from './support/ledger-fixture.js';

const dir = tmp('auditor-prove-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const code = (c: string) => expect.objectContaining({ code: c });

describe('prove and verify-proof', () => {
  it('proves every event of a serial against the first checkpoint that covers it, verifiable offline', async () => {
    const f = await buildLedger(dir);
    const db = tamper(f.path);
    const serial = envelopeAt(db, 40).serial;
    db.close();
    const bundle = await proveSerial({ kind: 'db', path: f.path }, serial);
    expect(bundle.events).toHaveLength(3);
    expect(bundle.events.map((e) => e.position)).toContain(40);
    expect(bundle.size).toBeGreaterThan(bundle.events.at(-1)!.position);
    const result = verifyProofBundle(JSON.parse(JSON.stringify(bundle)), f.verifierKey);
    expect(result).toMatchObject({ serial, size: bundle.size });
    expect(result.events.map((e) => e.type)).toEqual(['QueryReceived', 'ProvisionRequested', 'ProvisionCompleted']);
    expect(result.events.at(-1)!.terminal).toBe('completed');
  });

  it('rejects a proof whose envelope, proof hash, checkpoint or key was changed', async () => {
    const f = await buildLedger(dir);
    const db = tamper(f.path);
    const serial = envelopeAt(db, 10).serial;
    db.close();
    const good = await proveSerial({ kind: 'db', path: f.path }, serial);
    const edit = (change: (b: { -readonly [K in keyof ProofBundle]: ProofBundle[K] } & { events: { envelope: string; proof: string[]; position: number; leafHex: string }[] }) => void) => {
      const copy = JSON.parse(JSON.stringify(good));
      change(copy);
      return copy as unknown;
    };
    expect(() => verifyProofBundle(edit((b) => (b.events[0]!.envelope = b.events[0]!.envelope.replace('"i":3', '"i":4'))), f.verifierKey)).toThrow(code('PROOF_INVALID'));
    expect(() => verifyProofBundle(edit((b) => (b.events[1]!.proof[0] = '00'.repeat(32))), f.verifierKey)).toThrow(code('PROOF_INVALID'));
    expect(() => verifyProofBundle(edit((b) => (b.checkpoint = b.checkpoint.replace(/\n\d+\n/, '\n9999\n'))), f.verifierKey)).toThrow(expect.objectContaining({ code: 'PROOF_INVALID', message: expect.stringContaining('checkpoint') }));
    const otherKey = formatVerifierKey({ name: f.origin, publicKey: generateSigningKey().publicKey });
    expect(() => verifyProofBundle(good, otherKey)).toThrow(expect.objectContaining({ code: 'PROOF_INVALID', message: expect.stringContaining('no signature') }));
    expect(() => verifyProofBundle({ format: 'x' }, f.verifierKey)).toThrow(code('PROOF_FILE_MALFORMED'));
    await expect(proveSerial({ kind: 'db', path: f.path }, '20990101010000000001')).rejects.toThrow(code('SERIAL_UNKNOWN'));
  });

  it('round-trips through the CLI: prove --db writes the file, verify-proof checks it, a changed file exits 1', async () => {
    const f = await buildLedger(dir, 12, 20);
    const db = tamper(f.path);
    const serial = envelopeAt(db, 2).serial;
    db.close();
    const run = promisify(execFile);
    const main = join(import.meta.dirname, '../src/main.ts');
    const node = [process.execPath, '--conditions=source', '--import', 'tsx', main] as const;
    const out = join(dir, 'proof.json');
    await run(node[0], [...node.slice(1), 'prove', '--db', f.path, '--serial', serial, '--out', out, '--verifier-key', f.verifierKey]);
    const { stdout } = await run(node[0], [...node.slice(1), 'verify-proof', '--verifier-key', f.verifierKey, out]);
    expect(stdout).toMatch(new RegExp(`^OK: 3 event\\(s\\) of serial ${serial}`));
    const bundle = JSON.parse((await import('node:fs')).readFileSync(out, 'utf8')) as ProofBundle;
    writeFileSync(out, JSON.stringify({ ...bundle, events: bundle.events.map((e, i) => (i === 0 ? { ...e, position: e.position + 1 } : e)) }));
    await expect(run(node[0], [...node.slice(1), 'verify-proof', '--verifier-key', f.verifierKey, out])).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('PROOF_INVALID') });
  });
});

describe('replay', () => {
  it('rebuilds the tree projection from the log and finds it equal to the live one', async () => {
    const f = await buildLedger(dir);
    const diff = replayTree(f.path);
    expect(diff).toMatchObject({ ok: true, differingTiles: [], differingCheckpoints: [] });
    expect(diff.rebuiltRootHex).toBe(diff.liveRootHex);
    expect(diff.liveSize).toBeGreaterThan(100);
  });

  it('reports the tiles that differ when the live projection was altered', async () => {
    const f = await buildLedger(dir);
    const db = tamper(f.path);
    const tile = db.prepare('SELECT hashes FROM tree_tiles WHERE level = 0 AND idx = 0').pluck().get() as Buffer;
    tile[40] = tile[40]! ^ 1;
    db.prepare('UPDATE tree_tiles SET hashes = ? WHERE level = 0 AND idx = 0').run(tile);
    db.close();
    const diff = replayTree(f.path);
    expect(diff).toMatchObject({ ok: false, differingTiles: [{ level: 0, idx: 0 }] });
  });
});
