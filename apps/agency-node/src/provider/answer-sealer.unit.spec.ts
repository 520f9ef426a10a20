import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ENC_LENGTH, generateAnswerKeyPair, openAnswer } from '#sealed-answer';
import { sealAnswerFast, sealProvisionAnswer } from './answer-sealer.js';

const SERIAL = '20261129010000000042';

describe('the provider\'s answer sealing (HPKE base mode on node:crypto)', () => {
  it('seals what #sealed-answer opens with the recipient\'s private key, for any plaintext', async () => {
    const keys = await generateAnswerKeyPair();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (plain) => {
        const sealed = sealAnswerFast(plain, keys.publicKey, SERIAL)!;
        expect(sealed.length).toBe(ENC_LENGTH + plain.length + 16);
        expect(Buffer.from(await openAnswer(sealed, keys.privateKey, SERIAL))).toEqual(Buffer.from(plain));
      }),
      { numRuns: 50 },
    );
  });

  it('binds the serial and the key: another serial, another key or a flipped byte does not open', async () => {
    const keys = await generateAnswerKeyPair();
    const other = await generateAnswerKeyPair();
    const sealed = sealAnswerFast(Buffer.from('{"items":{"local-tax":1}}'), keys.publicKey, SERIAL)!;
    await expect(openAnswer(sealed, keys.privateKey, '20261129010000000043')).rejects.toThrow(/cannot be opened/);
    await expect(openAnswer(sealed, other.privateKey, SERIAL)).rejects.toThrow(/cannot be opened/);
    const flipped = Buffer.from(sealed);
    flipped[ENC_LENGTH + 3]! ^= 1;
    await expect(openAnswer(flipped, keys.privateKey, SERIAL)).rejects.toThrow(/cannot be opened/);
  });

  it('uses a fresh ephemeral key per answer', async () => {
    const keys = await generateAnswerKeyPair();
    const a = sealAnswerFast(Buffer.from('same'), keys.publicKey, SERIAL)!;
    const b = sealAnswerFast(Buffer.from('same'), keys.publicKey, SERIAL)!;
    expect(a.subarray(0, ENC_LENGTH).equals(b.subarray(0, ENC_LENGTH))).toBe(false);
  });

  it('leaves a key it cannot use to #sealed-answer, which refuses it with its own code', async () => {
    expect(sealAnswerFast(Buffer.from('x'), 'too-short', SERIAL)).toBeUndefined();
    // All zeros is a low-order X25519 point: the shared secret would be zero.
    const lowOrder = Buffer.alloc(32).toString('base64url');
    expect(sealAnswerFast(Buffer.from('x'), lowOrder, SERIAL)).toBeUndefined();
    await expect(sealProvisionAnswer(Buffer.from('x'), 'too-short', SERIAL)).rejects.toThrow(/43 characters/);
  });
});
