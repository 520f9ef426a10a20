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

/** The first code key's generation: its codes carry no generation mark (`tag ‖ 9 random bytes`). */
export const FIRST_CODE_GENERATION = 0;
/** Generations after the first are marked in the code (2 bytes): at most this many rotations. */
export const MAX_CODE_GENERATION = 0xffff;
/** Bytes of the generation mark in a code minted under a rotated key. */
const MARK_BYTES = 2;

/** A code key of the ring: the first (generation 0) or one rotated in (generation n, its n-th rotation). */
export interface CodeKey {
  readonly generation: number;
  readonly key: Uint8Array;
}

/** Names a code key without revealing it (16 hex digits): the layout meta's code key, the key's id in the log. */
export function codeKeyId(key: Uint8Array): string {
  return createHash('sha256').update('linkage-ledger/code-key/v1\n').update(key).digest('hex').slice(0, 16);
}

interface RingKey {
  readonly generation: number;
  readonly key: Buffer;
  readonly keyId: string;
}

/**
 * Agency codes that say, to the hub alone, where their person is filed.
 *
 * A minted code is one AES-128 block under one of the hub's code keys. Under the first key (generation
 * 0) it is `AES_K0(tag[0..7) ‖ 9 random bytes)`; under a key rotated in later (generation g ≥ 1) it is
 * `AES_Kg(tag[0..7) ‖ g as 2 bytes ‖ 7 random bytes)`, where `tag` is the person's subject tag. Without
 * the keys a code is 16 pseudorandom bytes: two agencies' codes for one person are unrelated, and nobody
 * can tell that they belong together, nor under which key either was minted (I7). With the keys, the hub
 * decrypts a code and reads the subject bucket it names, so a translation costs one Redis read instead of
 * two (code bucket, then subject bucket), and no code bucket record is kept for it.
 *
 * Which key: a code is opened under every key of the ring (one AES block each, no read); the newest
 * key g ≥ 1 whose opening carries the mark g is the code's key, and a code no rotated key marks is the
 * first key's. A code of another key carries a given mark by chance once in 65,536: it is then opened
 * under the wrong key, its one read misses, and the mapper tries the other keys' openings in one more
 * round (redis-code-mapper.ts). So a rotation keeps one read per translation for old and new codes alike.
 *
 * The locator is only a hint: a lookup always compares the full code against the records it finds, so
 * a code minted under a key the hub no longer holds, or drawn at random, is still found (through its
 * code bucket record), and a forged code finds nothing. What the keys add to a compromise of the hub is
 * nothing the hub's mapping does not already hold.
 */
export class CodeLocator {
  /** Names the FIRST key without revealing it (stored in the Redis layout's meta: one key ring per keyspace). */
  readonly fingerprint: string;
  /** The ring, oldest first; the last key mints. */
  readonly #keys: RingKey[];
  readonly #tag: (subject: Buffer, length: number) => Buffer;

  constructor(key: Uint8Array, tag: (subject: Buffer, length: number) => Buffer = sha256Tag) {
    this.#keys = [ringKey(FIRST_CODE_GENERATION, key)];
    this.#tag = tag;
    this.fingerprint = this.#keys[0]!.keyId;
  }

  /** The generation of the key that mints now (0 until the first rotation). */
  get generation(): number {
    return this.#keys.at(-1)!.generation;
  }

  /** The id of the key that mints now. */
  get keyId(): string {
    return this.#keys.at(-1)!.keyId;
  }

  /** How many keys the ring holds. */
  get size(): number {
    return this.#keys.length;
  }

  /** Every key of the ring, oldest first: generation and id (never the key). */
  get keys(): readonly { readonly generation: number; readonly keyId: string }[] {
    return this.#keys.map(({ generation, keyId }) => ({ generation, keyId }));
  }

  /**
   * Adds a rotated key: it mints from now on, and every older key still opens the codes it minted. Its
   * generation must be above the ring's newest (the log announces them in order). Adding a key the ring
   * holds already (the same generation and key) changes nothing.
   */
  add({ generation, key }: CodeKey): void {
    const next = ringKey(generation, key);
    const held = this.#keys.find((k) => k.generation === generation);
    if (held !== undefined) {
      if (held.keyId !== next.keyId) throw new MapperError('INVALID_INPUT', `code key generation ${generation} is already ${held.keyId}, not ${next.keyId}`);
      return;
    }
    if (!(generation > this.generation && generation <= MAX_CODE_GENERATION)) {
      throw new MapperError('INVALID_INPUT', `a rotated code key needs a generation above ${this.generation} and at most ${MAX_CODE_GENERATION}, got ${generation}`);
    }
    this.#keys.push(next);
  }

