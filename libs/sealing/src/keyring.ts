import { createCipheriv, createDecipheriv, hash, randomBytes } from 'node:crypto';
import { SealingError } from './errors.js';
import { currentKekId, kekById, type SealingKeys } from './keys.js';

/** A key and its id: the id goes (encrypted) into each event's key reference, the key never leaves the ring. */
export interface RingKey {
  readonly kid: Buffer;
  readonly key: Buffer;
}

/** Bytes of a key id. The hub's own fields use the all-zero id (no ring entry). */
export const KID_BYTES = 16;
export const HUB_KID = Buffer.alloc(KID_BYTES);

/**
 * Where person keys and period keys live, apart from the log (I10): a person's sealed fields open only
 * while their key is here, and a year's record fields only while its period key is. Shredding removes
 * the key material for good; the log, its tree and every checkpoint are untouched and still verify.
 *
 * A key MUST be durable before it is returned with `create`: an event sealed under a key that a crash
 * then loses could never be opened.
 */
export interface Keyring {
  /** The person's key; with `create`, made when none exists. 'shredded' once erased (never made anew). */
  subjectKey(subjectId: string, create: boolean): RingKey | 'shredded' | undefined;
  /** Whether the person key with this id was shredded (answered from memory: erasures are few). */
  isShredded(kid: Buffer): boolean;
  /** Whether the period key of this year was shredded (answered from memory). */
  isEpochShredded(epoch: number): boolean;
  /** Makes the keys of many people that have none, durably, in one write (bulk numbering, loads). */
  ensureSubjectKeys(subjectIds: readonly string[]): void;
  /** A person key by its id (from an event's key reference). */
  keyById(kid: Buffer): Buffer | 'shredded' | undefined;
  /**
   * Many person keys by their ids at once (one read of the store for those not in memory): what `keyById`
   * answers for each, in order. With `cache: false` the keys read are not kept in the ring's cache (a
   * fan-out meets each person once). Optional: a ring without it is asked one key at a time.
   */
  keysById?(kids: readonly Buffer[], options?: { readonly cache?: boolean }): (Buffer | 'shredded' | undefined)[];
  /** The period key of a year (Japan time); with `create`, made when none exists. */
  epochKey(epoch: number, create: boolean): Buffer | 'shredded' | undefined;
  /** Shreds one person's key; answers false when there was none (or it was shredded already). */
  shredSubject(subjectId: string, at: string): boolean;
  /** Shreds the period keys of every year up to and including `throughEpoch`; answers the years shredded now. */
  shredEpochsThrough(throughEpoch: number, at: string): number[];
  /** The years whose period key exists and is not shredded. */
  liveEpochs(): number[];
  close(): void;
}

/**
 * A key ring several hubs share (through KurrentDB): the synchronous calls answer from a local copy, and
 * these make that copy ready first. `prepareSeal` makes every key sealing will need exist durably in the
 * shared store (made there when none exists, or the one another hub made) and locally, before anything is
 * sealed under it; `prepareOpen` fetches the keys that events name and the local copy lacks.
 */
export interface SharedKeyring extends Keyring {
  prepareSeal(subjectIds: readonly string[], epochs: readonly number[]): Promise<void>;
  prepareOpen(kids: readonly Buffer[], epochs: readonly number[]): Promise<void>;
}

export function isSharedKeyring(ring: Keyring): ring is SharedKeyring {
  return typeof (ring as Partial<SharedKeyring>).prepareSeal === 'function' && typeof (ring as Partial<SharedKeyring>).prepareOpen === 'function';
}

/**
 * The id of a person's key: a keyed digest of their subject id (SHA3-256 under the handle key), so the
 * ring holds no subject id and one index serves both sealing (by person) and opening (by the id an event
 * names). It is also the person's reference in the hub's projection files (`personRef`), which a fold
 * reads from an event's key reference without opening its box.
 */
export function personKid(keys: SealingKeys, subjectId: string): Buffer {
  // Into a reused buffer (a subject id is short; a long one takes the slow path): one derivation per person of a fan-out.
  const size = keys.handle.length + PERSON_KID.length + Buffer.byteLength(subjectId, 'utf8');
  if (size > KID_SCRATCH.length) return hash('sha3-256', Buffer.concat([keys.handle, PERSON_KID, Buffer.from(subjectId, 'utf8')]), 'buffer').subarray(0, KID_BYTES);
  let n = keys.handle.copy(KID_SCRATCH, 0);
  n += PERSON_KID.copy(KID_SCRATCH, n);
  n += KID_SCRATCH.write(subjectId, n, 'utf8');
  return hash('sha3-256', KID_SCRATCH.subarray(0, n), 'buffer').subarray(0, KID_BYTES);
}

const PERSON_KID = Buffer.from('linkage-ledger/person-kid/v1\0', 'utf8');
const KID_SCRATCH = Buffer.allocUnsafe(512);

const WRAP_DOMAIN = 'linkage-ledger/keyring/v1';

/**
 * AES-256-GCM under the current key-encryption key: iv(12) ‖ ciphertext(32) ‖ tag(16), bound to what the
 * key is and to the id of the KEK (`currentKekId`), which the ring stores beside the wrap.
 */
