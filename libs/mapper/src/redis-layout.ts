import { isAgencyCode, isSubjectId, type AgencyCode, type SubjectId } from '#linkage';
import { sha256Tag } from './code-locator.js';
import { MapperError } from './errors.js';

/**
 * How the Redis code mapper lays out its data: compact, binary, bucketed, and ready for Redis Cluster.
 * Everything here is pure byte arithmetic, unit-tested without Redis.
 *
 * Keys (P = prefix; g = slot group in base 36; r = the rest of the bucket number in base 36):
 *   P:meta          hash    layout version and bucket bits; a mapper refuses data of another layout
 *   P:agencies      list    agency ids in order of their first code; the index is the agency's ordinal
 *   P:checkpoint    string  position of the last applied event
 *   P:c{g}r         string  code bucket: records [4 bytes of a code][its subject's tag], for codes that
 *                           do not carry their locator (code-locator.ts): drawn at random or under another key
 *   P:s{g}r         string  subject bucket: records of 24 bytes
 *                             [tag rest 4][FF FF FF][index 1][subject id 16]   a person
 *                             [tag rest 4][agency ordinal 3][index 1][code 16] that person's code at that agency
 *
 * A bucket is one plain string of fixed-size records in the order they were applied, so a rebuild
 * from the log writes the same bytes (I8), and Redis spends no per-entry overhead on it. A batch reads
 * whole buckets with one MGET per slot group (Redis' cheapest multi-key read) and searches them in the
 * client; no Lua, no per-field work on the server. A code minted by the hub carries its subject tag
 * sealed under the hub's code key (code-locator.ts): its lookup reads the subject bucket directly (one
 * round) and it has no code bucket record, so code buckets stay empty in a hub that minted its codes.
 *
 * The hash tag `{g}` puts every bucket of one slot group into one cluster hash slot, so one MGET (or
 * MSET) per group is valid on Redis Cluster; 2^slotGroupBits groups spread the data over as many slots.
 * P:meta, P:agencies and P:checkpoint carry no tag: each is read and written alone (HGETALL / HSET,
 * LRANGE / RPUSH, GET / SET), never with another key. The mapper sends no MULTI, pipeline or script; the
 * commands over keys it listed (MGET in entries(), UNLINK in drop()/reset()) go in `slotChunks`, and a
 * listing SCANs every master of a cluster.
 *
 * Collisions are resolved exactly, never assumed away: a code bucket record matches on 4 bytes only
 * and the full code is compared in the subject bucket; a subject tag (a SHA-256 prefix) may be shared,
 * so every person under a tag has an index (the order of their first code) that their code records carry.
 */
export const LAYOUT_VERSION = 'lm3';
const HEX_DIGITS = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const UUID_SCRATCH = Buffer.alloc(36);
export const CODE_BYTES = 16;
export const SUBJECT_BYTES = 16;
export const FILTER_BYTES = 4;
/** tag rest 4, ordinal 3, index 1, payload 16. */
export const SUBJECT_RECORD_BYTES = 24;
const ORDINAL_AT = FILTER_BYTES;
const INDEX_AT = FILTER_BYTES + 3;
const PAYLOAD_AT = FILTER_BYTES + 4;
/** The ordinal field of a person's record. */
export const PERSON = 0xffffff;
export const MAX_AGENCIES = PERSON;

export interface RedisLayoutOptions {
  /** Key prefix, e.g. `lm`. Letters, digits, `.`, `_`, `-`, `:`; two mappers' prefixes must not be prefixes of each other. */
  readonly prefix: string;
  /** 2^bits code buckets. Size for ≈ 16 codes per bucket: ⌈log2(codes / 16)⌉. 8–24. */
  readonly codeBucketBits: number;
  /** 2^bits subject buckets. Size for ≈ 5 records (people + codes) per bucket: one read per translation returns ≈ 120 bytes. 8–24. */
  readonly subjectBucketBits: number;
  /** 2^bits slot groups (cluster hash tags). At most the smaller of the bucket bits; 0–14. */
  readonly slotGroupBits: number;
  /** Test hook: the subject tag function (default: a SHA-256 prefix). A weak one forces collisions. */
  readonly subjectTag?: (subject: Buffer, length: number) => Buffer;
}