  /** A new code for this person under the newest key: its locator, the key's mark (after the first) and fresh random bytes, sealed. */
  mint(subjectId: string, random?: Uint8Array): AgencyCode {
    if (!isSubjectId(subjectId)) throw new MapperError('INVALID_INPUT', `"${subjectId}" is not a subject id`);
    const current = this.#keys.at(-1)!;
    const mark = Buffer.alloc(current.generation === FIRST_CODE_GENERATION ? 0 : MARK_BYTES);
    if (mark.length > 0) mark.writeUInt16BE(current.generation);
    const randomLength = 16 - LOCATOR_BYTES - mark.length;
    const bytes = random ?? randomBytes(randomLength);
    if (bytes.length !== randomLength) throw new MapperError('INVALID_INPUT', `a code under key generation ${current.generation} takes ${randomLength} random bytes`);
    const block = Buffer.concat([this.tagOf(Buffer.from(subjectId.replaceAll('-', ''), 'hex')), mark, bytes]);
    const cipher = createCipheriv('aes-128-ecb', current.key, null).setAutoPadding(false);
    return agencyCodeFromRandomBytes(Buffer.concat([cipher.update(block), cipher.final()]));
  }

  /** The locator (first LOCATOR_BYTES) of the subject with these 16 id bytes. */
  tagOf(subject: Buffer): Buffer {
    const tag = this.#tag(subject, LOCATOR_BYTES);
    if (tag.length !== LOCATOR_BYTES) throw new MapperError('LAYOUT_MISMATCH', `subject tag must be ${LOCATOR_BYTES} bytes`);
    return tag;
  }

  /**
   * Opens codes packed 16 bytes each: block i of the answer starts with the locator code i claims, opened
   * under the key code i names (its mark; else the first key's).
   */
  open(codes: Buffer): Buffer {
    if (codes.length === 0) return codes;
    const first = decrypt(this.#keys[0]!.key, codes);
    if (this.#keys.length === 1) return first;
    // Newest first: the first marked opening wins; unmarked blocks keep the first key's opening.
    const chosen = new Uint8Array(codes.length >> 4);
    for (let k = this.#keys.length - 1; k >= 1; k--) {
      const { generation, key } = this.#keys[k]!;
      const opened = decrypt(key, codes);
      const hi = generation >> 8;
      const lo = generation & 0xff;
      for (let b = 0; b < chosen.length; b++) {
        const at = b * 16 + LOCATOR_BYTES;
        if (chosen[b] === 0 && opened[at] === hi && opened[at + 1] === lo) {
          chosen[b] = 1;
          opened.copy(first, b * 16, b * 16, b * 16 + 16);
        }
      }
    }
    return first;
  }

  /**
   * The same codes opened under every key of the ring (one buffer per key, oldest first): what a lookup
   * tries when the opening `open` chose found nothing (a mark matched by chance).
   */
  openUnderEach(codes: Buffer): Buffer[] {
    return this.#keys.map((k) => (codes.length === 0 ? codes : decrypt(k.key, codes)));
  }

  /** Whether these 16 code bytes were minted (under a key of the ring) for the subject whose tag starts with `tag`. */
  locates(code: Buffer, tag: Buffer): boolean {
    return this.openUnderEach(code.subarray(0, 16)).some((opened) => opened.compare(tag, 0, tag.length, 0, tag.length) === 0);
  }
}

function ringKey(generation: number, key: Uint8Array): RingKey {
  if (key.length !== CODE_KEY_BYTES) throw new MapperError('INVALID_INPUT', `a code key is ${CODE_KEY_BYTES} bytes, got ${key.length}`);
  if (!Number.isInteger(generation) || generation < 0 || generation > MAX_CODE_GENERATION) throw new MapperError('INVALID_INPUT', `a code key generation is an integer from 0 to ${MAX_CODE_GENERATION}, got ${generation}`);
  const copy = Buffer.from(key);
  return { generation, key: copy, keyId: codeKeyId(copy) };
}

function decrypt(key: Buffer, blocks: Buffer): Buffer {
  const decipher = createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  return Buffer.concat([decipher.update(blocks), decipher.final()]);
}
