import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainKey } from '#audit-log';
import { CHECKPOINT_STREAM } from '#ledger';
import { CheckpointSigner } from '../../hub/src/audit/checkpoint-signer.service.js';
import { TreeFollower } from '../../hub/src/audit/tree-follower.service.js';
import { startTestHub, type TestHub } from '../../hub/test/support/test-hub.js';
import { proveSerial, verifyProofBundle, type ProofBundle } from '../src/prove/proof-bundle.js';

// auditor verify-proof across a checkpoint key rotation: a bundle whose checkpoint the new key signed
// verifies from the first key with the hub's key set (a file, or fetched with --hub), checked as a chain;
// without the set, or with a set that does not chain from the first key, it does not.

const code = (c: string) => expect.objectContaining({ code: c });
let hub: TestHub;
let url: string;
let dir: string;
let first: string;
let rotation: { keyId: string; previousKeyId: string; position: number; handoverSize: number };
let served: { origin: string; keys: ChainKey[] };
let before: ProofBundle;
let after: ProofBundle;
let seq = 0;

async function designate(): Promise<string> {
  const res = await hub.post('/v1/corporate-numbers', { name: `株式会社証明${++seq}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, hub.operator);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ serial: string }>().serial;
}

async function signNow(): Promise<void> {
  const follower = hub.app.get(TreeFollower);
  const signer = hub.app.get(CheckpointSigner);
  await follower.catchUp();
  const target = (await signer.signIfDue(true))?.size ?? signer.lastSigned?.size ?? 0;
  // The hub serves a checkpoint as the latest once its tree has followed the log past the event that recorded it.
  for (const deadline = Date.now() + 15_000; ; ) {
    await follower.catchUp();
    const latest = await hub.get('/v1/audit/checkpoint?format=json');
    if (latest.statusCode === 200 && latest.json<{ size: number }>().size >= target) return;
    if (Date.now() > deadline) throw new Error(`the checkpoint of size ${target} is not served as the latest`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'verify-proof-rotation-'));
  hub = await startTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '3', HUB_CHECKPOINT_EVERY_MS: '3600000' } });
  const old = await designate();
  await designate();
  await designate();
  await signNow();
  first = (await hub.get('/v1/audit/verifier-key')).body.trim();
  const res = await hub.post('/v1/audit/checkpoint-key-rotations', {}, hub.operator);
  expect(res.statusCode, res.body).toBe(201);
  rotation = res.json();
  const fresh = await designate();
  await designate();
  await designate();
  await signNow();
  await hub.app.listen({ host: '127.0.0.1', port: 0 });
  url = await hub.app.getUrl();
  served = (await hub.get('/v1/audit/verifier-keys')).json();
  const token = hub.auditor['authorization']!.slice(7);
  const sizes = (await hub.store.readStream(CHECKPOINT_STREAM)).map((e) => (e.data as { size: number }).size);
  before = await proveSerial({ kind: 'hub', url, token }, old, sizes.find((s) => s <= rotation.position));
  after = await proveSerial({ kind: 'hub', url, token }, fresh);
  writeFileSync(join(dir, 'before.json'), JSON.stringify(before));
  writeFileSync(join(dir, 'after.json'), JSON.stringify(after));
  writeFileSync(join(dir, 'keys.json'), JSON.stringify(served));
}, 120_000);

afterAll(async () => {
  await hub?.dispose();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('verify-proof across a checkpoint key rotation', () => {
  it('verifies a bundle the new key signed with the key set checked from the first key; the first key alone does not', () => {
    expect(served.keys.map((k) => k.keyId)).toEqual([rotation.previousKeyId, rotation.keyId]);
    expect(after.size).toBeGreaterThan(rotation.handoverSize);
    const keys = JSON.stringify(served);
    expect(verifyProofBundle(after, first, undefined, keys)).toMatchObject({ size: after.size, keyId: rotation.keyId, keys: [rotation.previousKeyId, rotation.keyId] });
    // A bundle of before the rotation: the first key, with or without the set.
    expect(before.size).toBeLessThanOrEqual(rotation.position);
    expect(verifyProofBundle(before, first, undefined, keys)).toMatchObject({ keyId: rotation.previousKeyId });
    expect(verifyProofBundle(before, first)).toMatchObject({ keyId: rotation.previousKeyId });
    // Without the set the new key's checkpoint has no signature by the first key.
    expect(() => verifyProofBundle(after, first)).toThrow(expect.objectContaining({ code: 'PROOF_INVALID', message: expect.stringContaining('no signature') }));
  });

  it('refuses a key set that does not chain from the first key, and a checkpoint signed by a key not announced for its size', () => {
    const set = (edit: (keys: ChainKey[]) => ChainKey[]) => JSON.stringify({ ...served, keys: edit(structuredClone(served.keys)) });
    // The new key named as announced by another key.
    expect(() => verifyProofBundle(after, first, undefined, set((k) => [k[0]!, { ...k[1]!, announcedBy: '00000000' }]))).toThrow(
      expect.objectContaining({ code: 'VERIFIER_KEY_INVALID', message: expect.stringContaining('does not form a chain') }),
    );
    // The hand-over note without the first key's signature.
    const handover = served.keys[1]!.handoverNote!;
    const newOnly = handover.split('\n').filter((l) => !(l.startsWith('\u2014 ') && Buffer.from(l.split(' ').at(-1)!, 'base64').subarray(0, 4).toString('hex') === rotation.previousKeyId)).join('\n');
    expect(newOnly.match(/^\u2014 /gm)).toHaveLength(1);
    expect(() => verifyProofBundle(after, first, undefined, set((k) => [k[0]!, { ...k[1]!, handoverNote: newOnly }]))).toThrow(code('VERIFIER_KEY_INVALID'));
    // A set that starts at the new key (not the pinned first key).
    expect(() => verifyProofBundle(after, first, undefined, set((k) => [k[1]!]))).toThrow(expect.objectContaining({ code: 'VERIFIER_KEY_INVALID', message: expect.stringContaining('pinned key') }));
    // Not a key set at all.
    expect(() => verifyProofBundle(after, first, undefined, '{"origin":"x"}')).toThrow(code('VERIFIER_KEY_INVALID'));
    // The announcement moved after the bundle's size: its checkpoint would be the first key's, which did not sign it.
    expect(() => verifyProofBundle(after, first, undefined, set((k) => [k[0]!, { ...k[1]!, announcedAt: after.size + 5 }]))).toThrow(code('PROOF_INVALID'));
  });

  it('runs from the command line: --verifier-keys <file>, --hub <url>; without either, exit 1; prove --hub checks with the served set', async () => {
    const run = promisify(execFile);
    const main = join(import.meta.dirname, '../src/main.ts');
    const node = [process.execPath, '--conditions=source', '--import', 'tsx', main] as const;
    const cli = (...args: string[]) => run(node[0], [...node.slice(1), ...args]);
    const byFile = await cli('verify-proof', '--verifier-key', first, '--verifier-keys', join(dir, 'keys.json'), join(dir, 'after.json'));
    expect(byFile.stdout).toContain(`by key ${rotation.keyId}`);
    expect(byFile.stdout).toContain(`key chain: ${rotation.previousKeyId} -> ${rotation.keyId}`);
    const byHub = await cli('verify-proof', '--verifier-key', first, '--hub', url, '--json', join(dir, 'after.json'));
    expect(JSON.parse(byHub.stdout)).toMatchObject({ ok: true, keyId: rotation.keyId, keys: [rotation.previousKeyId, rotation.keyId] });
    await expect(cli('verify-proof', '--verifier-key', first, join(dir, 'after.json'))).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('PROOF_INVALID') });
    writeFileSync(join(dir, 'bad-keys.json'), JSON.stringify({ ...served, keys: [served.keys[0], { ...served.keys[1], announcedBy: '00000000' }] }));
    await expect(cli('verify-proof', '--verifier-key', first, '--verifier-keys', join(dir, 'bad-keys.json'), join(dir, 'after.json'))).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('VERIFIER_KEY_INVALID') });
    const out = join(dir, 'proved.json');
    const proved = await cli('prove', '--hub', url, '--token-file', join(hub.config.keysDir, 'auditor.token.json'), '--serial', after.serial, '--out', out, '--verifier-key', first);
    expect(proved.stdout).toContain(`wrote ${out}`);
  }, 120_000);
});