/**
 * Bucket bits for an expected number of codes and people: ≈ 16 codes per code bucket, ≈ 5 records per
 * subject bucket (each within a factor √2). Small subject buckets keep the one read of a translation
 * short (Redis' cost per key grows with the bytes it sends); bigger ones would save key overhead.
 */
export function bucketBitsFor(codes: number, people: number): { readonly codeBucketBits: number; readonly subjectBucketBits: number } {
  const bits = (n: number, per: number): number => Math.min(24, Math.max(8, Math.round(Math.log2(Math.max(1, n) / per))));
  return { codeBucketBits: bits(codes, 16), subjectBucketBits: bits(codes + people, 5) };
}

export interface BucketAddress {
  readonly key: string;
  readonly group: number;
}

export class RedisLayout {
  readonly prefix: string;
  readonly codeBucketBits: number;
  readonly subjectBucketBits: number;
  readonly slotGroupBits: number;
  readonly metaKey: string;
  readonly agenciesKey: string;
  readonly checkpointKey: string;
  /** Bytes of a subject tag: the subject bucket bytes, then the 4-byte rest. */
  readonly tagBytes: number;
  /** Bytes of a code bucket record: 4 bytes of the code, then the tag. */
  readonly codeRecordBytes: number;
  readonly codeBucketBytes: number;
  readonly subjectBucketBytes: number;
  readonly #tag: (subject: Buffer, length: number) => Buffer;
  // Key names by bucket number: arrays while the bucket space is small enough (≤ 2^20), maps beyond.
  readonly #keys: { readonly c: KeyCache; readonly s: KeyCache };

