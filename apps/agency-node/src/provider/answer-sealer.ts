import { createCipheriv, createHmac, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto';
import { ANSWER_INFO, fromBase64url, sealAnswer, x25519PrivateKey, x25519PublicKey } from '#sealed-answer';

/**
 * The provider's sealing of answers: the same HPKE base mode as `#sealed-answer` (RFC 9180,
 * DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM; info = ANSWER_INFO, aad = serial; output
 * enc ‖ ciphertext), computed with node:crypto's synchronous primitives. The WebCrypto path costs about a
 * millisecond of CPU per answer in key imports and promise hops; this one a fraction of it. A key it
 * cannot use goes to `sealAnswer`, which refuses it with its own error.
 */
const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0002;
const NK = 32;
const NN = 12;
const HPKE_V1 = Buffer.from('HPKE-v1', 'ascii');
const KEM_SUITE = Buffer.concat([Buffer.from('KEM', 'ascii'), i2osp(KEM_ID, 2)]);
const HPKE_SUITE = Buffer.concat([Buffer.from('HPKE', 'ascii'), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEAD_ID, 2)]);
const EMPTY = Buffer.alloc(0);

function i2osp(n: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  out.writeUIntBE(n, 0, length);
  return out;
}

/** HKDF-Extract: HMAC-SHA256 keyed by the salt (an empty salt is HashLen zero bytes, the same HMAC key). */
function extract(salt: Buffer, ikm: Buffer): Buffer {
  return createHmac('sha256', salt).update(ikm).digest();
}

/** HKDF-Expand for at most one hash block, which is all HPKE asks of it here (L ≤ 32). */
function expand(prk: Buffer, info: Buffer, length: number): Buffer {
  return createHmac('sha256', prk).update(info).update(Buffer.from([1])).digest().subarray(0, length);
}

function labeledExtract(suite: Buffer, salt: Buffer, label: string, ikm: Buffer): Buffer {
  return extract(salt, Buffer.concat([HPKE_V1, suite, Buffer.from(label, 'ascii'), ikm]));
}

function labeledExpand(suite: Buffer, prk: Buffer, label: string, info: Buffer, length: number): Buffer {
  return expand(prk, Buffer.concat([i2osp(length, 2), HPKE_V1, suite, Buffer.from(label, 'ascii'), info]), length);
}

// Base mode with a fixed info: the key schedule context is the same for every answer.
const KEY_SCHEDULE_CONTEXT = Buffer.concat([
  Buffer.from([0x00]),
  labeledExtract(HPKE_SUITE, EMPTY, 'psk_id_hash', EMPTY),
  labeledExtract(HPKE_SUITE, EMPTY, 'info_hash', Buffer.from(ANSWER_INFO, 'utf8')),
]);

/** Recipient keys seen recently (requesters reuse theirs), so each is parsed once. */
const recipients = new Map<string, { key: KeyObject; raw: Buffer }>();
const MAX_RECIPIENTS = 1024;

function recipient(publicKey: string): { key: KeyObject; raw: Buffer } | undefined {
  let r = recipients.get(publicKey);
  if (r === undefined) {
    const raw = fromBase64url(publicKey);
    if (raw?.length !== 32) return undefined;
    try {
      r = { key: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: publicKey }, format: 'jwk' }), raw: Buffer.from(raw) };
    } catch {
      return undefined;
    }
    if (recipients.size >= MAX_RECIPIENTS) recipients.clear();
    recipients.set(publicKey, r);
  }
  return r;
}

/**
 * A fresh ephemeral X25519 key pair: 32 bytes of the CSPRNG as the private key (RFC 9180 §7.1.3: for X25519
 * GenerateKeyPair is any 32 random bytes, the function clamps them), imported (the import computes the public
 * key X25519(sk, 9), read back from the key's public half). Not generateKeyPairSync and a JWK export: under full load Node 20's crypto deadlocked the
 * main thread when a collected key-generation job locked the mutex of the key being exported (the
 * intermediate server then stopped accepting connections); an imported key has no such job. (A PKCS#8 DER
 * import would cost ≈ 0.37 ms here, OpenSSL's decoders; the raw JWK import ≈ 0.026 ms, reading its public half
 * ≈ 0.002 ms: one X25519 fewer than computing X25519(sk, 9) again.)
 */
function ephemeralKeyPair(): { privateKey: KeyObject; enc: Buffer } {
  const seed = randomBytes(32);
  const privateKey = x25519PrivateKey(seed);
  seed.fill(0);
  return { privateKey, enc: x25519PublicKey(privateKey) };
}

/** enc ‖ ciphertext of `plaintext` sealed to `recipientPublicKey`, or undefined when the key is unusable. */
export function sealAnswerFast(plaintext: Uint8Array, recipientPublicKey: string, serial: string): Buffer | undefined {
  const pkR = recipient(recipientPublicKey);
  if (pkR === undefined || serial.length === 0) return undefined;
  const ephemeral = ephemeralKeyPair();
  let dh: Buffer;
  try {
    dh = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: pkR.key });
  } catch {
    return undefined; // e.g. a low-order point: OpenSSL refuses an all-zero shared secret
  }
  const enc = ephemeral.enc;
  const kemContext = Buffer.concat([enc, pkR.raw]);
  const eaePrk = labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dh);
  const sharedSecret = labeledExpand(KEM_SUITE, eaePrk, 'shared_secret', kemContext, 32);
  const secret = labeledExtract(HPKE_SUITE, sharedSecret, 'secret', EMPTY);
  const key = labeledExpand(HPKE_SUITE, secret, 'key', KEY_SCHEDULE_CONTEXT, NK);
  // The first message of a context: sequence number 0, so the nonce is the base nonce itself.
  const nonce = labeledExpand(HPKE_SUITE, secret, 'base_nonce', KEY_SCHEDULE_CONTEXT, NN);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(serial, 'utf8'));
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat([enc, body, final, cipher.getAuthTag()]);
}

/** Seals with the fast path, or with `#sealed-answer` (and its errors) when the fast path cannot use the key. */
export async function sealProvisionAnswer(plaintext: Uint8Array, recipientPublicKey: string, serial: string): Promise<Uint8Array> {
  return sealAnswerFast(plaintext, recipientPublicKey, serial) ?? sealAnswer(plaintext, recipientPublicKey, serial);
}
