import { createCipheriv, createDecipheriv, hash, randomFillSync } from 'node:crypto';
import { canonicalize, type NewEvent, type RecordedEvent } from '#ledger';
import { SALT_BYTES, commitmentText, type Opening } from './commitment.js';
import { isClearEventType, sealSpecOf, type FieldOwner, type SealSpec } from './catalog.js';
import { SealingError } from './errors.js';
import { BoundedCache, HUB_KID, InMemoryKeyring, KID_BYTES, isSharedKeyring, personKid, type Keyring, type RingKey, type SharedKeyring } from './keyring.js';
import { generateSealingKeysFile, parseSealingKeys, type SealingKeys } from './keys.js';

/** The sealed section a stored event's data carries (all binary values base64url). */
export interface SealedSection {
  readonly v: 1;
  /** One commitment per sealed field present in the event. */
  readonly commitments: Readonly<Record<string, string>>;
  /** Whose key and which period, encrypted under the locator key and the nonce: equal for no two events. */
  readonly keyRef: string;
  /** 16 fresh random bytes: the event key and the key reference's pad are derived from them. */
  readonly nonce: string;
  /** ChaCha20-Poly1305 (RFC 8439) of the RFC 8785 JSON of the sealed fields, under the event's box key. */
  readonly box: string;
}

/** What an opened event's `data.sealed` says when its key was shredded: its personal fields are gone for good. */
export const SHREDDED = 'shredded';

/** Whether an event read through the opener lost its personal fields to a shredded key. */
export function isShredded(event: StoredEventLike): boolean {
  return (event.data as { sealed?: unknown } | null)?.sealed === SHREDDED;
}

/** What opening an event gave: `clear` (nothing sealed in it), `opened`, or `shredded` (its key is gone). */
export type OpenState = 'clear' | 'opened' | 'shredded';

export interface Opened<E = RecordedEvent> {
  readonly state: OpenState;
  /** The event with its sealed fields back in `data` (when opened; `sealed` removed), or with `sealed: 'shredded'`. */
  readonly event: E;
}

/** The parts of a stored event the opener reads. */
export type StoredEventLike = Pick<RecordedEvent, 'type' | 'schemaVersion' | 'streamId' | 'data'>;

/** The log's record of a shred (crypto-shredding, I10). */
const KEYS_SHREDDED = 'KeysShredded';
const EVENT_MATERIAL = Buffer.from('linkage-ledger/event/v1\0', 'utf8');
const SALTS = Buffer.from('linkage-ledger/salts/v1', 'utf8');
const KEY_REF = Buffer.from('linkage-ledger/key-ref/v1\0', 'utf8');
const AEAD = 'chacha20-poly1305';
/** Every box has a key of its own (derived from a fresh nonce), so a fixed AEAD nonce is safe. */
const ZERO_IV = Buffer.alloc(12);
const TAG = 16;
const CLASS_IDENTITY = 0;
const CLASS_RECORD = 1;
const JST_MS = 9 * 3600 * 1000;

/** The year (Japan time) of an instant: the period whose key seals a record event. */
export function epochOf(instant: string): number {
  const ms = Date.parse(instant);
  if (Number.isNaN(ms)) throw new SealingError('INVALID_FIELD', `"${instant}" is not an instant`);
  return new Date(ms + JST_MS).getUTCFullYear();
}

/**
 * The keyed PRF of every derivation: SHA3-256(key ‖ domain ‖ input), as KMAC builds on (SHA-3 has no
 * length extension, so a key prefix is a sound MAC). One OpenSSL call: several times cheaper here than
 * an HMAC object, and the sealer derives six values per event.
 */
export function prf(key: Buffer, ...parts: (Buffer | string)[]): Buffer {
  return keyedHash('sha3-256', key, parts);
}

/** 64 bytes of keyed output: SHA3-512(key ‖ parts), the same construction as `prf`, twice as long. */
function prf512(key: Buffer, ...parts: Buffer[]): Buffer {
  return keyedHash('sha3-512', key, parts);
}

/** A reused input buffer: the derivations hash a few dozen bytes each, several times per event. */
const SCRATCH = Buffer.allocUnsafe(4096);