  constructor(options: RedisLayoutOptions) {
    const { prefix, codeBucketBits, subjectBucketBits, slotGroupBits } = options;
    if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(prefix)) {
      throw new MapperError('LAYOUT_MISMATCH', `prefix "${prefix}" must be 1–64 letters, digits, '.', '_', ':' or '-' (no glob characters)`);
    }
    for (const [name, bits] of [['codeBucketBits', codeBucketBits], ['subjectBucketBits', subjectBucketBits]] as const) {
      if (!Number.isInteger(bits) || bits < 8 || bits > 24) throw new MapperError('LAYOUT_MISMATCH', `${name} must be an integer from 8 to 24`);
    }
    if (!Number.isInteger(slotGroupBits) || slotGroupBits < 0 || slotGroupBits > 14 || slotGroupBits > Math.min(codeBucketBits, subjectBucketBits)) {
      throw new MapperError('LAYOUT_MISMATCH', 'slotGroupBits must be an integer from 0 to 14 and at most the smaller bucket bits');
    }
    this.prefix = prefix;
    this.codeBucketBits = codeBucketBits;
    this.subjectBucketBits = subjectBucketBits;
    this.slotGroupBits = slotGroupBits;
    this.metaKey = `${prefix}:meta`;
    this.agenciesKey = `${prefix}:agencies`;
    this.checkpointKey = `${prefix}:checkpoint`;
    this.codeBucketBytes = Math.ceil(codeBucketBits / 8);
    this.subjectBucketBytes = Math.ceil(subjectBucketBits / 8);
    this.tagBytes = this.subjectBucketBytes + FILTER_BYTES;
    this.codeRecordBytes = FILTER_BYTES + this.tagBytes;
    this.#keys = { c: keyCache(codeBucketBits), s: keyCache(subjectBucketBits) };
    this.#tag = options.subjectTag ?? sha256Tag;
  }

  /** What `P:meta` holds; a mapper opened with other values refuses the data. */
  meta(): Record<string, string> {
    return { layout: LAYOUT_VERSION, codeBucketBits: String(this.codeBucketBits), subjectBucketBits: String(this.subjectBucketBits), slotGroupBits: String(this.slotGroupBits) };
  }

  /** Match pattern for every key of this layout, or for the subject buckets only. */
  keyPattern(kind: 'all' | 'subject-buckets'): string {
    return kind === 'all' ? `${this.prefix}:*` : `${this.prefix}:s{*`;
  }

  // ---- identifiers ----

  codeBytes(code: string): Buffer | undefined {
    return isAgencyCode(code) ? Buffer.from(code, 'base64url') : undefined;
  }

  codeOf(bytes: Buffer, at = 0): AgencyCode {
    return bytes.toString('base64url', at, at + CODE_BYTES) as AgencyCode;
  }

  subjectBytes(subjectId: string): Buffer | undefined {
    return isSubjectId(subjectId) ? Buffer.from(subjectId.replaceAll('-', ''), 'hex') : undefined;
  }

  /** The canonical UUID of the 16 bytes at `at`: written into a scratch buffer, one string allocated. */
  subjectOf(bytes: Buffer, at = 0): SubjectId {
    const out = UUID_SCRATCH;
    let o = 0;
    for (let i = 0; i < SUBJECT_BYTES; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) out[o++] = 0x2d;
      const b = bytes[at + i]!;
      out[o++] = HEX_DIGITS[b >> 4]!;
      out[o++] = HEX_DIGITS[b & 15]!;
    }
    return out.toString('latin1', 0, 36) as SubjectId;
  }

  tagOf(subject: Buffer): Buffer {
    const tag = this.#tag(subject, this.tagBytes);
    if (tag.length !== this.tagBytes) throw new MapperError('LAYOUT_MISMATCH', `subject tag must be ${this.tagBytes} bytes`);
    return tag;
  }

  // ---- addresses ----

  /** Bucket number of the code at `offset` of `bytes` (its first bytes). */
  codeBucketAt(bytes: Buffer, offset: number): number {
    return bucketOf(bytes, offset, this.codeBucketBytes, this.codeBucketBits);
  }

  /** Bucket number of the tag at `offset` of `bytes` (its first bytes). */
  subjectBucketAt(bytes: Buffer, offset: number): number {
    return bucketOf(bytes, offset, this.subjectBucketBytes, this.subjectBucketBits);
  }

  groupOf(bucket: number): number {
    return bucket & ((1 << this.slotGroupBits) - 1);
  }

  /** The key of a bucket (names are cached: a batch touches thousands). */
  bucketKey(kind: 'c' | 's', bucket: number): string {
    const cache = this.#keys[kind];
    let key = cache.get(bucket);
    if (key === undefined) {
      key = `${this.prefix}:${kind}{${this.groupOf(bucket).toString(36)}}${(bucket >>> this.slotGroupBits).toString(36)}`;
      cache.set(bucket, key);
    }
    return key;
  }

  address(kind: 'c' | 's', bucket: number): BucketAddress {
    return { key: this.bucketKey(kind, bucket), group: this.groupOf(bucket) };
  }
}

