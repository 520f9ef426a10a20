import { createCipheriv, createDecipheriv, createHmac, type Cipher, type Decipher } from 'node:crypto';
import type { AgencyCode, SubjectId } from '#linkage';

const SUBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Derives keys from the hub's handle key (EventSealer.handle): hex, `bytes` long. */
export type HandleKey = (domain: string, value: string, bytes: number) => string;

/**
 * How the lookup file keeps what it holds unreadable without the hub's keys, like the other files in the
 * data directory (the privacy scan finds no subject id, code, credential digest or secret digest in them):
 * - look-up keys (number, secret and credential digests, passkey ids) are keyed hashes (16 bytes);
 * - subject ids and agency codes, which answers must give back, are one AES-128 block each under a key
 *   of the file (deterministic: equal ids, equal blocks, so they can be keys and be joined on);
 * - rows of structure (a passkey, an agency's registry state) are AES-256-GCM with a synthetic IV (a keyed
 *   hash of the text), so that a rebuild writes the same bytes.
 * Every key is derived from the hub's handle key: the file needs no key of its own, and a file copied
 * without `keys/` reveals nothing.
 */
export class LookupSeal {
  readonly #mac: Buffer;
  readonly #ivKey: Buffer;
  readonly #blobKey: Buffer;
  readonly #encrypt: Cipher;
  readonly #decrypt: Decipher;

  constructor(handle: HandleKey) {
    const key = (name: string, bytes: number) => Buffer.from(handle('lookup-file', `${name}/v1`, bytes), 'hex');
    this.#mac = key('mac', 32);
    this.#ivKey = key('synthetic-iv', 32);
    this.#blobKey = key('row', 32);
    const block = key('block', 16);
    // ECB over single blocks, no padding: one long-lived cipher each way, 16 bytes in, 16 bytes out.
    this.#encrypt = createCipheriv('aes-128-ecb', block, null).setAutoPadding(false);
    this.#decrypt = createDecipheriv('aes-128-ecb', block, null).setAutoPadding(false);
  }

  /** The look-up key of a value in a domain (16 bytes of HMAC-SHA-256). */
  key(domain: string, value: string): Buffer {
    return createHmac('sha256', this.#mac).update(domain).update('\0').update(value).digest().subarray(0, 16);
  }

  /** A subject id as stored: its 16 bytes enciphered (a non-canonical id as a sealed row). */
  subject(subjectId: string): Buffer {
    if (!SUBJECT_ID.test(subjectId)) return this.row(subjectId);
    return this.#encrypt.update(block(Buffer.from(subjectId.replaceAll('-', ''), 'hex')));
  }

  subjectOf(stored: Buffer): SubjectId {
    if (stored.length !== 16) return this.openRow(stored) as SubjectId;
    const h = this.#decrypt.update(stored).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as SubjectId;
  }

  /** An agency code (16 bytes, base64url) as stored: enciphered. */
  code(code: string): Buffer {
    return this.#encrypt.update(block(Buffer.from(code, 'base64url')));
  }

  codeOf(stored: Buffer): AgencyCode {
    return this.#decrypt.update(block(stored)).toString('base64url') as AgencyCode;
  }

  /** A row's text sealed: IV (12) ‖ tag (16) ‖ ciphertext; the same text gives the same bytes. */
  row(text: string): Buffer {
    const plain = Buffer.from(text, 'utf8');
    const iv = createHmac('sha256', this.#ivKey).update(plain).digest().subarray(0, 12);
    const cipher = createCipheriv('aes-256-gcm', this.#blobKey, iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]);
  }

  openRow(stored: Buffer): string {
    const decipher = createDecipheriv('aes-256-gcm', this.#blobKey, stored.subarray(0, 12));
    decipher.setAuthTag(stored.subarray(12, 28));
    return Buffer.concat([decipher.update(stored.subarray(28)), decipher.final()]).toString('utf8');
  }
}

/** Exactly one block: a shorter or longer input would leave the streaming cipher out of step. */
function block(bytes: Buffer): Buffer {
  if (bytes.length !== 16) throw new RangeError(`the lookup file enciphers 16-byte values, got ${bytes.length} bytes`);
  return bytes;
}
