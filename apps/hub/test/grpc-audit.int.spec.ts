import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { asHash, leafHash, parseVerifierKey, toHex, verifyCheckpoint, verifyConsistency, verifyInclusion } from '#audit-log';
import { CHECKPOINT_STREAM } from '#ledger';
import { TreeFollower } from '../src/audit/tree-follower.service.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcTestHub } from './support/grpc-client.js';

interface Checkpoint {
  origin: string;
  size: string;
  root: Buffer;
  timeMs: string;
  position: string;
  note: string;
}
interface InclusionProofs {
  size: string;
  root: Buffer;
  proofs: { position: string; serial: string; envelope: string; leafHash: Buffer; proof: Buffer[] }[];
}

let g: GrpcTestHub | undefined;
afterEach(async () => {
  await g?.dispose();
  g = undefined;
});

let seq = 0;
async function designate(h: GrpcTestHub, n: number): Promise<string[]> {
  const serials: string[] = [];
  for (let i = 0; i < n; i++) {
    const { response } = await h.numbering.call<{ serial: string }>('DesignateCorporateNumber', { name: `株式会社監査${++seq}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' });
    serials.push(response.serial);
  }
  return serials;
}

async function until<T>(f: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const hash = (b: Buffer) => asHash(new Uint8Array(b));

/** A hub with at least two signed checkpoints, the tree caught up with the log. */
async function hubWithCheckpoints(): Promise<{ h: GrpcTestHub; serials: string[]; sizes: number[] }> {
  g = await startGrpcTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '3', HUB_CHECKPOINT_EVERY_MS: '3600000' } });
  const h = g;
  const serials = await designate(h, 4);
  const sizes = await until(async () => {
    const list = (await h.hub.store.readStream(CHECKPOINT_STREAM)).map((e) => (e.data as { size: number }).size);
    if (list.length >= 2) return list;
    serials.push(...(await designate(h, 1)));
    return undefined;
  }, 'two checkpoints');
  const follower = h.hub.app.get(TreeFollower);
  await follower.catchUp();
  // The projection serves a checkpoint once it has followed the log past the event that recorded it.
  await until(async () => follower.projection.checkpoint(sizes.at(-1)!), 'the last checkpoint in the projection');
  return { h, serials, sizes };
}

describe('Audit over gRPC', () => {
  it('serves the signed checkpoint and verifier key; the note verifies and matches its fields and the HTTP answer', async () => {
    const { h, sizes } = await hubWithCheckpoints();
    const { response: key } = await h.audit.call<{ origin: string; verifierKey: string }>('GetVerifierKey', {});
    expect(key.verifierKey).toBe((await h.hub.get('/v1/audit/verifier-key')).body.trim());
    // The two edges read the same projection; a checkpoint signed between the two reads is waited out.
    const { cp, http } = await until(async () => {
      const { response: cp } = await h.audit.call<Checkpoint>('GetCheckpoint', {});
      const http = (await h.hub.get('/v1/audit/checkpoint?format=json')).json<{ size: number; rootHex: string; timeMs: number; position: number }>();
      return Number(cp.size) === http.size ? { cp, http } : undefined;
    }, 'the same latest checkpoint over gRPC and HTTP');
    const verified = verifyCheckpoint(cp.note, parseVerifierKey(key.verifierKey), key.origin);
    expect({ origin: cp.origin, size: Number(cp.size), root: toHex(hash(cp.root)) }).toEqual({ origin: key.origin, size: verified.size, root: toHex(verified.root) });
    expect({ size: Number(cp.size), rootHex: cp.root.toString('hex'), timeMs: Number(cp.timeMs), position: Number(cp.position) }).toEqual({
      size: http.size,
      rootHex: http.rootHex,
      timeMs: http.timeMs,
      position: http.position,
    });
    const { response: first } = await h.audit.call<Checkpoint>('GetCheckpointAt', { size: String(sizes[0]) });
    expect(Number(first.size)).toBe(sizes[0]);
    await expectGrpcProblem(h.audit.call('GetCheckpointAt', { size: '99999' }), status.NOT_FOUND, 'CHECKPOINT_NOT_FOUND');
  });

  it('serves inclusion proofs by serial and by position that verify against the signed root', async () => {
    const { h, serials } = await hubWithCheckpoints();
    const { response: cp } = await h.audit.call<Checkpoint>('GetCheckpoint', {});
    const size = Number(cp.size);
    const { response: bySerial } = await h.audit.call<InclusionProofs>('GetInclusionProof', { serial: serials[0] }, h.hub.auditor);
    expect(Number(bySerial.size)).toBe(size);
    expect(bySerial.root.equals(cp.root)).toBe(true);
    expect(bySerial.proofs.length).toBeGreaterThan(0);
    for (const p of bySerial.proofs) {
      expect(JSON.parse(p.envelope)).toMatchObject({ serial: serials[0], position: Number(p.position) });
      expect(toHex(hash(p.leafHash))).toBe(toHex(leafHash(p.envelope)));
      verifyInclusion(Number(p.position), size, leafHash(p.envelope), p.proof.map(hash), hash(cp.root));
    }
    const { response: byPosition } = await h.audit.call<InclusionProofs>('GetInclusionProof', { position: '1', size: String(size) }, h.hub.auditor);
    const p = byPosition.proofs[0]!;
    verifyInclusion(1, size, leafHash(p.envelope), p.proof.map(hash), hash(cp.root));
    // A proof is bound to its leaf: one changed byte of the envelope does not verify.
    const changed = `${p.envelope.slice(0, -2)} }`;
    expect(() => verifyInclusion(1, size, leafHash(changed), p.proof.map(hash), hash(cp.root))).toThrow();
  });

  it('serves consistency proofs between two checkpoints that verify', async () => {
    const { h, sizes } = await hubWithCheckpoints();
    const [from, to] = [sizes[0]!, sizes.at(-1)!];
    const { response: a } = await h.audit.call<Checkpoint>('GetCheckpointAt', { size: String(from) });
    const { response: b } = await h.audit.call<Checkpoint>('GetCheckpointAt', { size: String(to) });
    const { response: c } = await h.audit.call<{ from: string; to: string; fromRoot: Buffer; toRoot: Buffer; proof: Buffer[] }>('GetConsistencyProof', { from: String(from), to: String(to) });
    expect(c.fromRoot.equals(a.root) && c.toRoot.equals(b.root)).toBe(true);
    verifyConsistency(from, to, c.proof.map(hash), hash(a.root), hash(b.root));
  });

  it('refuses sizes out of range, sizes not reached, unknown serials and malformed arguments', async () => {
    const { h } = await hubWithCheckpoints();
    const size = Number((await h.audit.call<Checkpoint>('GetCheckpoint', {})).response.size);
    const beyond = await expectGrpcProblem(h.audit.call('GetInclusionProof', { position: String(size), size: String(size) }), status.INVALID_ARGUMENT, 'SIZE_OUT_OF_RANGE');
    expect(beyond.problem).toMatchObject({ position: size, size });
    const notReached = await expectGrpcProblem(h.audit.call('GetInclusionProof', { position: '0', size: '100000' }), status.OUT_OF_RANGE, 'TREE_SIZE_NOT_REACHED');
    expect(notReached.problem['treeSize']).toBeGreaterThanOrEqual(size);
    await expectGrpcProblem(h.audit.call('GetInclusionProof', { serial: '20990101010000000001' }), status.NOT_FOUND, 'SERIAL_UNKNOWN');
    await expectGrpcProblem(h.audit.call('GetInclusionProof', {}), status.INVALID_ARGUMENT, 'SIZE_OUT_OF_RANGE');
    const badSerial = await expectGrpcProblem(h.audit.call('GetInclusionProof', { serial: '123' }), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect(badSerial.problem['errors']).toEqual([{ field: 'serial', message: 'must be a 20-digit processing serial number' }]);
    await expectGrpcProblem(h.audit.call('GetConsistencyProof', { from: '5', to: '2' }), status.INVALID_ARGUMENT, 'SIZE_OUT_OF_RANGE');
    await expectGrpcProblem(h.audit.call('GetConsistencyProof', { from: '1', to: '100000' }), status.OUT_OF_RANGE, 'TREE_SIZE_NOT_REACHED');
    // Beyond what the hub handles as an integer (2^53): refused, never rounded.
    await expectGrpcProblem(h.audit.call('GetConsistencyProof', { from: '1', to: '9007199254740993' }), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
  });

  it('lists the raw entries as HTTP does, and validates the page size', async () => {
    const { h } = await hubWithCheckpoints();
    const { response } = await h.audit.call<{ from: string; head: string; entries: string[] }>('ListEntries', { from: '1', limit: 3 }, h.hub.auditor);
    const http = (await h.hub.get('/v1/audit/entries?from=1&limit=3', h.hub.auditor)).json<{ from: number; head: number; entries: string[] }>();
    expect({ from: Number(response.from), head: Number(response.head), entries: response.entries }).toEqual(http);
    expect(response.entries.map((t) => JSON.parse(t).position)).toEqual([1, 2, 3]);
    const all = await h.audit.call<{ from: string; entries: string[] }>('ListEntries', {}, h.hub.auditor);
    expect(all.response.from).toBe('0');
    expect(all.response.entries).toHaveLength(Number(response.head));
    const bad = await expectGrpcProblem(h.audit.call('ListEntries', { limit: 10_001 }, h.hub.auditor), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    expect(bad.problem['errors']).toEqual([{ field: 'limit', message: 'must be an integer from 1 to 10000' }]);
    // The auditor's token missing or unknown is UNAUTHENTICATED; another known principal is PERMISSION_DENIED.
    await expectGrpcProblem(h.audit.call('ListEntries', {}), status.UNAUTHENTICATED, 'UNAUTHENTICATED');
    await expectGrpcProblem(h.audit.call('ListEntries', {}, { authorization: 'Bearer not-the-auditor-token-0000000' }), status.UNAUTHENTICATED, 'UNAUTHENTICATED');
    await expectGrpcProblem(h.audit.call('ListEntries', {}, h.hub.operator), status.PERMISSION_DENIED, 'FORBIDDEN');
  });
});
