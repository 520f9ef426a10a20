import { webcrypto } from 'node:crypto';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { describe, expect, test, vi } from 'vitest';
import { isX25519PublicKey } from '#linkage';
import { ENC_LENGTH, SealedAnswerError, answerPublicKeyOf, fromBase64url, generateAnswerKeyPair, openAnswer, sealAnswer, toBase64url } from '#sealed-answer';

const SERIAL = '20261129010000000042';
const answer = new TextEncoder().encode(JSON.stringify({ items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 3_120_000 } } }));

describe('answer keys', () => {
  test('the public key is 43 characters of base64url (raw 32 bytes) and passes isX25519PublicKey', async () => {
    const pair = await generateAnswerKeyPair();
    expect(pair.publicKey).toHaveLength(43);
    expect(fromBase64url(pair.publicKey)).toHaveLength(32);
    expect(isX25519PublicKey(pair.publicKey)).toBe(true);
    expect(fromBase64url(pair.privateKey)).toHaveLength(32);
  });

  test('the stored private key gives back its public half', async () => {
    const pair = await generateAnswerKeyPair();
    expect(answerPublicKeyOf(pair.privateKey)).toBe(pair.publicKey);
  });

  test('the public half is X25519(sk, 9): the test vector of RFC 7748 §6.1', () => {
    const alice = toBase64url(new Uint8Array(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex')));
    expect(Buffer.from(fromBase64url(answerPublicKeyOf(alice))!).toString('hex')).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  });

  test('a generated pair works with an independent HPKE implementation (@hpke/core seals, the stored private key opens)', async () => {
    const pair = await generateAnswerKeyPair();
    const independent = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const recipientPublicKey = await independent.kem.deserializePublicKey(fromBase64url(pair.publicKey)!);
    const { ct, enc } = await independent.seal({ recipientPublicKey, info: new TextEncoder().encode('linkage-ledger/answer/v1') }, answer, new TextEncoder().encode(SERIAL));
    const sealed = new Uint8Array([...new Uint8Array(enc), ...new Uint8Array(ct)]);
    expect(await openAnswer(sealed, pair.privateKey, SERIAL)).toEqual(answer);
  });

  test('two pairs differ', async () => {
    const [a, b] = await Promise.all([generateAnswerKeyPair(), generateAnswerKeyPair()]);
    expect(a.publicKey).not.toBe(b.publicKey);
  });
});

describe('sealing and opening', () => {
  test('round trip: enc (32 bytes) ‖ ciphertext opens to the plaintext', async () => {
    const pair = await generateAnswerKeyPair();
    const sealed = await sealAnswer(answer, pair.publicKey, SERIAL);
    expect(sealed.length).toBe(ENC_LENGTH + answer.length + 16);
    expect(await openAnswer(sealed, pair.privateKey, SERIAL)).toEqual(answer);
  });

  test('sealing twice gives different bytes (a fresh ephemeral key each time)', async () => {
    const pair = await generateAnswerKeyPair();
    const [a, b] = await Promise.all([sealAnswer(answer, pair.publicKey, SERIAL), sealAnswer(answer, pair.publicKey, SERIAL)]);
    expect(toBase64url(a)).not.toBe(toBase64url(b));
  });

  test.each([0, 5, ENC_LENGTH, ENC_LENGTH + 3, -1])('one flipped bit at byte %i fails with ANSWER_DECRYPTION_FAILED', async (at) => {
    const pair = await generateAnswerKeyPair();
    const sealed = await sealAnswer(answer, pair.publicKey, SERIAL);
    const i = at < 0 ? sealed.length + at : at;
    sealed[i] = sealed[i]! ^ 0x01;
    await expect(openAnswer(sealed, pair.privateKey, SERIAL)).rejects.toThrow(expect.objectContaining({ code: 'ANSWER_DECRYPTION_FAILED' }));
  });

  test('another serial fails', async () => {
    const pair = await generateAnswerKeyPair();
    const sealed = await sealAnswer(answer, pair.publicKey, SERIAL);
    await expect(openAnswer(sealed, pair.privateKey, '20261129010000000043')).rejects.toThrow(SealedAnswerError);
    await expect(openAnswer(sealed, pair.privateKey, '20261129010000000043')).rejects.toThrow(/changed in transit, sealed for another key, or sealed under another serial/);
  });

  test('another key fails', async () => {
    const [pair, other] = await Promise.all([generateAnswerKeyPair(), generateAnswerKeyPair()]);
    const sealed = await sealAnswer(answer, pair.publicKey, SERIAL);
    await expect(openAnswer(sealed, other.privateKey, SERIAL)).rejects.toThrow(expect.objectContaining({ code: 'ANSWER_DECRYPTION_FAILED' }));
  });

  test('a truncated answer fails', async () => {
    const pair = await generateAnswerKeyPair();
    const sealed = await sealAnswer(answer, pair.publicKey, SERIAL);
    await expect(openAnswer(sealed.slice(0, 40), pair.privateKey, SERIAL)).rejects.toThrow(expect.objectContaining({ code: 'ANSWER_DECRYPTION_FAILED' }));
    await expect(openAnswer(sealed.slice(0, sealed.length - 1), pair.privateKey, SERIAL)).rejects.toThrow(expect.objectContaining({ code: 'ANSWER_DECRYPTION_FAILED' }));
  });

  test('sealing makes no WebCrypto key-generation job (the ephemeral key is derived from fresh CSPRNG bytes, RFC 9180 §7.1.3): such jobs could deadlock Node 20 under load', async () => {
    const pair = await generateAnswerKeyPair();
    const generateKey = vi.spyOn(webcrypto.subtle, 'generateKey');
    try {
      const sealed = await Promise.all(Array.from({ length: 8 }, () => sealAnswer(answer, pair.publicKey, SERIAL)));
      expect(generateKey).not.toHaveBeenCalled();
      // Eight fresh ephemeral keys (enc), each answer opening.
      expect(new Set(sealed.map((x) => toBase64url(x.slice(0, ENC_LENGTH)))).size).toBe(8);
      for (const x of sealed) expect(await openAnswer(x, pair.privateKey, SERIAL)).toEqual(answer);
    } finally {
      generateKey.mockRestore();
    }
  });

  test('an answer opens with any RFC 9180 implementation (HPKE base mode, X25519, HKDF-SHA256, AES-256-GCM, the protocol info)', async () => {
    const pair = await generateAnswerKeyPair();
    const sealed = await sealAnswer(answer, pair.publicKey, SERIAL);
    const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const key = await suite.kem.deserializePrivateKey(fromBase64url(pair.privateKey)!);
    const opened = await suite.open({ recipientKey: key, enc: sealed.slice(0, ENC_LENGTH), info: new TextEncoder().encode('linkage-ledger/answer/v1') }, sealed.slice(ENC_LENGTH), new TextEncoder().encode(SERIAL));
    expect(new Uint8Array(opened)).toEqual(answer);
  });

  test('a malformed public key is refused before sealing', async () => {
    await expect(sealAnswer(answer, 'not-a-key', SERIAL)).rejects.toThrow(expect.objectContaining({ code: 'INVALID_PUBLIC_KEY' }));
    await expect(sealAnswer(answer, `${'A'.repeat(43)}=`, SERIAL)).rejects.toThrow(expect.objectContaining({ code: 'INVALID_PUBLIC_KEY' }));
  });

  test('an empty serial is refused', async () => {
    const pair = await generateAnswerKeyPair();
    await expect(sealAnswer(answer, pair.publicKey, '')).rejects.toThrow(expect.objectContaining({ code: 'INVALID_SERIAL' }));
  });
});

describe('base64url', () => {
  test('round trip and strictness', () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]);
    expect(fromBase64url(toBase64url(bytes))).toEqual(bytes);
    expect(fromBase64url('AAE=')).toBeUndefined();
    expect(fromBase64url('AB')).toBeUndefined(); // trailing bits set: does not round-trip
    expect(fromBase64url('a+b/')).toBeUndefined();
  });
});
