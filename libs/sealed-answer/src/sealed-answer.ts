import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { fromBase64url, toBase64url } from './base64url.js';
import { SealedAnswerError } from './errors.js';

/** HPKE `info` (RFC 9180 §5.1): binds every sealed answer to this protocol and version. */
export const ANSWER_INFO = 'linkage-ledger/answer/v1';
/** Length of the encapsulated key that prefixes every sealed answer (X25519: 32 bytes). */
export const ENC_LENGTH = 32;
/** AES-256-GCM tag: a sealed answer is at least enc + tag long. */
const TAG_LENGTH = 16;

/** An answer key pair; both halves are unpadded base64url of the raw 32-byte X25519 keys, so both store as JSON. */
export interface AnswerKeyPair {
  readonly publicKey: string;
  readonly privateKey: string;
}

const utf8 = new TextEncoder();
let cachedSuite: CipherSuite | undefined;

function suite(): CipherSuite {
  cachedSuite ??= new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
  return cachedSuite;
}

function rawKey(text: string, code: 'INVALID_PUBLIC_KEY' | 'INVALID_PRIVATE_KEY'): Uint8Array {
  const bytes = typeof text === 'string' ? fromBase64url(text) : undefined;
  if (bytes?.length !== 32) {
    const which = code === 'INVALID_PUBLIC_KEY' ? 'public' : 'private';
    throw new SealedAnswerError(code, `the ${which} answer key must be 43 characters of unpadded base64url (a raw 32-byte X25519 key)`);
  }
  return bytes;
}

function serialBytes(serial: string): Uint8Array {
  if (typeof serial !== 'string' || serial.length === 0) {
    throw new SealedAnswerError('INVALID_SERIAL', 'the processing serial number (the answer\'s associated data) must be a non-empty string');
  }
  return utf8.encode(serial);
}

/**
 * A fresh X25519 key pair: the private key is 32 bytes from the platform CSPRNG (any 32 bytes are a valid
 * X25519 scalar, RFC 7748 §5), the public key X25519(sk, 9). No key-generation job runs (see sealAnswer).
 */
export function generateAnswerKeyPair(): Promise<AnswerKeyPair> {
  const privateKey = toBase64url(new Uint8Array(randomBytes(32)));
  return Promise.resolve({ publicKey: answerPublicKeyOf(privateKey), privateKey });
}

/**
 * An X25519 private key imported from its 32 raw bytes (a raw JWK import: no key-generation job runs, and
 * none is collected later while the key is in use). The import computes the public key X25519(sk, 9).
 */
export function x25519PrivateKey(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: toBase64url(raw), x: '' }, format: 'jwk' });
}

/**
 * The raw public key of an X25519 private key, X25519(sk, 9) (RFC 7748 §6.1): the one the import computed, read
 * from the key's public half (≈ 2 µs) rather than a second scalar multiplication (≈ 26 µs).
 */
export function x25519PublicKey(privateKey: KeyObject): Buffer {
  const x = createPublicKey(privateKey).export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new SealedAnswerError('INVALID_PRIVATE_KEY', 'the private answer key is not an X25519 key');
  return Buffer.from(x, 'base64url');
}

/** The public half of a stored private key (to print it again, or check a stored pair). */
export function answerPublicKeyOf(privateKey: string): string {
  const raw = rawKey(privateKey, 'INVALID_PRIVATE_KEY');
  try {
    return toBase64url(new Uint8Array(x25519PublicKey(x25519PrivateKey(raw))));
  } catch {
    throw new SealedAnswerError('INVALID_PRIVATE_KEY', 'the private answer key is not a usable X25519 key');
  }
}

/**
 * Seals `plaintext` to the recipient's X25519 key (HPKE base mode, RFC 9180), with the serial as
 * associated data so that an answer cannot be replayed under another query. Returns enc ‖ ciphertext.
 */
export async function sealAnswer(plaintext: Uint8Array, recipientPublicKey: string, serial: string): Promise<Uint8Array> {
  const aad = serialBytes(serial);
  const s = suite();
  const raw = rawKey(recipientPublicKey, 'INVALID_PUBLIC_KEY');
  const recipient = await s.kem.deserializePublicKey(raw).catch(() => {
    throw new SealedAnswerError('INVALID_PUBLIC_KEY', 'the public answer key is not a usable X25519 key');
  });
  // The ephemeral key pair is DeriveKeyPair(32 fresh bytes of the CSPRNG), which RFC 9180 (§7.1.3) allows for
  // GenerateKeyPair, rather than WebCrypto's generateKey: under load, Node 20's crypto could deadlock its main
  // thread when a generateKey job was collected while the key it made was being exported (seen on an
  // intermediate server sealing answers at full load: the process stopped accepting connections, its main
  // thread waiting on the key's own mutex). Derived keys are imported, never made by a job.
  const ekm = randomBytes(32);
  const { ct, enc } = await s.seal({ recipientPublicKey: recipient, info: utf8.encode(ANSWER_INFO), ekm }, plaintext, aad);
  ekm.fill(0);
  const out = new Uint8Array(enc.byteLength + ct.byteLength);
  out.set(new Uint8Array(enc), 0);
  out.set(new Uint8Array(ct), enc.byteLength);
  return out;
}

/**
 * Opens a sealed answer with the recipient's private key. Any changed byte, another serial or another
 * key fails the same way (ANSWER_DECRYPTION_FAILED): the caller MUST NOT learn which.
 */
export async function openAnswer(sealed: Uint8Array, privateKey: string, serial: string): Promise<Uint8Array> {
  const aad = serialBytes(serial);
  const s = suite();
  const key = await s.kem.deserializePrivateKey(rawKey(privateKey, 'INVALID_PRIVATE_KEY')).catch(() => {
    throw new SealedAnswerError('INVALID_PRIVATE_KEY', 'the private answer key is not a usable X25519 key');
  });
  if (!(sealed instanceof Uint8Array) || sealed.length < ENC_LENGTH + TAG_LENGTH) {
    throw new SealedAnswerError('ANSWER_DECRYPTION_FAILED', `a sealed answer is at least ${ENC_LENGTH + TAG_LENGTH} bytes; this one cannot be opened`);
  }
  try {
    const pt = await s.open({ recipientKey: key, enc: sealed.slice(0, ENC_LENGTH), info: utf8.encode(ANSWER_INFO) }, sealed.slice(ENC_LENGTH), aad);
    return new Uint8Array(pt);
  } catch {
    throw new SealedAnswerError(
      'ANSWER_DECRYPTION_FAILED',
      'the answer cannot be opened: it was changed in transit, sealed for another key, or sealed under another serial',
    );
  }
}
