import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { agencyCodeFromRandomBytes, isSubjectId, type AgencyCode } from '#linkage';
import { MapperError } from './errors.js';

/** Bytes of the locator sealed into a minted code: the first bytes of the person's subject tag. */
export const LOCATOR_BYTES = 7;
/** AES-128: the code key is 16 bytes. */
export const CODE_KEY_BYTES = 16;

/** The default subject tag: a SHA-256 prefix of the subject id's 16 bytes (the Redis layout files people under it). */
export function sha256Tag(subject: Buffer, length: number): Buffer {
  return createHash('sha256').update(subject).digest().subarray(0, length);
}

/** A fresh code key (16 random bytes). The hub generates one at first start and keeps it with its other keys. */
export function newCodeKey(): Buffer {
  return randomBytes(CODE_KEY_BYTES);
}

/**
 * Agency codes that say, to the hub alone, where their person is filed.
 *
 * A minted code is one AES-128 block under the hub's code key: `AES_K(tag[0..7) ‖ 9 random bytes)`, where
 * `tag` is the person's subject tag. Without the key a code is 16 pseudorandom bytes: two agencies'
 * codes for one person are unrelated, and nobody can tell that they belong together (I7). With the key,
 * the hub decrypts a code and reads the subject bucket it names, so a translation costs one Redis read
 * instead of two (code bucket, then subject bucket), and no code bucket record is kept for it.
 *
 * The locator is only a hint: a lookup always compares the full code against the records it finds, so
 * a code minted under another key, or drawn at random, is still found (through its code bucket record),
 * and a forged code finds nothing. What the key adds to a compromise of the hub is nothing the hub's
 * mapping does not already hold.
 */
export class CodeLocator {
  /** Names the key without revealing it (stored in the Redis layout's meta: one key per keyspace). */
  readonly fingerprint: string;
  readonly #key: Buffer;
  readonly #tag: (subject: Buffer, length: number) => Buffer;

  constructor(key: Uint8Array, tag: (subject: Buffer, length: number) => Buffer = sha256Tag) {
    if (key.length !== CODE_KEY_BYTES) throw new MapperError('INVALID_INPUT', `a code key is ${CODE_KEY_BYTES} bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
    this.#tag = tag;
    this.fingerprint = createHash('sha256').update('linkage-ledger/code-key/v1\n').update(this.#key).digest('hex').slice(0, 16);
  }

  /** A new code for this person: its locator and 9 fresh random bytes, sealed. */
  mint(subjectId: string, random: Uint8Array = randomBytes(16 - LOCATOR_BYTES)): AgencyCode {
    if (!isSubjectId(subjectId)) throw new MapperError('INVALID_INPUT', `"${subjectId}" is not a subject id`);
    if (random.length !== 16 - LOCATOR_BYTES) throw new MapperError('INVALID_INPUT', `a code takes ${16 - LOCATOR_BYTES} random bytes`);
    const block = Buffer.concat([this.tagOf(Buffer.from(subjectId.replaceAll('-', ''), 'hex')), random]);
    const cipher = createCipheriv('aes-128-ecb', this.#key, null).setAutoPadding(false);
    return agencyCodeFromRandomBytes(Buffer.concat([cipher.update(block), cipher.final()]));
  }

  /** The locator (first LOCATOR_BYTES) of the subject with these 16 id bytes. */
  tagOf(subject: Buffer): Buffer {
    const tag = this.#tag(subject, LOCATOR_BYTES);
    if (tag.length !== LOCATOR_BYTES) throw new MapperError('LAYOUT_MISMATCH', `subject tag must be ${LOCATOR_BYTES} bytes`);
    return tag;
  }

  /** Opens codes packed 16 bytes each: block i of the answer starts with the locator code i claims. */
  open(codes: Buffer): Buffer {
    if (codes.length === 0) return codes;
    const decipher = createDecipheriv('aes-128-ecb', this.#key, null).setAutoPadding(false);
    return Buffer.concat([decipher.update(codes), decipher.final()]);
  }

  /** Whether these 16 code bytes were minted (under this key) for the subject whose tag starts with `tag`. */
  locates(code: Buffer, tag: Buffer): boolean {
    const opened = this.open(code.subarray(0, 16));
    return opened.compare(tag, 0, tag.length, 0, tag.length) === 0;
  }
}