export function wrapKey(keys: SealingKeys, what: string, key: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', keys.keyEncryption, iv);
  c.setAAD(Buffer.from(`${WRAP_DOMAIN}|${currentKekId(keys)}|${what}`, 'utf8'));
  const body = Buffer.concat([c.update(key), c.final()]);
  return Buffer.concat([iv, body, c.getAuthTag()]);
}

/**
 * Opens a wrap made under the key-encryption key `kekId` (null or absent: the key set's first KEK, whose
 * id is the key set's kid: every wrap made before rotation). Throws INVALID_KEYS when the key set does
 * not hold that KEK, or the wrap does not open.
 */
export function unwrapKey(keys: SealingKeys, what: string, wrapped: Buffer, kekId?: string | null): Buffer {
  const id = kekId ?? keys.kid;
  const kek = kekById(keys, id);
  if (kek === undefined) throw new SealingError('INVALID_KEYS', `a key in the key ring is wrapped under key-encryption key ${id}, which key set ${keys.kid} does not hold (any more): give the KEK files beside the sealing key file`);
  try {
    const d = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, 12));
    d.setAAD(Buffer.from(`${WRAP_DOMAIN}|${id}|${what}`, 'utf8'));
    d.setAuthTag(wrapped.subarray(wrapped.length - 16));
    const key = d.update(wrapped.subarray(12, wrapped.length - 16));
    // GCM answers every byte from update; final checks the tag (and throws when it does not match).
    const rest = d.final();
    return rest.length === 0 ? key : Buffer.concat([key, rest]);
  } catch {
    throw new SealingError('INVALID_KEYS', `a key in the key ring does not unwrap under key set ${keys.kid}: the ring belongs to other keys, or was altered`);
  }
}

/** Whether the key set holds the key-encryption key a wrap names (null: the first KEK). */
export function holdsKek(keys: SealingKeys, kekId: string | null | undefined): boolean {
  return kekById(keys, kekId ?? keys.kid) !== undefined;
}

/** A bounded map: the oldest eighth of its entries goes when full (a key ring is population-sized, its cache is not). */
export class BoundedCache<K, V> {
  readonly #map = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(k: K): V | undefined {
    return this.#map.get(k);
  }
  set(k: K, v: V): void {
    if (this.#map.size >= this.max && !this.#map.has(k)) {
      // The oldest eighth at once, not one entry per insert: V8 keeps a deleted Map entry as a hole until
      // the table is rehashed, and keys().next() walks over every hole at the front, so evicting one by
      // one costs O(max) per insert once the cache is full (≈ 200 µs at 100,000 entries, measured).
      let n = Math.max(1, this.max >> 3);
      for (const key of this.#map.keys()) {
        this.#map.delete(key);
        if (--n === 0) break;
      }
    }
    this.#map.set(k, v);
  }
  delete(k: K): void {
    this.#map.delete(k);
  }
  clear(): void {
    this.#map.clear();
  }
}

/** The key ring in memory (tests, and tools that never shred for real). */
export class InMemoryKeyring implements Keyring {
  readonly #subjects = new Map<string, RingKey | 'shredded'>();
  readonly #byKid = new Map<string, Buffer | 'shredded'>();
  readonly #epochs = new Map<number, Buffer | 'shredded'>();
  readonly #keys: SealingKeys;

  /** Key ids are derived as the SQLite ring derives them (personKid). */
  constructor(keys: SealingKeys) {
    this.#keys = keys;
  }

  subjectKey(subjectId: string, create: boolean): RingKey | 'shredded' | undefined {
    const known = this.#subjects.get(subjectId);
    if (known !== undefined || !create) return known;
    const made = { kid: personKid(this.#keys, subjectId), key: randomBytes(32) };
    this.#subjects.set(subjectId, made);
    this.#byKid.set(made.kid.toString('hex'), made.key);
    return made;
  }
  isShredded(kid: Buffer): boolean {
    return this.#byKid.get(kid.toString('hex')) === 'shredded';
  }
  isEpochShredded(epoch: number): boolean {
    return this.#epochs.get(epoch) === 'shredded';
  }
  ensureSubjectKeys(subjectIds: readonly string[]): void {
    for (const s of subjectIds) this.subjectKey(s, true);
  }
  keyById(kid: Buffer): Buffer | 'shredded' | undefined {
    return this.#byKid.get(kid.toString('hex'));
  }
  epochKey(epoch: number, create: boolean): Buffer | 'shredded' | undefined {
    const known = this.#epochs.get(epoch);
    if (known !== undefined || !create) return known;
    const made = randomBytes(32);
    this.#epochs.set(epoch, made);
    return made;
  }
  shredSubject(subjectId: string): boolean {
    const known = this.#subjects.get(subjectId);
    if (known === undefined || known === 'shredded') return false;
    this.#subjects.set(subjectId, 'shredded');
    this.#byKid.set(known.kid.toString('hex'), 'shredded');
    return true;
  }
  shredEpochsThrough(throughEpoch: number): number[] {
    const shredded: number[] = [];
    for (const [epoch, key] of this.#epochs) {
      if (epoch <= throughEpoch && key !== 'shredded') {
        this.#epochs.set(epoch, 'shredded');
        shredded.push(epoch);
      }
    }
    return shredded.sort((a, b) => a - b);
  }
  liveEpochs(): number[] {
    return [...this.#epochs].filter(([, k]) => k !== 'shredded').map(([e]) => e).sort((a, b) => a - b);
  }
  close(): void {}
}
