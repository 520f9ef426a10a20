import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChainKey, CheckpointKeyChain } from '#audit-log';
import { CheckpointSigner } from '../src/audit/checkpoint-signer.service.js';
import { TreeFollower } from '../src/audit/tree-follower.service.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcTestHub } from './support/grpc-client.js';

// linkage_ledger.v1.Audit.GetVerifierKeys: the checkpoint key set over gRPC, as GET /v1/audit/verifier-keys
// serves it, before and after a rotation; a verifier rebuilds the chain from GetVerifierKey's first key
// and verifies the latest checkpoint with it. A read like the others: under its caller's rate limit.

/** What the client decodes (proto-loader: uint64 as decimal strings, optional fields absent when unset). */
interface GrpcChainKey {
  verifierKey: string;
  keyId: string;
  fromSize: string;
  announcedAt?: string;
  announcedBy?: string;
  handoverSize?: string;
  handoverNote?: string;
}

let g: GrpcTestHub | undefined;
afterEach(async () => {
  await g?.dispose();
  g = undefined;
});

let seq = 0;
async function designate(h: GrpcTestHub, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await h.numbering.call('DesignateCorporateNumber', { name: `株式会社鍵集合${++seq}`, location: '北海道室蘭市幸町1番2号', kind: 'stock-company' });
}

/** The gRPC form in the HTTP form: numbers as numbers, the optional fields only when set. */
function asServed(k: GrpcChainKey): ChainKey {
  return {
    verifierKey: k.verifierKey,
    keyId: k.keyId,
    fromSize: Number(k.fromSize),
    ...(k.announcedAt === undefined ? {} : { announcedAt: Number(k.announcedAt), announcedBy: k.announcedBy! }),
    ...(k.handoverSize === undefined ? {} : { handoverSize: Number(k.handoverSize), handoverNote: k.handoverNote! }),
  };
}

describe('Audit.GetVerifierKeys over gRPC', () => {
  it('serves the key set as HTTP does, before and after a rotation; the chain from the first key verifies the latest checkpoint', async () => {
    g = await startGrpcTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '3', HUB_CHECKPOINT_EVERY_MS: '3600000' } });
    const h = g;
    await designate(h, 3);
    const { response: first } = await h.audit.call<{ origin: string; verifierKey: string }>('GetVerifierKey', {});
    const { response: one } = await h.audit.call<{ origin: string; keys: GrpcChainKey[] }>('GetVerifierKeys', {});
    expect(one.origin).toBe(first.origin);
    expect(one.keys.map(asServed)).toEqual([{ verifierKey: first.verifierKey, keyId: first.verifierKey.split('+')[1], fromSize: 0 }]);

    const rotated = await h.hub.post('/v1/audit/checkpoint-key-rotations', {}, h.hub.operator);
    expect(rotated.statusCode, rotated.body).toBe(201);
    const rotation = rotated.json<{ keyId: string; verifierKey: string; position: number; handoverSize: number }>();
    await designate(h, 4);
    const follower = h.hub.app.get(TreeFollower);
    await follower.catchUp();
    const signer = h.hub.app.get(CheckpointSigner);
    const signed = (await signer.signIfDue(true)) ?? signer.lastSigned;
    expect(signed?.size).toBeGreaterThan(rotation.handoverSize);
    // Served as the latest once the tree has followed the log past the event that recorded it.
    for (const deadline = Date.now() + 15_000; (await h.hub.get('/v1/audit/checkpoint?format=json')).json<{ size?: number }>().size !== signed!.size; ) {
      if (Date.now() > deadline) throw new Error(`the checkpoint of size ${signed!.size} is not served as the latest`);
      await follower.catchUp();
      await new Promise((r) => setTimeout(r, 50));
    }

    const { response: two } = await h.audit.call<{ origin: string; keys: GrpcChainKey[] }>('GetVerifierKeys', {});
    const keys = two.keys.map(asServed);
    const http = (await h.hub.get('/v1/audit/verifier-keys')).json<{ origin: string; keys: ChainKey[] }>();
    expect({ origin: two.origin, keys }).toEqual(http);
    expect(keys.map((k) => [k.keyId, k.fromSize, k.announcedAt ?? null, k.announcedBy ?? null, k.handoverSize ?? null])).toEqual([
      [first.verifierKey.split('+')[1], 0, null, null, null],
      [rotation.keyId, rotation.position + 1, rotation.position, first.verifierKey.split('+')[1], rotation.handoverSize],
    ]);
    expect(keys[1]!.handoverNote!.match(/^\u2014 /gm)).toHaveLength(2);
    // The pinned key stays the first; the latest checkpoint verifies with the chain from it, not with it alone.
    expect((await h.audit.call<{ verifierKey: string }>('GetVerifierKey', {})).response.verifierKey).toBe(first.verifierKey);
    const { response: cp } = await h.audit.call<{ size: string; note: string }>('GetCheckpoint', {});
    expect(Number(cp.size)).toBeGreaterThan(rotation.handoverSize);
    const chain = CheckpointKeyChain.fromServed(first.verifierKey, keys, two.origin);
    expect(chain.verify(cp.note).size).toBe(Number(cp.size));
    expect(chain.keyFor(Number(cp.size)).keyId).toBe(rotation.keyId);
    expect(() => new CheckpointKeyChain(first.verifierKey).verify(cp.note)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_KEY_UNANNOUNCED' }));
  });

  it('spends its caller\'s rate budget like the other audit reads', async () => {
    g = await startGrpcTestHub({ env: { HUB_REDIS_URL: 'off', HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000', HUB_RATE_LIMIT_SOURCE_PER_S: '0.01', HUB_RATE_LIMIT_SOURCE_BURST: '2' } });
    await g.audit.call('GetVerifierKeys', {});
    await g.audit.call('GetVerifierKeys', {});
    const { problem } = await expectGrpcProblem(g.audit.call('GetVerifierKeys', {}), status.RESOURCE_EXHAUSTED, 'RATE_LIMITED');
    expect(problem).toMatchObject({ status: 429, principalKind: 'source' });
  });
});
