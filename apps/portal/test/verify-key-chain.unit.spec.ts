import { describe, expect, it } from 'vitest';
import { CheckpointKeyChain, MemoryTree, cosignNote, formatVerifierKey, generateSigningKey, keyId, leafHash, signCheckpoint, toHex } from '#audit-log';
import { KeyChain, KeyChainError } from '../web/src/verify/key-chain.js';
import { verifyRecord, type InclusionAnswer } from '../web/src/verify/verify-record.js';

// The browser's key chain (WebCrypto) against chains made by libs/audit-log's CheckpointKeyChain: the same
// served sets pass, the same forged ones fail, and a record whose checkpoint a rotated key signed verifies.

const ORIGIN = 'linkage-ledger.example/hub/01';
const ROOT = leafHash('root');

function key() {
  const k = generateSigningKey();
  return { seed: k.privateKey, verifierKey: formatVerifierKey({ name: ORIGIN, publicKey: k.publicKey }), id: toHex(keyId(ORIGIN, k.publicKey)) };
}
type Key = ReturnType<typeof key>;
const sign = (size: number, keys: readonly Key[], root = ROOT): string => {
  let note = signCheckpoint({ origin: ORIGIN, size, root, timeMs: 1_764_579_600_000 + size }, { name: ORIGIN, privateKey: keys[0]!.seed });
  for (const k of keys.slice(1)) note = cosignNote(note, { name: ORIGIN, privateKey: k.seed });
  return note;
};

