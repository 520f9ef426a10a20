import { describe, expect, it } from 'vitest';
import { CheckpointKeyChain, cosignNote, formatVerifierKey, generateSigningKey, leafHash, noteParts, signCheckpoint, toHex, keyId } from '../src/index.js';

const ORIGIN = 'linkage-ledger.example/hub/01';
const ROOT = leafHash('root');
const code = (c: string) => expect.objectContaining({ code: c });

function key() {
  const k = generateSigningKey();
  return { seed: k.privateKey, verifierKey: formatVerifierKey({ name: ORIGIN, publicKey: k.publicKey }), id: toHex(keyId(ORIGIN, k.publicKey)) };
}
type Key = ReturnType<typeof key>;
const sign = (size: number, ...keys: Key[]): string => {
  let note = signCheckpoint({ origin: ORIGIN, size, root: ROOT, timeMs: size }, { name: ORIGIN, privateKey: keys[0]!.seed });
  for (const k of keys.slice(1)) note = cosignNote(note, { name: ORIGIN, privateKey: k.seed });
  return note;
};

describe('CheckpointKeyChain', () => {
  it('passes trust from the first key to an announced key through a checkpoint both sign', () => {
    const [a, b] = [key(), key()];
    const chain = new CheckpointKeyChain(a.verifierKey);
    expect(chain.verify(sign(5, a)).size).toBe(5);
    expect(chain.announce({ verifierKey: b.verifierKey, previousKeyId: a.id }, 7)).toBeUndefined();
    // Before the announcement, the first key signs; the hand-over (first size above 7) carries both.
    expect(chain.verify(sign(7, a)).size).toBe(7);
    const handover = sign(9, a, b);
    expect(noteParts(handover).signers.map((s) => s.keyIdHex)).toEqual([a.id, b.id]);
    expect(chain.verify(handover).size).toBe(9);
    expect(chain.verify(sign(12, b)).size).toBe(12);
    expect(chain.keys.map((k) => [k.keyId, k.fromSize, k.announcedBy, k.handoverSize])).toEqual([
      [a.id, 0, undefined, undefined],
      [b.id, 8, a.id, 9],
    ]);
    // Old checkpoints still verify; the old key alone no longer signs later sizes.
    expect(chain.verify(sign(5, a)).size).toBe(5);
    expect(() => chain.verify(sign(13, a))).toThrow(code('CHECKPOINT_KEY_UNANNOUNCED'));
  });

  it('refuses a checkpoint signed by a key the log never announced', () => {
    const [a, x] = [key(), key()];
    const chain = new CheckpointKeyChain(a.verifierKey);
    expect(() => chain.verify(sign(3, x))).toThrow(code('CHECKPOINT_KEY_UNANNOUNCED'));
    expect(() => chain.verify(sign(3, x))).toThrow(/no key announced in the log/);
  });

  it('refuses a hand-over the previous key did not sign', () => {
    const [a, b] = [key(), key()];
    const chain = new CheckpointKeyChain(a.verifierKey);
    chain.announce({ verifierKey: b.verifierKey, previousKeyId: a.id }, 2);
    expect(() => chain.verify(sign(4, b))).toThrow(code('CHECKPOINT_HANDOVER_UNSIGNED'));
  });

  it('refuses announcements that do not extend the chain', () => {
    const [a, b, c] = [key(), key(), key()];
    const chain = new CheckpointKeyChain(a.verifierKey);
    expect(chain.announce({ verifierKey: c.verifierKey, previousKeyId: b.id }, 1)).toMatch(/previous key/);
    expect(chain.announce({ verifierKey: 'nonsense', previousKeyId: a.id }, 1)).toMatch(/not valid/);
    expect(chain.announce({ verifierKey: a.verifierKey, previousKeyId: a.id }, 1)).toMatch(/already in the chain/);
    expect(chain.announce({ verifierKey: b.verifierKey, previousKeyId: a.id }, 1)).toBeUndefined();
    expect(chain.announce({ verifierKey: c.verifierKey, previousKeyId: b.id }, 3)).toMatch(/no checkpoint handed over/);
    expect(chain.keys).toHaveLength(2);
  });

  it('rebuilds a served chain from the pinned key, and refuses one that does not start there or skips a hand-over signature', () => {
    const [a, b, c] = [key(), key(), key()];
    const hub = new CheckpointKeyChain(a.verifierKey);
    hub.announce({ verifierKey: b.verifierKey, previousKeyId: a.id }, 3);
    hub.verify(sign(4, a, b));
    hub.announce({ verifierKey: c.verifierKey, previousKeyId: b.id }, 6);
    hub.verify(sign(8, b, c));
    const served = hub.keys;
    const client = CheckpointKeyChain.fromServed(a.verifierKey, served);
    expect(client.verify(sign(2, a)).size).toBe(2);
    expect(client.verify(sign(5, b)).size).toBe(5);
    expect(client.verify(sign(10, c)).size).toBe(10);
    expect(() => CheckpointKeyChain.fromServed(b.verifierKey, served)).toThrow(code('KEY_CHAIN_INVALID'));
    const forged = served.map((k, i) => (i === 2 ? { ...k, handoverNote: sign(8, c) } : k));
    expect(() => CheckpointKeyChain.fromServed(a.verifierKey, forged)).toThrow(code('CHECKPOINT_HANDOVER_UNSIGNED'));
  });
});