function keyedHash(algorithm: 'sha3-256' | 'sha3-512', key: Buffer, parts: readonly (Buffer | string)[]): Buffer {
  const n = keyedInput(key, parts);
  if (n < 0) return hash(algorithm, Buffer.concat([key, ...parts.map((q) => (typeof q === 'string' ? Buffer.from(q, 'utf8') : q))]), 'buffer');
  return hash(algorithm, SCRATCH.subarray(0, n), 'buffer');
}

/**
 * The same keyed hash as text (hex): no Buffer is made for the result, which costs here about as much as
 * the hash itself (a handle per recipient of a notice batch).
 */
function keyedHashHex(algorithm: 'sha3-256', key: Buffer, parts: readonly (Buffer | string)[]): string {
  const n = keyedInput(key, parts);
  if (n < 0) return keyedHash(algorithm, key, parts).toString('hex');
  return hash(algorithm, SCRATCH.subarray(0, n), 'hex');
}

/** key ‖ parts (strings as UTF-8) into SCRATCH: its length, or -1 when it does not fit. */
function keyedInput(key: Buffer, parts: readonly (Buffer | string)[]): number {
  let size = key.length;
  for (const p of parts) size += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
  if (size > SCRATCH.length) return -1;
  let n = key.copy(SCRATCH, 0);
  for (const p of parts) n += typeof p === 'string' ? SCRATCH.write(p, n, 'utf8') : p.copy(SCRATCH, n);
  return n;
}

/**
 * What an event's nonce and base key give: the box key, and the salts of its fields (16 bytes each, by
 * the field's place in the catalog entry, so absent fields leave the others' salts as they are).
 */
interface EventKeys {
  readonly box: Buffer;
  readonly salts: Buffer;
}

function eventKeys(base: Buffer, nonce: Buffer): EventKeys {
  const material = prf512(base, EVENT_MATERIAL, nonce);
  return { box: material.subarray(0, 32), salts: prf512(material.subarray(32), SALTS) };
}

