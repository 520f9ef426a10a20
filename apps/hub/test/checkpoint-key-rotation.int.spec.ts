import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChainKey, CheckpointKeyChain, generateSigningKey, signCheckpoint, verifyConsistency, hashFromHex } from '#audit-log';
import { CHECKPOINT_STREAM, checkpointAppendRequest } from '#ledger';
import { checkConsistency } from '../../auditor/src/consistency/check-consistency.js';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { CHECKPOINT_KEY_STREAM, CheckpointSigner } from '../src/audit/checkpoint-signer.service.js';
import { SelfCheckService } from '../src/audit/self-check.service.js';
import { TreeFollower } from '../src/audit/tree-follower.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

const ENV = { HUB_CHECKPOINT_EVERY_EVENTS: '3', HUB_CHECKPOINT_EVERY_MS: '3600000' };
const ROTATE = '/v1/audit/checkpoint-key-rotations';
let seq = 0;
const company = () => ({ name: `株式会社鍵${++seq}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' });

let hub: TestHub | undefined;
afterEach(async () => {
  await hub?.dispose();
  hub = undefined;
});

async function designate(h: TestHub, n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await h.post('/v1/corporate-numbers', company(), h.operator)).statusCode).toBe(201);
}

async function checkpointNotes(h: TestHub): Promise<{ size: number; note: string; position: number }[]> {
  return (await h.store.readStream(CHECKPOINT_STREAM)).map((e) => ({ ...(e.data as { size: number; note: string }), position: e.position }));
}

async function servedKeys(h: TestHub): Promise<{ origin: string; keys: ChainKey[] }> {
  const res = await h.get('/v1/audit/verifier-keys');
  expect(res.statusCode).toBe(200);
  return res.json();
}

describe('rotation of the checkpoint signing key', () => {
  it('rotates under load: announced in the log, handed over by a checkpoint both keys sign; every checkpoint verifies with the served chain, and the auditor passes across it', async () => {
    hub = await startTestHub({ env: ENV });
    const h = hub;
    await designate(h, 4);
    const first = (await h.get('/v1/audit/verifier-key')).body.trim();
    // Appends continue while the key rotates.
    const load = (async () => {
      for (let i = 0; i < 12; i++) await designate(h, 1);
    })();
    await new Promise((r) => setTimeout(r, 30));
    const res = await h.post(ROTATE, {}, h.operator);
    expect(res.statusCode, res.body).toBe(201);
    const rotation = res.json<{ keyId: string; verifierKey: string; previousKeyId: string; position: number; handoverSize: number }>();
    expect(rotation.previousKeyId).toBe(first.split('+')[1]);
    expect(rotation.handoverSize).toBeGreaterThan(rotation.position);
    await load;
    await designate(h, 4);
    await h.app.get(TreeFollower).catchUp();
    await h.app.get(CheckpointSigner).signIfDue(true);

    // The announcement: a public event on its own stream.
    const announced = await h.store.readStream(CHECKPOINT_KEY_STREAM);
    expect(announced.map((e) => [e.type, e.position, (e.data as { keyId: string }).keyId])).toEqual([['CheckpointKeyRotated', rotation.position, rotation.keyId]]);
    // The served key set: the first key, then the new one from the size after its announcement.
    const served = await servedKeys(h);
    expect(served.keys.map((k) => [k.keyId, k.fromSize, k.announcedBy ?? null])).toEqual([
      [rotation.previousKeyId, 0, null],
      [rotation.keyId, rotation.position + 1, rotation.previousKeyId],
    ]);
    expect(served.keys[1]!.handoverSize).toBe(rotation.handoverSize);
    // The pinned root stays the first key; the newest is the last of the set.
    expect((await h.get('/v1/audit/verifier-key')).body.trim()).toBe(first);
    expect(served.keys.at(-1)!.verifierKey).toBe(rotation.verifierKey);

    // Every checkpoint before and after verifies with the chain rebuilt from the pinned first key.
    const chain = CheckpointKeyChain.fromServed(first, served.keys);
    const notes = await checkpointNotes(h);
    expect(notes.some((n) => n.size <= rotation.position)).toBe(true);
    expect(notes.filter((n) => n.size > rotation.handoverSize).length).toBeGreaterThan(0);
    for (const n of notes) expect(chain.verify(n.note).size).toBe(n.size);
    const handover = notes.find((n) => n.size === rotation.handoverSize)!;
    expect(handover.note.match(/^\u2014 /gm)).toHaveLength(2);
    // After the hand-over the old key alone signs nothing.
    expect(notes.filter((n) => n.size > rotation.handoverSize).every((n) => n.note.match(/^\u2014 /gm)!.length === 1)).toBe(true);
    expect(() => new CheckpointKeyChain(first).verify(notes.at(-1)!.note)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_KEY_UNANNOUNCED' }));

    // Consistency across the rotation, between the checkpoints before and after.
    const before = notes.find((n) => n.size <= rotation.position)!;
    const after = notes.at(-1)!;
    const older = chain.verify(before.note);
    const newer = chain.verify(after.note);
    const proof = (await h.get(`/v1/audit/proofs/consistency?from=${older.size}&to=${newer.size}`)).json<{ proof: string[] }>().proof.map((x) => hashFromHex(x));
    verifyConsistency(older.size, newer.size, proof, older.root, newer.root);

    // The auditor, given only the first key, verifies the whole log across the rotation.
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const url = await h.app.getUrl();
    const report = await verifyLog({ source: { kind: 'hub', url, token: h.auditor['authorization']!.slice(7) }, verifierKey: first, threads: 1 });
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checkpoints.verified).toBe(notes.length);
    expect(report.keys?.map((k) => k.keyId)).toEqual([rotation.previousKeyId, rotation.keyId]);

    // The auditor's consistency command across the rotation, with the served key set; without it the newer note is refused.
    const dir = mkdtempSync(join(tmpdir(), 'rotation-'));
    writeFileSync(join(dir, 'older.note'), before.note);
    writeFileSync(join(dir, 'newer.note'), after.note);
    const base = { olderFile: join(dir, 'older.note'), newerFile: join(dir, 'newer.note'), verifierKey: first, proof: { hub: url } };
    expect(await checkConsistency({ ...base, verifierKeys: JSON.stringify(served) })).toMatchObject({ ok: true });
    expect(await checkConsistency(base)).toMatchObject({ ok: false, failure: { code: 'CHECKPOINT_SIGNATURE_INVALID' } });

    // Keys persist in the keys dir, 0600.
    const files = readdirSync(h.config.keysDir).filter((f) => f.startsWith('checkpoint-signing.'));
    expect(files.sort()).toEqual([`checkpoint-signing.${rotation.keyId}.key.json`, 'checkpoint-signing.key.json']);
    for (const f of files) expect(statSync(join(h.config.keysDir, f)).mode & 0o777).toBe(0o600);
  });

  it('the auditor finds a checkpoint signed by a key the log never announced', async () => {
    hub = await startTestHub({ env: ENV });
    const h = hub;
    await designate(h, 4);
    const first = (await h.get('/v1/audit/verifier-key')).body.trim();
    expect((await h.post(ROTATE, {}, h.operator)).statusCode).toBe(201);
    await designate(h, 3);
    const follower = h.app.get(TreeFollower);
    await follower.catchUp();
    const size = follower.projection.size;
    const origin = h.app.get(CheckpointSigner).origin;
    const note = signCheckpoint({ origin, size, root: follower.projection.root(size), timeMs: Date.now() + 60_000 }, { name: origin, privateKey: generateSigningKey().privateKey });
    const at = await h.store.append(checkpointAppendRequest({ origin, size, rootHex: Buffer.from(follower.projection.root(size)).toString('hex'), timeMs: Date.now() + 60_000, note }, { actor: 'system:checkpoint-signer', correlationId: 'forged' }));
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const report = await verifyLog({ source: { kind: 'hub', url: await h.app.getUrl(), token: h.auditor['authorization']!.slice(7) }, verifierKey: first, threads: 1 });
    expect(report.ok).toBe(false);
    expect(report.findings.map((f) => [f.code, f.position])).toContainEqual(['CHECKPOINT_KEY_UNANNOUNCED', at.firstPosition]);
    const served = await servedKeys(h);
    expect(() => CheckpointKeyChain.fromServed(first, served.keys).verify(note)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_KEY_UNANNOUNCED' }));
  });

  it('keeps signing with the rotated key after a restart, its start self-check passing over both keys\' notes', async () => {
    hub = await startTestHub({ env: ENV });
    const dataDir = hub.dataDir;
    await designate(hub, 4);
    const first = (await hub.get('/v1/audit/verifier-key')).body.trim();
    const rotation = (await hub.post(ROTATE, {}, hub.operator)).json<{ keyId: string; verifierKey: string; handoverSize: number }>();
    // A checkpoint by the new key alone before the restart (signed by the count, or here if not yet).
    await designate(hub, 4);
    await hub.app.get(TreeFollower).catchUp();
    await hub.app.get(CheckpointSigner).signIfDue(true);
    expect((await checkpointNotes(hub)).some((n) => n.size > rotation.handoverSize)).toBe(true);
    await hub.close();
    // The start self-check runs (the default): it judges the notes of both keys sound, so the signer may sign.
    hub = await startTestHub({ dataDir, env: { ...ENV, HUB_SELF_CHECK: 'on' } });
    const h = hub;
    const selfCheck = h.app.get(SelfCheckService);
    for (let i = 0; i < 200 && !selfCheck.allowsSigning && selfCheck.view().status !== 'failed'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(selfCheck.view().status).not.toBe('failed');
    expect(selfCheck.allowsSigning).toBe(true);
    expect(h.app.get(CheckpointSigner).verifierKey).toBe(rotation.verifierKey);
    const count = (await checkpointNotes(h)).length;
    await designate(h, 4);
    await h.app.get(TreeFollower).catchUp();
    await h.app.get(CheckpointSigner).signIfDue(true);
    const notes = await checkpointNotes(h);
    expect(notes.length).toBeGreaterThan(count);
    const chain = CheckpointKeyChain.fromServed(first, (await servedKeys(h)).keys);
    const last = notes.at(-1)!;
    expect(chain.verify(last.note).size).toBe(last.size);
    expect(chain.keyFor(last.size).keyId).toBe(rotation.keyId);
  });

  it('refuses a caller without the operator credential, and records the refusal (I6)', async () => {
    hub = await startTestHub({ env: ENV });
    const h = hub;
    await designate(h, 1);
    const head = await h.head();
    expectProblem(await h.post(ROTATE, {}, h.auditor), 403, 'FORBIDDEN');
    expectProblem(await h.post(ROTATE, {}, { authorization: 'Bearer nobody-holds-this-token-0123456789' }), 401, 'UNAUTHENTICATED');
    const events = await h.store.readAll({ fromPosition: head });
    expect(events.filter((e) => e.type === 'RequestRefused').map((e) => (e.data as { command?: string }).command)).toContain('RotateCheckpointKey');
    expect(events.filter((e) => e.type === 'CheckpointKeyRotated')).toEqual([]);
    expect((await servedKeys(h)).keys).toHaveLength(1);
  });
});