/**
 * The part of a key Redis Cluster hashes to choose its slot: the text between the first `{` and the next
 * `}` when that is not empty, else the whole key. Keys with one hash tag share one slot, so a multi-key
 * command (MGET, MSET, UNLINK) over keys grouped by it is valid on a cluster.
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** Keys grouped by hash tag (so by cluster slot), in chunks of at most `size`: each chunk is one valid multi-key command. */
export function slotChunks(keys: readonly string[], size: number): string[][] {
  const byTag = new Map<string, string[]>();
  for (const key of keys) {
    const tag = hashTagOf(key);
    const list = byTag.get(tag);
    if (list) list.push(key);
    else byTag.set(tag, [key]);
  }
  const out: string[][] = [];
  for (const list of byTag.values()) for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

interface KeyCache {
  get(bucket: number): string | undefined;
  set(bucket: number, key: string): void;
}

function keyCache(bits: number): KeyCache {
  if (bits > 20) return new Map<number, string>();
  const names = new Array<string | undefined>(2 ** bits).fill(undefined);
  return {
    get: (bucket) => names[bucket],
    set: (bucket, key) => {
      names[bucket] = key;
    },
  };
}

function bucketOf(bytes: Buffer, offset: number, n: number, bits: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + bytes[offset + i]!;
  return v % 2 ** bits;
}

// ---- code bucket records ----

/** Offsets (in `bucket`) of the tags filed under the 4 code bytes at `code[at..at+4)`. */
export function tagsInCodeBucket(bucket: Buffer | null, recordBytes: number, code: Buffer, at: number): number[] {
  const out: number[] = [];
  if (!bucket) return out;
  checkRecords(bucket, recordBytes);
  const filter = code.readUInt32BE(at);
  for (let r = 0; r < bucket.length; r += recordBytes) if (bucket.readUInt32BE(r) === filter) out.push(r + FILTER_BYTES);
  return out;
}

export function codeRecord(code: Buffer, codeBucketBytes: number, tag: Buffer): Buffer {
  return Buffer.concat([code.subarray(codeBucketBytes, codeBucketBytes + FILTER_BYTES), tag]);
}

// ---- subject bucket records ----

/** One record of a subject bucket. `ordinal` is PERSON for a person's record. */
export function subjectRecord(tagRest: Buffer, ordinal: number, index: number, payload: Buffer): Buffer {
  if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal > PERSON) throw new MapperError('TOO_MANY_AGENCIES', `the mapper layout holds at most ${MAX_AGENCIES} agencies`);
  if (index > 255) throw new MapperError('TAG_OVERFLOW', 'more than 256 people share one subject tag: the subject tag function is broken (the default SHA-256 prefix never gets there)');
  const r = Buffer.allocUnsafe(SUBJECT_RECORD_BYTES);
  tagRest.copy(r, 0, 0, FILTER_BYTES);
  r.writeUIntBE(ordinal, ORDINAL_AT, 3);
  r[INDEX_AT] = index;
  payload.copy(r, PAYLOAD_AT, 0, 16);
  return r;
}

export interface SubjectRecordView {
  readonly ordinal: number;
  readonly index: number;
  /** Offset of the 16-byte payload (subject id or code) in the bucket. */
  readonly payloadAt: number;
}

/** The records of a subject bucket under one tag rest (the 4 bytes at `tagRest[at..at+4)`), in order. */
export function recordsUnderTag(bucket: Buffer | null, tagRest: Buffer, at: number): SubjectRecordView[] {
  const out: SubjectRecordView[] = [];
  if (!bucket) return out;
  checkRecords(bucket, SUBJECT_RECORD_BYTES);
  const rest = tagRest.readUInt32BE(at);
  for (let r = 0; r < bucket.length; r += SUBJECT_RECORD_BYTES) {
    if (bucket.readUInt32BE(r) === rest) out.push({ ordinal: bucket.readUIntBE(r + ORDINAL_AT, 3), index: bucket[r + INDEX_AT]!, payloadAt: r + PAYLOAD_AT });
  }
  return out;
}

/** Every record of a subject bucket (for listing and dumps). */
export function allSubjectRecords(bucket: Buffer): (SubjectRecordView & { readonly tagRest: number })[] {
  checkRecords(bucket, SUBJECT_RECORD_BYTES);
  const out: (SubjectRecordView & { readonly tagRest: number })[] = [];
  for (let r = 0; r < bucket.length; r += SUBJECT_RECORD_BYTES) {
    out.push({ tagRest: bucket.readUInt32BE(r), ordinal: bucket.readUIntBE(r + ORDINAL_AT, 3), index: bucket[r + INDEX_AT]!, payloadAt: r + PAYLOAD_AT });
  }
  return out;
}

function checkRecords(bucket: Buffer, size: number): void {
  if (bucket.length % size !== 0) throw new MapperError('LAYOUT_MISMATCH', `a bucket of ${bucket.length} bytes is not a list of ${size}-byte records`);
}
