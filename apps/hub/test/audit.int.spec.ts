import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashFromHex, leafHash, parseVerifierKey, toHex, verifyCheckpoint, verifyConsistency, verifyInclusion } from '#audit-log';
import { CHECKPOINT_SIGNED, CHECKPOINT_STREAM } from '#ledger';
import { verifyProofBundle, proveSerial } from '../../auditor/src/prove/proof-bundle.js';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { CHECKPOINT_KEY_FILE } from '../src/audit/audit-keys.js';
import { CheckpointSigner } from '../src/audit/checkpoint-signer.service.js';
import { TreeFollower } from '../src/audit/tree-follower.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

const DESIGNATE = '/v1/corporate-numbers';
let seq = 0;
const company = () => ({ name: `株式会社監査${++seq}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' });

let hub: TestHub | undefined;
afterEach(async () => {
  await hub?.dispose();
  hub = undefined;
});

async function until<T>(f: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function designate(h: TestHub, n: number): Promise<string[]> {
  const serials: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await h.post(DESIGNATE, company(), h.operator);
    expect(res.statusCode).toBe(201);
    serials.push(res.json<{ serial: string }>().serial);
  }
  return serials;
}

async function checkpointsInLog(h: TestHub) {
  return (await h.store.readStream(CHECKPOINT_STREAM)).map((e) => e.data as { size: number; timeMs: number; note: string; rootHex: string });
}

describe('signed checkpoints at the hub', () => {
  it('signs every N events, appends each to the log, and serves it with the verifier key', async () => {
    hub = await startTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '4', HUB_CHECKPOINT_EVERY_MS: '3600000' } });
    const h = hub;
    await designate(h, 5);
    const note = await until(async () => {
      const res = await h.get('/v1/audit/checkpoint');
      return res.statusCode === 200 ? res : undefined;
    }, 'the first checkpoint');
    expect(note.headers['content-type']).toMatch(/^text\/plain/);
    const keyText = (await h.get('/v1/audit/verifier-key')).body.trim();
    const key = parseVerifierKey(keyText);
    expect(key.name).toBe('linkage-ledger.example/hub/01');
    const cp = verifyCheckpoint(note.body, key, key.name);
    expect(cp.size).toBeGreaterThanOrEqual(4);
    const logged = await checkpointsInLog(h);
    expect(logged[0]).toMatchObject({ size: cp.size, note: note.body, rootHex: toHex(cp.root) });
    const json = (await h.get('/v1/audit/checkpoint?format=json')).json<Record<string, unknown>>();
    expect(json).toMatchObject({ origin: key.name, size: cp.size, rootHex: toHex(cp.root), timeMs: cp.timeMs, note: note.body });
    expect((await h.get(`/v1/audit/checkpoints/${cp.size}`)).body).toBe(note.body);
    // The signing key is a 0600 file under HUB_DATA_DIR/keys.
    expect(statSync(join(h.config.keysDir, CHECKPOINT_KEY_FILE)).mode & 0o777).toBe(0o600);
  });

  it('signs after T ms when fewer than N events arrived, and never when only its own event was added', async () => {
    hub = await startTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '1000000', HUB_CHECKPOINT_EVERY_MS: '100' } });
    const h = hub;
    await designate(h, 1);
    const first = await until(async () => (await checkpointsInLog(h))[0], 'a time-triggered checkpoint');
    expect(first.size).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    expect(await checkpointsInLog(h)).toHaveLength(1);
    await designate(h, 1);
    const all = await until(async () => {
      const list = await checkpointsInLog(h);
      return list.length === 2 ? list : undefined;
    }, 'a second checkpoint');
    expect(all[1]!.size).toBeGreaterThan(all[0]!.size);
    expect(all[1]!.timeMs).toBeGreaterThan(all[0]!.timeMs);
    const events = await h.store.readAll();
    const cpEvents = events.filter((e) => e.type === CHECKPOINT_SIGNED);
    expect(cpEvents.map((e) => e.terminal)).toEqual(['completed', 'completed']);
    expect(new Set(cpEvents.map((e) => e.serial)).size).toBe(2);
    for (const e of cpEvents) expect((e.data as { size: number }).size).toBeLessThanOrEqual(e.position);
  });

  it('keeps sizes and times increasing across a restart', async () => {
    hub = await startTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '2', HUB_CHECKPOINT_EVERY_MS: '3600000' } });
    const dataDir = hub.dataDir;
    await designate(hub, 3);
    const before = await until(async () => (await checkpointsInLog(hub!))[0], 'a checkpoint');
    await hub.close();
    hub = await startTestHub({ dataDir, env: { HUB_CHECKPOINT_EVERY_EVENTS: '2', HUB_CHECKPOINT_EVERY_MS: '3600000' } });
    expect(hub.app.get(CheckpointSigner).lastSigned).toMatchObject({ size: before.size });
    await designate(hub, 3);
    const h = hub;
    const after = await until(async () => {
      const list = await checkpointsInLog(h);
      return list.length >= 2 ? list : undefined;
    }, 'a checkpoint after restart');
    expect(after[1]!.size).toBeGreaterThan(after[0]!.size);
    expect(after[1]!.timeMs).toBeGreaterThan(after[0]!.timeMs);
  });
});

describe('audit proofs and entries', () => {
  async function hubWithCheckpoint(): Promise<{ h: TestHub; serials: string[]; size: number; root: Uint8Array; key: string }> {
    hub = await startTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '3', HUB_CHECKPOINT_EVERY_MS: '3600000' } });
    const h = hub;
    const serials = await designate(h, 4);
    const key = (await h.get('/v1/audit/verifier-key')).body.trim();
    // How many events one checkpoint covers depends on when the follower saw them: add until two exist.
    const cps = await until(async () => {
      const list = await checkpointsInLog(h);
      if (list.length >= 2) return list;
      serials.push(...(await designate(h, 1)));
      return undefined;
    }, 'two checkpoints');
    await h.app.get(TreeFollower).catchUp();
    const last = cps.at(-1)!;
    return { h, serials, size: last.size, root: hashFromHex(last.rootHex), key };
  }

  it('serves inclusion proofs by position and by serial that verify against the signed root', async () => {
    const { h, serials, size, root } = await hubWithCheckpoint();
    const byPosition = (await h.get(`/v1/audit/proofs/inclusion?position=1&size=${size}`, h.auditor)).json<{ size: number; rootHex: string; proofs: { position: number; envelope: string; leafHex: string; proof: string[] }[] }>();
    expect(byPosition.rootHex).toBe(toHex(root));
    const p = byPosition.proofs[0]!;
    expect(p.leafHex).toBe(toHex(leafHash(p.envelope)));
    verifyInclusion(1, size, leafHash(p.envelope), p.proof.map((x) => hashFromHex(x)), root);
    const bySerial = (await h.get(`/v1/audit/proofs/inclusion?serial=${serials[0]}&size=${size}`, h.auditor)).json<typeof byPosition>();
    expect(bySerial.proofs.length).toBeGreaterThan(0);
    for (const q of bySerial.proofs) {
      expect(JSON.parse(q.envelope)).toMatchObject({ serial: serials[0], position: q.position });
      verifyInclusion(q.position, size, leafHash(q.envelope), q.proof.map((x) => hashFromHex(x)), root);
    }
  });

  it('serves consistency proofs between checkpoints', async () => {
    const { h, size, root } = await hubWithCheckpoint();
    const first = (await checkpointsInLog(h))[0]!;
    const c = (await h.get(`/v1/audit/proofs/consistency?from=${first.size}&to=${size}`)).json<{ fromRootHex: string; toRootHex: string; proof: string[] }>();
    expect(c.fromRootHex).toBe(first.rootHex);
    verifyConsistency(first.size, size, c.proof.map((x) => hashFromHex(x)), hashFromHex(first.rootHex), root);
  });

  it('answers sizes out of range, sizes not reached and unknown serials with problem+json', async () => {
    const { h, size } = await hubWithCheckpoint();
    expectProblem(await h.get(`/v1/audit/proofs/inclusion?position=${size}&size=${size}`), 400, 'SIZE_OUT_OF_RANGE');
    expectProblem(await h.get('/v1/audit/proofs/inclusion?position=0&size=100000'), 404, 'TREE_SIZE_NOT_REACHED');
    expectProblem(await h.get(`/v1/audit/proofs/inclusion?serial=20990101010000000001&size=${size}`), 404, 'SERIAL_UNKNOWN');
    expectProblem(await h.get('/v1/audit/proofs/consistency?from=5&to=2'), 400, 'SIZE_OUT_OF_RANGE');
    expectProblem(await h.get('/v1/audit/proofs/consistency?from=1&to=100000'), 404, 'TREE_SIZE_NOT_REACHED');
    expectProblem(await h.get('/v1/audit/checkpoints/99999'), 404, 'CHECKPOINT_NOT_FOUND');
    expectProblem(await h.get('/v1/audit/proofs/inclusion?serial=123'), 400, 'VALIDATION_FAILED');
    expectProblem(await h.get('/v1/audit/entries?limit=0', h.auditor), 400, 'VALIDATION_FAILED');
  });

  it('lists the raw entries, which the auditor verifies and proves over HTTP', async () => {
    const { h, serials, key } = await hubWithCheckpoint();
    const page = (await h.get('/v1/audit/entries?from=0&limit=3', h.auditor)).json<{ head: number; entries: string[] }>();
    // The follower may still sign (and append) one more checkpoint meanwhile: the head only grows.
    // page.head counts the rows committed in the file (the tree's logHead()); the store's head() moves
    // only when the main thread handles the writer thread's reply to that commit, so it may trail a moment.
    expect(page.head).toBeGreaterThan(2);
    expect(page.head).toBeLessThanOrEqual(h.app.get(TreeFollower).projection.logHead());
    await until(async () => ((await h.head()) >= page.head ? true : undefined), "the store's head to count the rows committed");
    expect(page.entries.map((t) => JSON.parse(t).position)).toEqual([0, 1, 2]);
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const url = await h.app.getUrl();
    const report = await verifyLog({ source: { kind: 'hub', url, token: h.auditor['authorization']!.slice(7) }, verifierKey: key, threads: 1 });
    expect(report.ok).toBe(true);
    expect(report.events).toBeGreaterThanOrEqual(page.head);
    expect(report.checkpoints.verified).toBeGreaterThanOrEqual(2);
    const bundle = await proveSerial({ kind: 'hub', url, token: h.auditor['authorization']!.slice(7) }, serials[1]!);
    const checked = verifyProofBundle(JSON.parse(JSON.stringify(bundle)), key);
    expect(checked.serial).toBe(serials[1]);
    expect(checked.events.length).toBeGreaterThan(0);
  });
});