/** Random bytes drawn in large fills: one small draw costs ~15 µs here, a slice of a fill almost nothing. */
class RandomPool {
  #buffer = Buffer.alloc(0);
  #offset = 0;
  take(n: number): Buffer {
    if (this.#offset + n > this.#buffer.length) {
      this.#buffer = randomFillSync(Buffer.allocUnsafe(64 * 1024));
      this.#offset = 0;
    }
    const out = Buffer.from(this.#buffer.subarray(this.#offset, this.#offset + n));
    this.#buffer.fill(0, this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }
}

/**
 * Entries in each of the sealer's three per-person caches. They serve the people being worked on now (a
 * query's second append meets its person again milliseconds later), not the population: each entry costs
 * ≈ 1 KiB of heap and 2–3 KiB of RSS with its small Buffers, so 100,000 per cache (as before) grew a hub
 * over a 10,000,000-person log by ≈ 60 MiB after 20,000 queries of random people, and ≈ 190 MiB at the caps.
 */
export const SEALER_CACHE_ENTRIES = 4_096;

/**
 * Seals the personal fields of events before they are appended (I10), and opens them again for the hub's
 * own folds. Per event: a fresh nonce; an event key derived from it and the person's key (and, for
 * record events, the period key of the event's year); per field a salt derived from the event key and a
 * SHA-256 commitment stored in clear; the values in one AES-256-GCM box under the event key; and a key
 * reference (which person key, which year) sealed under the locator key with a fresh IV. Nothing in the
 * stored text is equal across two events about one person; shredding either key leaves the text,
 * and every proof over it, as it was.
 */
export class EventSealer {
  readonly #keys: SealingKeys;
  readonly #ring: Keyring;
  /** Record base keys per (person key id, year): HMAC(period key, person key). */
  readonly #recordBases = new BoundedCache<string, Buffer>(SEALER_CACHE_ENTRIES);
  /** Person keys by subject id, and key ids by subject id: a key id is a keyed hash, worth not redoing per event. */
  readonly #subjectKeys = new BoundedCache<string, RingKey>(SEALER_CACHE_ENTRIES);
  readonly #kids = new BoundedCache<string, Buffer>(SEALER_CACHE_ENTRIES);
  readonly #random = new RandomPool();
  readonly #shared: SharedKeyring | undefined;
  /**
   * The person keys of the chunk `prepareSubjects` was given last, for `seal` to find (a fan-out seals a
   * chunk right after preparing it). Replaced at each call, never kept beyond it: a fan-out meets each
   * person once, and keys put in the bounded caches only to be evicted unused made garbage that lived
   * long enough to burden the old generation (and the caches of the hub's other work lost their entries).
   */
  #prepared = new Map<string, PreparedSubject>();

  constructor(keys: SealingKeys, ring: Keyring) {
    this.#keys = keys;
    this.#ring = ring;
    this.#shared = isSharedKeyring(ring) ? ring : undefined;
  }

  /**
   * On a key ring shared by several hubs: makes every key sealing these events needs (their people's, and
   * the years of record events) exist durably in the shared store and in the local copy, before any of
   * them is sealed (I9/I10: no event is appended under a key that could be lost). Undefined when the ring
   * is the hub's own (its keys are made durably as they are asked for).
   */
  prepareSeal(events: readonly NewEvent[]): Promise<void> | undefined {
    const shared = this.#shared;
    if (shared === undefined) return undefined;
    const subjects: string[] = [];
    const epochs: number[] = [];
    for (const event of events) {
      const spec = sealSpecOf(event.type);
      const data = event.data as Record<string, unknown> | null;
      if (spec === undefined || typeof data !== 'object' || data === null) continue;
      const subject = spec.subjectField === undefined ? undefined : data[spec.subjectField];
      if (typeof subject === 'string') subjects.push(subject);
      if (spec.keyClass === 'record') {
        const at = data[spec.timeField];
        // A missing or bad time is refused by seal itself, with its own error.
        if (typeof at === 'string' && !Number.isNaN(Date.parse(at))) epochs.push(epochOf(at));
      }
    }
    return subjects.length === 0 && epochs.length === 0 ? Promise.resolve() : shared.prepareSeal(subjects, epochs);
  }

  /**
   * On a key ring shared by several hubs: fetches the keys these stored events are sealed under that the
   * local copy lacks (a standby folding what the leader sealed), before they are opened. Undefined when
   * the ring is the hub's own.
   */
  prepareOpen(events: readonly StoredEventLike[]): Promise<void> | undefined {
    const shared = this.#shared;
    if (shared === undefined) return undefined;
    const kids: Buffer[] = [];
    const epochs: number[] = [];
    for (const event of events) {
      if (event.type === KEYS_SHREDDED) this.#applyShred(event);
      const section = sealedSectionOf(event);
      if (section === undefined) continue;
      const { kid, record, epoch } = this.#keyRefOf(section);
      if (!kid.equals(HUB_KID)) kids.push(kid);
      if (record) epochs.push(epoch);
    }
    return kids.length === 0 && epochs.length === 0 ? Promise.resolve() : shared.prepareOpen(kids, epochs);
  }

  /**
   * Makes sealing for these people cheaper, without changing what is sealed: their person keys read from
   * the key ring in one query (rings with `keysById`) and kept in the sealer's cache, so that `seal` finds
   * them there (a batch's chunk of recipients, none of whom any cache holds). A person with no key yet,
   * or a shredded one, is left to `seal` (which makes the key, or refuses).
   */
  prepareSubjects(subjectIds: readonly string[]): void {
    const ring = this.#ring;
    if (typeof ring.keysById !== 'function') return;
    const prepared = new Map<string, PreparedSubject>();
    this.#prepared = prepared;
    const wanted: string[] = [];
    const kids: Buffer[] = [];
    for (const subject of subjectIds) {
      if (this.#subjectKeys.get(subject) !== undefined) continue;
      wanted.push(subject);
      kids.push(this.#kids.get(subject) ?? personKid(this.#keys, subject));
    }
    if (kids.length === 0) return;
    const keys = ring.keysById(kids, { cache: false });
    keys.forEach((key, i) => {
      if (key !== undefined && key !== 'shredded') prepared.set(wanted[i]!, { kid: kids[i]!, key, epoch: -1, base: undefined });
    });
  }

  get keyring(): Keyring {
    return this.#ring;
  }

  /**
   * The stored form of a decided event. Throws UNSEALED_EVENT_TYPE for a type the catalog does not know,
   * KEY_SHREDDED for a person whose key was shredded.
   */
  seal(streamId: string, event: NewEvent): NewEvent {
    const spec = sealSpecOf(event.type);
    if (spec === undefined) {
      if (isClearEventType(event.type)) return event;
      throw new SealingError('UNSEALED_EVENT_TYPE', `the sealing catalog does not describe ${event.type}: say which of its fields are personal before it is appended`, { type: event.type });
    }
    const data = event.data as Record<string, unknown>;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new SealingError('INVALID_FIELD', `${event.type} data must be an object`);
    const clear: Record<string, unknown> = {};
    const values: Record<string, unknown> = {};
    const sealedNames = fieldIndex(spec);
    for (const k in data) {
      const v = data[k];
      if (v === undefined) continue;
      if (sealedNames.has(k)) values[k] = v;
      else clear[k] = v;
    }
    if ('sealed' in clear) throw new SealingError('INVALID_FIELD', `${event.type} already holds a "sealed" field`);
    const fields = Object.keys(values).sort();
    const storedVersion = storedVersionOf(spec, event.schemaVersion);
    if (fields.length === 0) return { ...event, schemaVersion: storedVersion, data: clear };

    const subject = spec.subjectField === undefined ? undefined : values[spec.subjectField];
    if (subject !== undefined && typeof subject !== 'string') throw new SealingError('INVALID_FIELD', `${event.type}.${spec.subjectField} must be a subject id`);
    const epoch = spec.keyClass === 'record' ? epochOf(String(data[spec.timeField])) : 0;
    const { kid, base } = this.#baseForSeal(spec, subject, epoch);

    const nonce = this.#random.take(16);
    const keys = eventKeys(base, nonce);
    // Each value's canonical text once: its commitment hashes it, and the box holds the RFC 8785 JSON of
    // the sealed fields, which is those texts under their (sorted) names.
    const commitments: Record<string, string> = {};
    let plaintext = '{';
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      const text = canonicalize(values[f]);
      if (text === undefined) throw new SealingError('INVALID_FIELD', `field ${f} of ${event.type} is not JSON`);
      commitments[f] = commitmentText(event.type, f, saltOf(keys, spec, f), text);
      plaintext += `${i === 0 ? '' : ','}${JSON.stringify(f)}:${text}`;
    }
    plaintext += '}';
    const plainBytes = Buffer.from(plaintext, 'utf8');
    const boxer = createCipheriv(AEAD, keys.box, ZERO_IV, { authTagLength: TAG });
    boxer.setAAD(boxAad(event.type, streamId), { plaintextLength: plainBytes.length });
    const box = Buffer.concat([boxer.update(plainBytes), boxer.final(), boxer.getAuthTag()]);
    const sealed: SealedSection = { v: 1, commitments, keyRef: this.#keyRef(kid, spec, epoch, nonce).toString('base64url'), nonce: nonce.toString('base64url'), box: box.toString('base64url') };
    return { ...event, schemaVersion: storedVersion, data: { ...clear, sealed } };
  }

  /** The event with its sealed fields back; `clear` for events with nothing sealed (and logs of before sealing). */
  open<E extends StoredEventLike = RecordedEvent>(event: E): Opened<E> {
    const section = sealedSectionOf(event);
    if (section === undefined) return { state: 'clear', event };
    const { sealed, ...clear } = event.data as Record<string, unknown> & { sealed: SealedSection };
    void sealed;
    const keys = this.#eventKeys(section);
    if (keys === 'shredded') return { state: 'shredded', event: { ...event, data: { ...clear, sealed: SHREDDED } } };
    const values = this.#openBox(event, section, keys);
    return { state: 'opened', event: { ...event, data: { ...clear, ...values } } };
  }

  /**
   * The openings of the fields of this event that `roles` own. A shredded event gives none (its values
   * are gone); a clear event has none.
   */
  openings(event: StoredEventLike, roles: ReadonlySet<FieldOwner>): Opening[] {
    const section = sealedSectionOf(event);
    const spec = sealSpecOf(event.type);
    if (section === undefined || spec === undefined) return [];
    const wanted = spec.fields.filter((f) => f.owners.some((o) => roles.has(o)) && section.commitments[f.name] !== undefined).map((f) => f.name);
    if (wanted.length === 0) return [];
    const keys = this.#eventKeys(section);
    if (keys === 'shredded') return [];
    const values = this.#openBox(event, section, keys);
    return wanted.sort().map((field) => ({ field, value: values[field], salt: saltOf(keys, spec, field).toString('base64url') }));
  }

  /**
   * A shred recorded in the log (KeysShredded), seen in a page of it: carried out on a shared ring at
   * once, so that every hub reading the log forgets the keys even before its ring follows the deleted
   * key streams (the hub that shredded carried it out already; shredding is idempotent).
   */
  #applyShred(event: StoredEventLike): void {
    const data = this.open(event).event.data as { scope?: unknown; subject?: unknown; throughEpoch?: unknown; shreddedAt?: unknown } | null;
    const at = typeof data?.shreddedAt === 'string' ? data.shreddedAt : new Date().toISOString();
    if (data?.scope === 'erasure' && typeof data.subject === 'string') {
      if (this.isErased(data.subject)) return;
      this.#ring.shredSubject(data.subject, at);
    } else if (data?.scope === 'retention' && typeof data.throughEpoch === 'number') {
      const through = data.throughEpoch;
      if (!this.#ring.liveEpochs().some((e) => e <= through)) return;
      this.#ring.shredEpochsThrough(through, at);
    } else return;
    this.forgetDerived();
  }

  /**
   * The reference the hub's projection files keep for a person (the id of their key, a keyed digest of the
   * subject id): what `referenceOf` reads from an event without opening its box.
   */
  personRef(subjectId: string): string {
    return this.#kidOf(subjectId).toString('hex');
  }

  #kidOf(subjectId: string): Buffer {
    let kid = this.#kids.get(subjectId);
    if (kid === undefined) {
      kid = personKid(this.#keys, subjectId);
      this.#kids.set(subjectId, kid);
    }
    return kid;
  }

  /** Whether this person's key was shredded (an erasure): nothing more is sealed or opened about them. */
  isErased(subjectId: string): boolean {
    return this.#ring.isShredded(this.#kidOf(subjectId));
  }

  /**
   * Whose event this is, cheaply: the person's reference from the event's key reference (one keyed hash),
   * null for an event about no person, 'shredded' when its person's key or its year's key is gone. Events
   * of logs written before sealing give the reference of the subject id they hold in clear, so a person's
   * old and new events file together.
   */
  referenceOf(event: StoredEventLike): string | null | 'shredded' {
    const section = sealedSectionOf(event);
    if (section === undefined) {
      const subjectId = (event.data as { subjectId?: unknown } | null)?.subjectId;
      return typeof subjectId === 'string' ? this.personRef(subjectId) : null;
    }
    const { kid, record, epoch } = this.#keyRefOf(section);
    if (record && this.#ring.isEpochShredded(epoch)) return 'shredded';
    if (kid.equals(HUB_KID)) return null;
    return this.#ring.isShredded(kid) ? 'shredded' : kid.toString('hex');
  }

  /** A keyed handle of a value in a domain (stream ids, claims, projection rows): hex, `bytes` long. */
  handle(domain: string, value: string, bytes = 16): string {
    return keyedHashHex('sha3-256', this.#keys.handle, ['linkage-ledger/handle/v1\0', domain, '\0', value]).slice(0, 2 * bytes);
  }

  /** Forgets derived and cached keys (after a shred). */
  forgetDerived(): void {
    this.#recordBases.clear();
    this.#subjectKeys.clear();
    this.#prepared = new Map();
  }

  #baseForSeal(spec: SealSpec, subject: string | undefined, epoch: number): { kid: Buffer; base: Buffer } {
    if (subject === undefined) {
      const key = this.#keys.hub;
      return { kid: HUB_KID, base: spec.keyClass === 'identity' ? key : (this.#recordBase(HUB_KID, key, epoch, true) as Buffer) };
    }
    const prepared = this.#prepared.get(subject);
    // A key shredded since it was read (by another hub sharing the ring, say) is shredded here too.
    if (prepared !== undefined && !this.#ring.isShredded(prepared.kid)) {
      if (spec.keyClass === 'identity') return { kid: prepared.kid, base: prepared.key };
      // The year's key is asked for each time (a year shredded since is refused); the base is kept for the chunk only.
      const period = this.#periodKeyForSeal(epoch);
      if (prepared.epoch !== epoch || prepared.base === undefined) {
        prepared.base = recordBaseOf(period, prepared.key);
        prepared.epoch = epoch;
      }
      return { kid: prepared.kid, base: prepared.base };
    }
    let found: RingKey | 'shredded' | undefined = this.#subjectKeys.get(subject);
    if (found !== undefined && this.#ring.isShredded(found.kid)) {
      this.#subjectKeys.delete(subject);
      found = 'shredded';
    }
    if (found === undefined) {
      found = this.#ring.subjectKey(subject, true);
      if (found !== undefined && found !== 'shredded') this.#subjectKeys.set(subject, found);
    }
    if (found === 'shredded' || found === undefined) throw new SealingError('KEY_SHREDDED', 'this person\'s key was shredded (erasure): nothing more is recorded about them', {});
    if (spec.keyClass === 'identity') return { kid: found.kid, base: found.key };
    // With create, a missing or shredded period key throws instead of answering 'shredded'.
    return { kid: found.kid, base: this.#recordBase(found.kid, found.key, epoch, true) as Buffer };
  }

  /** The period key of a year for sealing: made when missing; a shredded year is refused. */
  #periodKeyForSeal(epoch: number): Buffer {
    const period = this.#ring.isEpochShredded(epoch) ? 'shredded' : this.#ring.epochKey(epoch, true);
    if (period === 'shredded' || period === undefined) throw new SealingError('KEY_SHREDDED', `the period key of ${epoch} was shredded (retention): nothing more is sealed for that year`, { epoch });
    return period;
  }

  #recordBase(kid: Buffer, personKey: Buffer, epoch: number, create: boolean): Buffer | 'shredded' {
    const cacheKey = `${kid.toString('hex')}/${epoch}`;
    const cached = this.#recordBases.get(cacheKey);
    if (cached !== undefined && !(create && this.#ring.isEpochShredded(epoch))) return cached;
    const period = this.#ring.epochKey(epoch, create);
    if (period === 'shredded' || period === undefined) {
      if (create) throw new SealingError('KEY_SHREDDED', `the period key of ${epoch} was shredded (retention): nothing more is sealed for that year`, { epoch });
      return 'shredded';
    }
    const base = recordBaseOf(period, personKey);
    this.#recordBases.set(cacheKey, base);
    return base;
  }

  /**
   * kid ‖ class ‖ year XORed with a pad PRF(locator key, nonce): without the locator key it is noise, and
   * with a fresh nonce per event no two references are equal. It needs no tag of its own: a reference
   * altered in any bit names a wrong key, and the box then fails its AEAD check.
   */
  #keyRef(kid: Buffer, spec: SealSpec, epoch: number, nonce: Buffer): Buffer {
    const plain = Buffer.alloc(KID_BYTES + 3);
    kid.copy(plain, 0);
    plain.writeUInt8(spec.keyClass === 'record' ? CLASS_RECORD : CLASS_IDENTITY, KID_BYTES);
    plain.writeUInt16BE(epoch, KID_BYTES + 1);
    return xorPad(plain, prf(this.#keys.locator, KEY_REF, nonce));
  }

  /** The person key id, key class and year an event's key reference names. */
  #keyRefOf(section: SealedSection): { readonly kid: Buffer; readonly record: boolean; readonly epoch: number; readonly nonce: Buffer } {
    const ref = Buffer.from(section.keyRef, 'base64url');
    const nonce = Buffer.from(section.nonce, 'base64url');
    if (ref.length !== KID_BYTES + 3 || nonce.length !== 16) throw new SealingError('UNSEAL_FAILED', 'an event\'s key reference or nonce has the wrong length');
    const plain = xorPad(ref, prf(this.#keys.locator, KEY_REF, nonce));
    return { kid: plain.subarray(0, KID_BYTES), record: plain.readUInt8(KID_BYTES) === CLASS_RECORD, epoch: plain.readUInt16BE(KID_BYTES + 1), nonce };
  }

  /** The keys a sealed section was made with, or 'shredded' when a key it needs is gone. */
  #eventKeys(section: SealedSection): EventKeys | 'shredded' {
    const { kid, record, epoch, nonce } = this.#keyRefOf(section);
    let key: Buffer;
    if (kid.equals(HUB_KID)) key = this.#keys.hub;
    else {
      const found = this.#ring.keyById(kid);
      if (found === 'shredded') return 'shredded';
      if (found === undefined) throw new SealingError('UNSEAL_FAILED', 'an event names a person key that is not in the key ring: the ring (or the locator key) is not this log\'s, or the reference was altered');
      key = found;
    }
    let base: Buffer | 'shredded' = key;
    // A year shredded since its record bases were cached (by another hub sharing the ring, say) opens no more.
    if (record && this.#ring.isEpochShredded(epoch)) return 'shredded';
    if (record) base = this.#recordBase(kid, key, epoch, false);
    if (base === 'shredded') return 'shredded';
    return eventKeys(base, nonce);
  }

  #openBox(event: StoredEventLike, section: SealedSection, keys: EventKeys): Record<string, unknown> {
    const box = Buffer.from(section.box, 'base64url');
    try {
      const d = createDecipheriv(AEAD, keys.box, ZERO_IV, { authTagLength: TAG });
      d.setAAD(boxAad(event.type, event.streamId), { plaintextLength: box.length - TAG });
      d.setAuthTag(box.subarray(box.length - TAG));
      const text = Buffer.concat([d.update(box.subarray(0, box.length - TAG)), d.final()]).toString('utf8');
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new SealingError('UNSEAL_FAILED', `the sealed fields of a ${event.type} event in ${event.streamId} do not open: the box was altered or moved`);
    }
  }
}

/** A person key read for a chunk (`prepareSubjects`), with the record base of the year last sealed under it. */
interface PreparedSubject {
  readonly kid: Buffer;
  readonly key: Buffer;
  epoch: number;
  base: Buffer | undefined;
}

/** A record event's base key: the person's key bound to the year's (either shredded, the events open no more). */
function recordBaseOf(period: Buffer, personKey: Buffer): Buffer {
  return prf(period, 'linkage-ledger/record-base/v1\0', personKey);
}

const FIELD_INDEXES = new WeakMap<SealSpec, ReadonlyMap<string, number>>();

/** The place of each sealed field in its catalog entry. */
function fieldIndex(spec: SealSpec): ReadonlyMap<string, number> {
  let index = FIELD_INDEXES.get(spec);
  if (index === undefined) {
    index = new Map(spec.fields.map((f, i) => [f.name, i]));
    if (spec.fields.length * SALT_BYTES > 64) throw new SealingError('INVALID_FIELD', 'a catalog entry seals at most 4 fields');
    FIELD_INDEXES.set(spec, index);
  }
  return index;
}

function saltOf(keys: EventKeys, spec: SealSpec, field: string): Buffer {
  const i = fieldIndex(spec).get(field)!;
  return keys.salts.subarray(i * SALT_BYTES, (i + 1) * SALT_BYTES);
}

function xorPad(bytes: Buffer, pad: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! ^ pad[i]!;
  return out;
}

function boxAad(type: string, streamId: string): Buffer {
  return Buffer.from(`linkage-ledger/sealed/v1|${type}|${streamId}`, 'utf8');
}

/** The version an event is stored as: its own when it is one of the spec's later shapes, else the spec's. */
function storedVersionOf(spec: SealSpec, decided: number | undefined): number {
  return decided !== undefined && (spec.laterVersions ?? []).includes(decided) ? decided : spec.storedVersion;
}

/** The sealed section of a stored event, or undefined when it has none. */
export function sealedSectionOf(event: StoredEventLike): SealedSection | undefined {
  // Only the stored versions the catalog names carry one (older events may hold another "sealed" shape).
  const spec = sealSpecOf(event.type);
  if (spec === undefined || (spec.storedVersion !== event.schemaVersion && !(spec.laterVersions ?? []).includes(event.schemaVersion))) return undefined;
  const s = (event.data as { sealed?: unknown } | null)?.sealed;
  if (typeof s !== 'object' || s === null) return undefined;
  const o = s as Record<string, unknown>;
  if (o['v'] !== 1 || typeof o['keyRef'] !== 'string' || typeof o['nonce'] !== 'string' || typeof o['box'] !== 'string' || typeof o['commitments'] !== 'object' || o['commitments'] === null) {
    throw new SealingError('UNSEAL_FAILED', `a ${event.type} event in ${event.streamId} has a malformed sealed section`);
  }
  return s as SealedSection;
}

/** A sealer with fresh keys and a key ring in memory: for tests and tools that keep nothing. */
export function inMemorySealer(keys: SealingKeys = parseSealingKeys(generateSealingKeysFile(new Date()))): EventSealer {
  return new EventSealer(keys, new InMemoryKeyring(keys));
}