/** a → b (announced at 3, handed over at 4) → c (announced at 6, handed over at 8), as a hub serves it. */
function served() {
  const [a, b, c] = [key(), key(), key()];
  const hub = new CheckpointKeyChain(a.verifierKey);
  hub.announce({ verifierKey: b.verifierKey, previousKeyId: a.id }, 3);
  hub.verify(sign(4, [a, b]));
  hub.announce({ verifierKey: c.verifierKey, previousKeyId: b.id }, 6);
  hub.verify(sign(8, [b, c]));
  return { a, b, c, keys: hub.keys };
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof KeyChainError)) throw new Error(`expected a KeyChainError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

describe('the browser key chain, checked from the pinned key', () => {
  it('rebuilds the served chain and verifies each checkpoint with the key for its size, as libs/audit-log does', async () => {
    const { a, b, c, keys } = served();
    const chain = await KeyChain.fromServed(a.verifierKey, keys);
    expect(chain.ids).toEqual([a.id, b.id, c.id]);
    expect(chain.links.map((l) => [l.fromSize, l.handoverSize])).toEqual([
      [0, undefined],
      [4, 4],
      [7, 8],
    ]);
    expect((await chain.verify(sign(2, [a]))).link.id).toBe(a.id);
    expect((await chain.verify(sign(5, [b]))).link.id).toBe(b.id);
    expect((await chain.verify(sign(10, [c]))).checkpoint.size).toBe(10);
    // The old keys alone sign nothing after their hand-over; an unknown key nothing at all.
    expect(await failure(chain.verify(sign(11, [b])))).toEqual({ code: 'CHECKPOINT_KEY_UNANNOUNCED', message: expect.stringContaining(`signed by ${ORIGIN}+${b.id}, not by ${ORIGIN}+${c.id}`) });
    expect(await failure(chain.verify(sign(11, [key()])))).toMatchObject({ code: 'CHECKPOINT_KEY_UNANNOUNCED', message: expect.stringContaining('signed by no key of the chain') });
  });

  it('refuses a served set that does not chain from the pinned key, naming why', async () => {
    const { a, b, c, keys } = served();
    const x = key();
    // Another first key (a hub serving a chain of its own).
    expect(await failure(KeyChain.fromServed(x.verifierKey, keys))).toMatchObject({ code: 'KEY_CHAIN_INVALID', message: expect.stringContaining(`does not start at the pinned key ${x.verifierKey}`) });
    // A key that names another key as the one before it.
    const misnamed = keys.map((k, i) => (i === 2 ? { ...k, announcedBy: a.id } : k));
    expect(await failure(KeyChain.fromServed(a.verifierKey, misnamed))).toMatchObject({ code: 'KEY_CHAIN_INVALID', message: expect.stringContaining(`names ${a.id} as the previous key; the chain's newest key is ${b.id}`) });
    // A key slipped in with no announcement.
    const slipped = [...keys, { verifierKey: x.verifierKey, keyId: x.id, fromSize: 9 }];
    expect(await failure(KeyChain.fromServed(a.verifierKey, slipped))).toMatchObject({ code: 'KEY_CHAIN_INVALID', message: expect.stringContaining(`key ${x.id} carries no announcement`) });
    // A hand-over the previous key did not sign (the new key's signature alone).
    const unsigned = keys.map((k, i) => (i === 2 ? { ...k, handoverNote: sign(8, [c]) } : k));
    expect(await failure(KeyChain.fromServed(a.verifierKey, unsigned))).toMatchObject({ code: 'CHECKPOINT_HANDOVER_UNSIGNED', message: expect.stringContaining(`not signed by the key that announced it, ${b.id}`) });
    // A key replaced by another one under the same announcement: its hand-over note is not signed by it.
    const swapped = keys.map((k, i) => (i === 2 ? { ...k, verifierKey: x.verifierKey, keyId: x.id } : k));
    expect(await failure(KeyChain.fromServed(a.verifierKey, swapped))).toMatchObject({ code: 'CHECKPOINT_KEY_UNANNOUNCED' });
    // Not a key where one belongs.
    expect(await failure(KeyChain.fromServed(a.verifierKey, [keys[0]!, null as never]))).toMatchObject({ code: 'KEY_CHAIN_INVALID', message: expect.stringContaining('holds null where a key belongs') });
    // The library refuses the same sets.
    for (const [pinned, set] of [[x.verifierKey, keys], [a.verifierKey, misnamed], [a.verifierKey, slipped], [a.verifierKey, unsigned], [a.verifierKey, swapped]] as const) {
      expect(() => CheckpointKeyChain.fromServed(pinned, set)).toThrow();
    }
  });

  it('verifies a record whose checkpoint a rotated key signed, with the served set; without it the check fails', async () => {
    const [a, b] = [key(), key()];
    const envelope = JSON.stringify({ serial: '20261201010000000007', position: 1, type: 'QueryAccepted', data: {} });
    const texts = ['x', envelope, 'y', 'z', 'w', 'v'];
    const tree = new MemoryTree(texts.map((t) => leafHash(t)));
    const hub = new CheckpointKeyChain(a.verifierKey);
    hub.announce({ verifierKey: b.verifierKey, previousKeyId: a.id }, 2);
    const handover = new MemoryTree(texts.slice(0, 4).map((t) => leafHash(t)));
    hub.verify(sign(4, [a, b], handover.root()));
    const note = sign(6, [b], tree.root());
    const inclusion: InclusionAnswer = { size: 6, rootHex: toHex(tree.root()), proofs: [{ position: 1, serial: '20261201010000000007', envelope, leafHex: toHex(tree.leafHash(1)), proof: tree.inclusionProof(1).map(toHex) }] };
    const input = { serial: '20261201010000000007', inclusion, checkpoint: note, verifierKey: a.verifierKey };
    expect(await verifyRecord({ ...input, keys: hub.keys })).toMatchObject({ ok: true, size: 6, keyIdHex: b.id, keyChain: [a.id, b.id] });
    expect(await verifyRecord(input)).toMatchObject({ ok: false, code: 'CHECKPOINT_NOT_SIGNED' });
    const tampered = hub.keys.map((k, i) => (i === 1 ? { ...k, handoverNote: sign(4, [b], handover.root()) } : k));
    expect(await verifyRecord({ ...input, keys: tampered })).toMatchObject({ ok: false, code: 'KEY_CHAIN_INVALID', message: expect.stringContaining('a hand-over in the served key set') });
    // A log that never rotated: its one-key set verifies as before.
    const single = new CheckpointKeyChain(a.verifierKey).keys;
    const old = { ...input, checkpoint: sign(6, [a], tree.root()) };
    expect(await verifyRecord({ ...old, keys: single })).toMatchObject({ ok: true, keyIdHex: a.id, keyChain: [a.id] });
  });
});
