// 自己情報表示: the answer is sealed by the agency's intermediate server to a key made here, for this
// request only (HPKE, RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, info
// "linkage-ledger/answer/v1", the serial as associated data), exactly as libs/sealed-answer does.
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { fromBase64url, toBase64url } from './verify/bytes.js';

const INFO = new TextEncoder().encode('linkage-ledger/answer/v1');
const ENC_LENGTH = 32;

function suite(): CipherSuite {
  return new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
}

export interface AnswerKey {
  /** 43 characters of unpadded base64url: the raw X25519 public key sent with the request. */
  readonly publicKey: string;
  readonly privateKey: CryptoKey;
}

export async function generateAnswerKey(): Promise<AnswerKey> {
  const s = suite();
  const pair = await s.kem.generateKeyPair();
  return { publicKey: toBase64url(new Uint8Array(await s.kem.serializePublicKey(pair.publicKey))), privateKey: pair.privateKey };
}

export class AnswerOpenError extends Error {}

/** Opens `data` (base64url of enc ‖ ciphertext) sealed under `serial`; returns the plaintext text. */
export async function openAnswer(data: string, key: AnswerKey, serial: string): Promise<string> {
  const bytes = fromBase64url(data);
  if (bytes === undefined || bytes.length < ENC_LENGTH + 16) throw new AnswerOpenError('the sealed answer is malformed');
  try {
    const pt = await suite().open({ recipientKey: key.privateKey, enc: bytes.slice(0, ENC_LENGTH).buffer, info: INFO.buffer }, bytes.slice(ENC_LENGTH).buffer, new TextEncoder().encode(serial).buffer);
    return new TextDecoder('utf-8', { fatal: true }).decode(pt);
  } catch {
    throw new AnswerOpenError('the answer cannot be opened: changed in transit, sealed for another key or under another serial');
  }
}
