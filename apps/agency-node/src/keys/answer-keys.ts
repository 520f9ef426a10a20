import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { answerPublicKeyOf, generateAnswerKeyPair, type AnswerKeyPair } from '#sealed-answer';

export const ANSWER_KEY_FILE = 'answer-key.json';

interface KeyFile {
  readonly purpose: 'answer-encryption';
  readonly alg: 'X25519';
  /** base64url raw 32 bytes; the one to register with the hub. */
  readonly publicKey: string;
  /** base64url raw 32 bytes. MUST NOT be committed, logged or sent anywhere. */
  readonly privateKey: string;
  readonly createdAt: string;
}

/**
 * The X25519 key pair that providers seal answers to, generated at first start (mode 0600, created
 * exclusively so two processes cannot overwrite each other's key). Only the public half leaves the node.
 */
export async function loadOrCreateAnswerKeys(keysDir: string, now: Date = new Date()): Promise<AnswerKeyPair> {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const path = join(keysDir, ANSWER_KEY_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const pair = await generateAnswerKeyPair();
    const created: KeyFile = { purpose: 'answer-encryption', alg: 'X25519', publicKey: pair.publicKey, privateKey: pair.privateKey, createdAt: now.toISOString() };
    try {
      writeFileSync(path, `${JSON.stringify(created, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    text = readFileSync(path, 'utf8');
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const parsed = JSON.parse(text) as Partial<KeyFile>;
  const invalid = `key file ${path} is not a valid answer key (needs purpose "answer-encryption" and matching base64url X25519 publicKey and privateKey)`;
  if (parsed.purpose !== 'answer-encryption' || typeof parsed.privateKey !== 'string' || typeof parsed.publicKey !== 'string') throw new Error(invalid);
  let derived: string;
  try {
    derived = answerPublicKeyOf(parsed.privateKey);
  } catch {
    throw new Error(invalid);
  }
  if (derived !== parsed.publicKey) throw new Error(invalid);
  return { publicKey: parsed.publicKey, privateKey: parsed.privateKey };
}
