import { createHook } from 'node:async_hooks';
import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ENC_LENGTH, generateAnswerKeyPair, openAnswer, sealAnswer, toBase64url } from '#sealed-answer';
import { sealAnswerFast, sealProvisionAnswer } from '../src/provider/answer-sealer.js';

const SERIAL = '20261205130000000001';
const answer = new TextEncoder().encode(JSON.stringify({ items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 3_120_000 } } }));

/** The async resource types started while `work` runs (a key-pair generation job is KEYPAIRGENREQUEST). */
async function resourcesOf(work: () => Promise<unknown>): Promise<string[]> {
  const types: string[] = [];
  const hook = createHook({ init: (_id, type) => void types.push(type) }).enable();
  try {
    await work();
  } finally {
    hook.disable();
  }
  return types;
}

describe("the intermediate server's answer sealing (HPKE base mode, node:crypto)", () => {
  it('seals answers that the requester opens, with a fresh ephemeral key each time', async () => {
    const pair = await generateAnswerKeyPair();
    const sealed = Array.from({ length: 4 }, () => sealAnswerFast(answer, pair.publicKey, SERIAL)!);
    expect(new Set(sealed.map((s) => toBase64url(s.subarray(0, ENC_LENGTH)))).size).toBe(4);
    for (const s of sealed) {
      expect(s.length).toBe(ENC_LENGTH + answer.length + 16);
      expect(await openAnswer(s, pair.privateKey, SERIAL)).toEqual(answer);
    }
    await expect(openAnswer(sealed[0]!, pair.privateKey, `${SERIAL}9`)).rejects.toThrow(expect.objectContaining({ code: 'ANSWER_DECRYPTION_FAILED' }));
  });

  it('starts no key-pair generation job while sealing or making an answer key pair (keys are imported CSPRNG bytes): such jobs deadlocked Node 20 under full load', async () => {
    const pair = await generateAnswerKeyPair();
    const fast = await resourcesOf(async () => {
      for (let i = 0; i < 16; i++) await sealProvisionAnswer(answer, pair.publicKey, SERIAL);
    });
    expect(fast).not.toContain('KEYPAIRGENREQUEST');
    const library = await resourcesOf(() => Promise.all(Array.from({ length: 4 }, () => sealAnswer(answer, pair.publicKey, SERIAL))));
    expect(library).not.toContain('KEYPAIRGENREQUEST');
    expect(await resourcesOf(() => Promise.all([generateAnswerKeyPair(), generateAnswerKeyPair()]))).not.toContain('KEYPAIRGENREQUEST');
    // The hook does see such a job when one is started (the checks above can fail).
    expect(await resourcesOf(() => webcrypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']))).toContain('KEYPAIRGENREQUEST');
  });

  it('leaves a key it cannot use to the library, which refuses it with its own error', async () => {
    expect(sealAnswerFast(answer, 'not-a-key', SERIAL)).toBeUndefined();
    await expect(sealProvisionAnswer(answer, 'not-a-key', SERIAL)).rejects.toThrow(expect.objectContaining({ code: 'INVALID_PUBLIC_KEY' }));
  });
});
