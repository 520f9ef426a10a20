import type { RecordedEvent } from '#ledger';
import { isAgencyCode, type AgencyCode, type SubjectId } from '#linkage';
import { RESP_TYPES } from 'redis';
import { issuedCodeOf, pendingEvents, type IssuedCode } from './agency-code-events.js';
import type { CodeMapper, CodeMapperProjection, MappingEntry, Translation } from './code-mapper.port.js';
import type { CodeLocator } from './code-locator.js';
import { MapperError, MapperUnavailableError } from './errors.js';
import { compareEntries } from './in-memory-code-mapper.js';
import {
  CODE_BYTES,
  FILTER_BYTES,
  PERSON,
  RedisLayout,
  SUBJECT_BYTES,
  SUBJECT_RECORD_BYTES,
  allSubjectRecords,
  bucketBitsFor,
  codeRecord,
  subjectRecord,
  slotChunks,
  type RedisLayoutOptions,
} from './redis-layout.js';

/**
 * What the mapper needs of a node-redis client (`createClient(...)`, connected), or of a cluster client
 * (`clusterRedisLike(createMapperRedisCluster(...))`): commands routed by their first key.
 */
export interface RedisLike {
  sendCommand(args: ReadonlyArray<string | Buffer>, options?: { readonly typeMapping?: Record<number, unknown> }): Promise<unknown>;
  /** A cluster's masters, each as a client of its own: a listing (SCAN) walks every one. Absent: one server. */
  masters?(): Promise<readonly RedisLike[]>;
}

export interface RedisCodeMapperOptions extends Partial<RedisLayoutOptions> {
  /** Every operation (one batch) must finish within this, or it fails with MAPPER_UNAVAILABLE. Default 2000 ms. */
  readonly operationTimeoutMs?: number;
  /**
   * The hub's code locator (its code key): codes it minted are looked up in one round and need no code
   * bucket record. Every process of one keyspace MUST use the same key (the layout meta names it).
   */
  readonly locator?: CodeLocator;
  /**
   * What `open` does with data under the prefix written with another layout or code key: `refuse`
   * (LAYOUT_MISMATCH, the default) or `reset` (delete it; the projection then rebuilds from the log, I8).
   */
  readonly onLayoutMismatch?: 'refuse' | 'reset';
}

/** Defaults sized for ≈ 1,000,000 codes of ≈ 250,000 people (see bucketBitsFor). */
export const DEFAULT_LAYOUT: Omit<RedisLayoutOptions, 'subjectTag'> = { prefix: 'lm', ...bucketBitsFor(1_000_000, 250_000), slotGroupBits: 8 };

// Binary-safe replies under RESP2 and RESP3 alike: bulk strings as Buffers, maps (HGETALL) as flat [field, value, …] arrays.
const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.MAP]: Array } } as const;
/** Keys per MGET / MSET: bounds one command's size. */
const KEYS_PER_COMMAND = 1000;
type Value = Buffer | null;

const UNKNOWN: Translation = Object.freeze({ status: 'unknown-code' });

/**
 * The Redis code mapper: a projection of AgencyCodeIssued events (I8) in the layout of redis-layout.ts.
 * A batch of codes the hub minted (with the locator) costs one round of one MGET per slot group: the
 * subject buckets the codes name. Other codes cost two more: their code buckets, then their subject
 * buckets. The client searches the returned buckets. Single writer: one process applies events (the
 * projection runner); any number of processes read.
 */
export class RedisCodeMapper implements CodeMapper, CodeMapperProjection {
  readonly layout: RedisLayout;
  readonly #client: RedisLike;
  readonly #timeoutMs: number;
  readonly #locator: CodeLocator | undefined;
  readonly #onMismatch: 'refuse' | 'reset';
  #ordinals = new Map<string, number>();
  #agencies: string[] = [];
  #checkpoint: number | undefined;
  readonly #numbering: { readonly c: BucketNumbering; readonly s: BucketNumbering };

  private constructor(client: RedisLike, layout: RedisLayout, options: RedisCodeMapperOptions) {
    this.#client = client;
    this.layout = layout;
    this.#timeoutMs = options.operationTimeoutMs ?? 2000;
    this.#locator = options.locator;
    this.#onMismatch = options.onLayoutMismatch ?? 'refuse';
    this.#numbering = { c: new BucketNumbering(layout.codeBucketBits), s: new BucketNumbering(layout.subjectBucketBits) };
  }

  /** Opens the mapper on a connected client: checks (or writes) the layout and loads the agency ordinals. */
  static async open(client: RedisLike, options: RedisCodeMapperOptions = {}): Promise<RedisCodeMapper> {
    const layout = new RedisLayout({ ...DEFAULT_LAYOUT, ...options });
    const mapper = new RedisCodeMapper(client, layout, options);
    await mapper.#guard('open', async () => {
      await mapper.#ensureMeta();
      await mapper.#loadAgencies();
    });
    return mapper;
  }

  // ---- lookups ----

  async resolve(agencyId: string, code: string): Promise<SubjectId | undefined> {
    return (await this.resolveMany(agencyId, [code]))[0];
  }

  async resolveMany(agencyId: string, codes: readonly string[]): Promise<(SubjectId | undefined)[]> {
    const found = await this.#guard('resolve', () => this.#lookupCodes(agencyId, codes, undefined));
    return found.map((t) => (t.status === 'unknown-code' ? undefined : t.subjectId));
  }

  async translate(fromAgencyId: string, code: string, toAgencyId: string): Promise<Translation> {
    return (await this.translateMany(fromAgencyId, [code], toAgencyId))[0]!;
  }

  translateMany(fromAgencyId: string, codes: readonly string[], toAgencyId: string): Promise<Translation[]> {
    return this.#guard('translate', () => this.#lookupCodes(fromAgencyId, codes, toAgencyId));
  }

  async codeFor(subjectId: string, agencyId: string): Promise<AgencyCode | undefined> {
    return (await this.codeForMany(agencyId, [subjectId]))[0];
  }

  async codeForMany(agencyId: string, subjectIds: readonly string[]): Promise<(AgencyCode | undefined)[]> {
    return this.#guard('codeFor', async () => {
      const ordinal = await this.#ordinal(agencyId);
      if (ordinal === undefined) return subjectIds.map(() => undefined);
      const layout = this.layout;
      const items = subjectIds.map((s) => {
        const subject = layout.subjectBytes(s);
        if (!subject) return undefined;
        const tag = layout.tagOf(subject);
        return { subject, tag, bucket: layout.subjectBucketAt(tag, 0) };
      });
      const buckets = await this.#fetchMap('s', items.flatMap((i) => (i ? [i.bucket] : [])));
      return items.map((item) => {
        if (!item) return undefined;
        const bucket = buckets.get(item.bucket) ?? null;
        const rest = item.tag.readUInt32BE(layout.subjectBucketBytes);
        const index = findPerson(bucket, rest, item.subject);
        if (index < 0) return undefined;
        const at = findRecord(bucket!, rest, ordinal, index);
        return at < 0 ? undefined : layout.codeOf(bucket!, at);
      });
    });
  }

  /**
   * Codes the hub minted name their subject tag (sealed, see code-locator.ts): round 1 reads those
   * subject buckets, each code opened under the key of the ring it names. After a rotation, a code not
   * found there is tried under the ring's other keys in one more round (a mark matched by chance). A
   * code still not found (drawn at random, minted under a key the ring lacks, or unknown) takes the long way: its code bucket names the candidate tags, and round 3 reads those subject
   * buckets. In a subject bucket, the source agency's code records (compared in full) give the
   * person's index, the person records give the subject, and the target agency's records its code.
   * This is the hub's hot path: it works on offsets into the fetched buckets and allocates little more
   * than the answers.
   */
  async #lookupCodes(fromAgencyId: string, codes: readonly string[], toAgencyId: string | undefined): Promise<Translation[]> {
    const n = codes.length;
    const out = new Array<Translation>(n).fill(UNKNOWN);
    const from = await this.#ordinal(fromAgencyId);
    if (from === undefined || n === 0) return out;
    const to = toAgencyId === undefined ? -1 : ((await this.#ordinal(toAgencyId)) ?? -1);
    const layout = this.layout;
    const tagBytes = layout.tagBytes;
    const raw = Buffer.allocUnsafe(n * CODE_BYTES);
    let items: number[] = [];
    for (let i = 0; i < n; i++) {
      const code = codes[i]!;
      if (!isAgencyCode(code)) continue;
      raw.write(code, i * CODE_BYTES, CODE_BYTES, 'base64url');
      items.push(i);
    }
    if (items.length === 0) return out;

    if (this.#locator !== undefined) {
      const opened = this.#locator.open(raw);
      const tags = Buffer.allocUnsafe(items.length * tagBytes);
      for (let k = 0; k < items.length; k++) opened.copy(tags, k * tagBytes, items[k]! * CODE_BYTES, items[k]! * CODE_BYTES + tagBytes);
      await this.#probe(items, tags, raw, from, to, out);
      let missed: number[] = [];
      for (const i of items) if (out[i] === UNKNOWN) missed.push(i);
      if (missed.length === 0) return out;
      // After a code key rotation: a code whose opening under the key its mark chose found nothing may
      // be another key's code that carries that mark by chance (1 in 65,536 per newer key). One more
      // round tries its openings under the other keys, whose codes keep no code bucket record.
      const ring = this.#locator.size;
      if (ring > 1) {
        const missedRaw = Buffer.allocUnsafe(missed.length * CODE_BYTES);
        for (let k = 0; k < missed.length; k++) raw.copy(missedRaw, k * CODE_BYTES, missed[k]! * CODE_BYTES, (missed[k]! + 1) * CODE_BYTES);
        const chosen = this.#locator.open(missedRaw);
        const each = this.#locator.openUnderEach(missedRaw);
        const probeItem: number[] = [];
        const others = Buffer.allocUnsafe(missed.length * (ring - 1) * tagBytes);
        for (let k = 0; k < missed.length; k++) {
          for (const opened of each) {
            if (opened.compare(chosen, k * CODE_BYTES, k * CODE_BYTES + tagBytes, k * CODE_BYTES, k * CODE_BYTES + tagBytes) === 0) continue;
            opened.copy(others, probeItem.length * tagBytes, k * CODE_BYTES, k * CODE_BYTES + tagBytes);
            probeItem.push(missed[k]!);
          }
        }
        if (probeItem.length > 0) await this.#probe(probeItem, others, raw, from, to, out);
        missed = missed.filter((i) => out[i] === UNKNOWN);
        if (missed.length === 0) return out;
      }
      items = missed;
    }

    const wanted = new Array<number>(items.length);
    for (let k = 0; k < items.length; k++) wanted[k] = layout.codeBucketAt(raw, items[k]! * CODE_BYTES);
    let codeBuckets: { values: Value[]; slots: Int32Array } | undefined = await this.#fetch('c', wanted);
    // Probes: (item, candidate tag). Tags are copied out so that the code buckets can be collected
    // while the next round is in flight (what survives a scavenge is what costs).
    const probeItem: number[] = [];
    let tags = Buffer.allocUnsafe(items.length * tagBytes);
    const skip = layout.codeBucketBytes;
    const recordBytes = layout.codeRecordBytes;
    for (let k = 0; k < items.length; k++) {
      const i = items[k]!;
      const bucket = codeBuckets.values[codeBuckets.slots[k]!];
      if (!bucket) continue;
      if (bucket.length % recordBytes !== 0) throw new MapperError('LAYOUT_MISMATCH', `a code bucket of ${bucket.length} bytes is not a list of ${recordBytes}-byte records`);
      const at = i * CODE_BYTES + skip;
      const [f0, f1, f2, f3] = [raw[at]!, raw[at + 1]!, raw[at + 2]!, raw[at + 3]!];
      for (let r = 0; r < bucket.length; r += recordBytes) {
        if (bucket[r] !== f0 || bucket[r + 1] !== f1 || bucket[r + 2] !== f2 || bucket[r + 3] !== f3) continue;
        const probe = probeItem.length;
        if ((probe + 1) * tagBytes > tags.length) tags = Buffer.concat([tags, Buffer.allocUnsafe(tags.length)]);
        bucket.copy(tags, probe * tagBytes, r + FILTER_BYTES, r + FILTER_BYTES + tagBytes);
        probeItem.push(i);
      }
    }
    codeBuckets = undefined;
    if (probeItem.length > 0) await this.#probe(probeItem, tags, raw, from, to, out);
    return out;
  }

  /**
   * Probe p looks for the code of item probeItem[p] (16 bytes at raw[item * 16]) under the subject tag at
   * tags[p * tagBytes]; a hit fills out[item]. Reads the probed subject buckets in one round.
   */
  async #probe(probeItem: readonly number[], tags: Buffer, raw: Buffer, from: number, to: number, out: Translation[]): Promise<void> {
    const layout = this.layout;
    const tagBytes = layout.tagBytes;
    const probeBucket = new Array<number>(probeItem.length);
    for (let p = 0; p < probeItem.length; p++) probeBucket[p] = layout.subjectBucketAt(tags, p * tagBytes);
    const subjectBuckets = await this.#fetch('s', probeBucket);
    const restAt = layout.subjectBucketBytes;
    for (let p = 0; p < probeItem.length; p++) {
      const i = probeItem[p]!;
      if (out[i] !== UNKNOWN) continue;
      const bucket = subjectBuckets.values[subjectBuckets.slots[p]!];
      if (!bucket) continue;
      if (bucket.length % SUBJECT_RECORD_BYTES !== 0) throw new MapperError('LAYOUT_MISMATCH', `a subject bucket of ${bucket.length} bytes is not a list of ${SUBJECT_RECORD_BYTES}-byte records`);
      // One pass over the records under this tag: the source code gives the person's index; the
      // person's record and the target code are noted for index 0 (the usual case) on the way.
      let index = -1;
      let personAt = -1;
      let targetAt = -1;
      const t = p * tagBytes + restAt;
      const [t0, t1, t2, t3] = [tags[t]!, tags[t + 1]!, tags[t + 2]!, tags[t + 3]!];
      for (let r = 0; r < bucket.length; r += SUBJECT_RECORD_BYTES) {
        if (bucket[r] !== t0 || bucket[r + 1] !== t1 || bucket[r + 2] !== t2 || bucket[r + 3] !== t3) continue;
        const ordinal = ordinalAt(bucket, r);
        if (ordinal === from) {
          if (index < 0 && raw.compare(bucket, r + 8, r + 8 + CODE_BYTES, i * CODE_BYTES, (i + 1) * CODE_BYTES) === 0) {
            index = bucket[r + 7]!;
            if (to === from) targetAt = r + 8;
          }
        } else if (bucket[r + 7] === 0) {
          if (ordinal === PERSON) personAt = r + 8;
          else if (ordinal === to) targetAt = r + 8;
        }
      }
      if (index < 0) continue;
      if (index !== 0) {
        const rest = tags.readUInt32BE(t);
        personAt = findRecord(bucket, rest, PERSON, index);
        targetAt = to < 0 ? -1 : findRecord(bucket, rest, to, index);
      }
      if (personAt < 0) continue;
      const subjectId = layout.subjectOf(bucket, personAt);
      out[i] = targetAt < 0 ? { status: 'no-target-code', subjectId } : { status: 'translated', subjectId, code: layout.codeOf(bucket, targetAt) };
    }
  }

  /**
   * Reads whole buckets: one MGET per slot group (all its keys share one cluster slot). Answers the
   * values of the distinct buckets and, per input, the position of its bucket among them.
   */
  async #fetch(kind: 'c' | 's', buckets: ArrayLike<number>): Promise<{ readonly values: Value[]; readonly slots: Int32Array }> {
    const layout = this.layout;
    const { slots, distinct } = this.#numbering[kind].number(buckets);
    const byGroup = new Map<number, number[]>();
    for (let d = 0; d < distinct.length; d++) {
      const g = layout.groupOf(distinct[d]!);
      const list = byGroup.get(g);
      if (list) list.push(d);
      else byGroup.set(g, [d]);
    }
    const values = new Array<Value>(distinct.length).fill(null);
    const requests: Promise<void>[] = [];
    for (const list of byGroup.values()) {
      for (let k = 0; k < list.length; k += KEYS_PER_COMMAND) {
        const chunk = list.length <= KEYS_PER_COMMAND ? list : list.slice(k, k + KEYS_PER_COMMAND);
        const args = ['MGET'];
        for (const d of chunk) args.push(layout.bucketKey(kind, distinct[d]!));
        requests.push(
          this.#send(args).then((reply) => {
            const got = reply as Value[];
            for (let j = 0; j < chunk.length; j++) values[chunk[j]!] = got[j] ?? null;
          }),
        );
      }
    }
    await Promise.all(requests);
    return { values, slots };
  }

  /** The same read, as bucket → value (the write path folds over it). */
  async #fetchMap(kind: 'c' | 's', buckets: readonly number[]): Promise<Map<number, Value>> {
    const { values, slots } = await this.#fetch(kind, buckets);
    const out = new Map<number, Value>();
    for (let i = 0; i < buckets.length; i++) out.set(buckets[i]!, values[slots[i]!]!);
    return out;
  }

  // ---- projection ----

  async checkpoint(): Promise<number> {
    return this.#guard('checkpoint', async () => {
      const v = (await this.#send(['GET', this.layout.checkpointKey])) as Value;
      return v === null ? -1 : Number(v.toString());
    });
  }

  async apply(events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.#guard('apply', async () => {
      this.#checkpoint ??= await this.checkpoint();
      const pending = pendingEvents(events, this.#checkpoint);
      if (pending.length === 0) return;
      const issued = pending.map(issuedCodeOf).filter((x): x is IssuedCode => x !== undefined);
      if (issued.length > 0) await this.#write(issued);
      const last = pending[pending.length - 1]!.position;
      await this.#send(['SET', this.layout.checkpointKey, String(last)]);
      this.#checkpoint = last;
    });
  }

  /** Folds the batch over the buckets Redis holds, in event order, and writes each changed bucket whole (exact-size strings). */
  async #write(issued: readonly IssuedCode[]): Promise<void> {
    const layout = this.layout;
    await this.#registerAgencies(issued.map((i) => i.agencyId));
    // Every code of the batch opened in one call: a minted code's opened block starts with its subject's tag.
    const codes = Buffer.concat(issued.map((i) => layout.codeBytes(i.code)!));
    const opened = this.#locator?.open(codes);
    const rows = issued.map((i, k) => {
      const code = codes.subarray(k * CODE_BYTES, (k + 1) * CODE_BYTES);
      const subject = layout.subjectBytes(i.subjectId)!;
      const tag = layout.tagOf(subject);
      const located = opened !== undefined && opened.compare(tag, 0, tag.length, k * CODE_BYTES, k * CODE_BYTES + tag.length) === 0;
      return { i, code, subject, tag, located, sBucket: layout.subjectBucketAt(tag, 0), cBucket: layout.codeBucketAt(code, 0) };
    });
    const subjectBuckets = await this.#fetchMap('s', rows.map((r) => r.sBucket));
    const codeBuckets = await this.#fetchMap('c', rows.flatMap((r) => (r.located ? [] : [r.cBucket])));
    const changed = { s: new Set<number>(), c: new Set<number>() };
    for (const r of rows) {
      const rest = r.tag.readUInt32BE(layout.subjectBucketBytes);
      const tagRest = r.tag.subarray(layout.subjectBucketBytes);
      let bucket = subjectBuckets.get(r.sBucket) ?? null;
      let index = findPerson(bucket, rest, r.subject);
      if (index < 0) {
        index = countPeople(bucket, rest);
        bucket = append(bucket, subjectRecord(tagRest, PERSON, index, r.subject));
      }
      const ordinal = this.#ordinals.get(r.i.agencyId)!;
      const held = bucket ? findRecord(bucket, rest, ordinal, index) : -1;
      if (held >= 0) {
        if (r.code.compare(bucket!, held, held + CODE_BYTES) !== 0) {
          throw new MapperError('CODE_CONFLICT', `event at position ${r.i.position} gives ${r.i.agencyId} a second code for one subject; the ledger's stream per (subject, agency) should have refused it`);
        }
      } else {
        bucket = append(bucket, subjectRecord(tagRest, ordinal, index, r.code));
      }
      if (bucket !== (subjectBuckets.get(r.sBucket) ?? null)) {
        subjectBuckets.set(r.sBucket, bucket);
        changed.s.add(r.sBucket);
      }
      if (r.located) continue; // the code names its subject bucket itself: no code bucket record
      const record = codeRecord(r.code, layout.codeBucketBytes, r.tag);
      const codes = codeBuckets.get(r.cBucket) ?? null;
      if (!hasRecord(codes, record)) {
        codeBuckets.set(r.cBucket, append(codes, record));
        changed.c.add(r.cBucket);
      }
    }
    await Promise.all([this.#store('s', changed.s, subjectBuckets), this.#store('c', changed.c, codeBuckets)]);
  }

  /** MSET per slot group of the changed buckets. */
  async #store(kind: 'c' | 's', buckets: ReadonlySet<number>, values: ReadonlyMap<number, Value>): Promise<void> {
    const byGroup = new Map<number, number[]>();
    for (const b of buckets) {
      const g = this.layout.groupOf(b);
      const list = byGroup.get(g);
      if (list) list.push(b);
      else byGroup.set(g, [b]);
    }
    const requests: Promise<unknown>[] = [];
    for (const list of byGroup.values()) {
      for (let k = 0; k < list.length; k += KEYS_PER_COMMAND) {
        const args: (string | Buffer)[] = ['MSET'];
        for (const b of list.slice(k, k + KEYS_PER_COMMAND)) args.push(this.layout.bucketKey(kind, b), values.get(b)!);
        requests.push(this.#send(args, {}));
      }
    }
    await Promise.all(requests);
  }

  async reset(): Promise<void> {
    await this.#guard('reset', async () => {
      await this.#unlinkAll();
      this.#ordinals.clear();
      this.#agencies = [];
      this.#checkpoint = -1;
      await this.#ensureMeta();
    });
  }

  /** Deletes every key of this mapper, meta included (tests and benchmarks clean up with it). */
  async drop(): Promise<void> {
    await this.#guard('drop', () => this.#unlinkAll());
    this.#ordinals.clear();
    this.#agencies = [];
    this.#checkpoint = undefined;
  }

  async entries(): Promise<MappingEntry[]> {
    return this.#guard('entries', async () => {
      await this.#loadAgencies();
      const out: MappingEntry[] = [];
      const keys = await this.#scan(this.layout.keyPattern('subject-buckets'));
      for (const chunk of slotChunks(keys, KEYS_PER_COMMAND)) {
        const values = (await this.#send(['MGET', ...chunk])) as Value[];
        values.forEach((bucket, j) => {
          if (!bucket) return;
          const records = allSubjectRecords(bucket);
          const people = new Map<string, number>();
          for (const r of records) if (r.ordinal === PERSON) people.set(`${r.tagRest}/${r.index}`, r.payloadAt);
          for (const r of records) {
            if (r.ordinal === PERSON) continue;
            const agencyId = this.#agencies[r.ordinal];
            const personAt = people.get(`${r.tagRest}/${r.index}`);
            if (agencyId === undefined || personAt === undefined) throw new MapperError('LAYOUT_MISMATCH', `a code record in ${chunk[j]} points to a missing agency or person`);
            out.push({ subjectId: this.layout.subjectOf(bucket, personAt), agencyId, code: this.layout.codeOf(bucket, r.payloadAt) });
          }
        });
      }
      return out.sort(compareEntries);
    });
  }

  /**
   * Every key of this mapper with its content (hex), prefix removed: two mappers with equal dumps hold
   * the same bytes.
   */
  async dump(): Promise<[string, string[]][]> {
    return this.#guard('dump', async () => {
      const out: [string, string[]][] = [];
      for (const key of (await this.#scan(this.layout.keyPattern('all'))).sort()) {
        const type = String(await this.#send(['TYPE', key], {}));
        let content: string[];
        if (type === 'hash') {
          const flat = (await this.#send(['HGETALL', key])) as Buffer[];
          content = [];
          for (let i = 0; i < flat.length; i += 2) content.push(`${flat[i]!.toString()}=${flat[i + 1]!.toString()}`);
          content.sort();
        } else if (type === 'list') {
          content = ((await this.#send(['LRANGE', key, '0', '-1'])) as Buffer[]).map((b) => b.toString());
        } else {
          content = [((await this.#send(['GET', key])) as Value)?.toString('hex') ?? ''];
        }
        out.push([key.slice(this.layout.prefix.length), content]);
      }
      return out;
    });
  }

  // ---- plumbing ----

  async #ensureMeta(): Promise<void> {
    const flat = (await this.#send(['HGETALL', this.layout.metaKey])) as Buffer[];
    const expected = { ...this.layout.meta(), codeKey: this.#locator?.fingerprint ?? 'none' };
    if (flat.length > 0) {
      const stored: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) stored[flat[i]!.toString()] = flat[i + 1]!.toString();
      const differs = Object.entries(expected).find(([k, v]) => stored[k] !== v);
      if (differs === undefined) return;
      const [k, v] = differs;
      if (this.#onMismatch === 'refuse') {
        throw new MapperError('LAYOUT_MISMATCH', `Redis data under prefix "${this.layout.prefix}" has ${k}=${stored[k] ?? '(none)'}, this mapper uses ${v}; open it with the same layout and code key, rebuild into a new prefix, or open with onLayoutMismatch: 'reset'`);
      }
      await this.#unlinkAll(); // a projection: rebuilt from the log from position 0 (I8)
    }
    await this.#send(['HSET', this.layout.metaKey, ...Object.entries(expected).flat()]);
  }

  async #loadAgencies(): Promise<void> {
    const list = ((await this.#send(['LRANGE', this.layout.agenciesKey, '0', '-1'])) as Buffer[]).map((b) => b.toString());
    this.#agencies = list;
    this.#ordinals = new Map(list.map((a, i) => [a, i]));
  }

  async #ordinal(agencyId: string): Promise<number | undefined> {
    const known = this.#ordinals.get(agencyId);
    if (known !== undefined) return known;
    await this.#loadAgencies(); // another process may have applied this agency's first code
    return this.#ordinals.get(agencyId);
  }

  /** Gives each agency seen for the first time the next ordinal, in event order (so a rebuild assigns the same). */
  async #registerAgencies(agencyIds: readonly string[]): Promise<void> {
    const fresh = [...new Set(agencyIds)].filter((a) => !this.#ordinals.has(a));
    if (fresh.length === 0) return;
    await this.#loadAgencies();
    const missing = fresh.filter((a) => !this.#ordinals.has(a));
    if (missing.length === 0) return;
    if (this.#agencies.length + missing.length > PERSON) throw new MapperError('TOO_MANY_AGENCIES', `the mapper layout holds at most ${PERSON} agencies`);
    const length = Number(await this.#send(['RPUSH', this.layout.agenciesKey, ...missing], {}));
    if (length !== this.#agencies.length + missing.length) {
      throw new MapperError('LAYOUT_MISMATCH', 'another writer registered agencies concurrently; run a single projection writer per prefix');
    }
    for (const a of missing) {
      this.#ordinals.set(a, this.#agencies.length);
      this.#agencies.push(a);
    }
  }

  /** Every key matching `pattern`: SCAN on the one server, or on every master of a cluster. */
  async #scan(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    const nodes = this.#client.masters === undefined ? [this.#client] : await this.#client.masters();
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, batch] = (await node.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'], {})) as [string, string[]];
        cursor = String(next);
        keys.push(...batch.map(String));
      } while (cursor !== '0');
    }
    return [...new Set(keys)];
  }

  async #unlinkAll(): Promise<void> {
    const keys = await this.#scan(this.layout.keyPattern('all'));
    for (const chunk of slotChunks(keys, KEYS_PER_COMMAND)) await this.#send(['UNLINK', ...chunk], {});
  }

  #send(args: ReadonlyArray<string | Buffer>, options: { readonly typeMapping?: Record<number, unknown> } = BUFFERS): Promise<unknown> {
    return this.#client.sendCommand(args, options);
  }

  /** Runs one operation under the deadline and turns every driver failure into MAPPER_UNAVAILABLE. */
  async #guard<T>(operation: string, run: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MapperUnavailableError(`Redis mapper ${operation} did not finish within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      return await Promise.race([run(), deadline]);
    } catch (error) {
      if (error instanceof MapperError) throw error;
      throw new MapperUnavailableError(`Redis mapper ${operation} failed: ${error instanceof Error ? error.message : String(error)}`, error);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Numbers the distinct buckets of one batch densely. Bucket spaces up to 2^20 use two typed arrays
 * stamped with a generation (no clearing, no Map); larger ones a Map. `number` runs synchronously, so
 * concurrent batches cannot interleave inside it.
 */
class BucketNumbering {
  readonly #stamp: Int32Array | undefined;
  readonly #slot: Int32Array | undefined;
  #generation = 0;

  constructor(bits: number) {
    if (bits <= 20) {
      this.#stamp = new Int32Array(2 ** bits);
      this.#slot = new Int32Array(2 ** bits);
    }
  }

  number(buckets: ArrayLike<number>): { readonly slots: Int32Array; readonly distinct: number[] } {
    const slots = new Int32Array(buckets.length);
    const distinct: number[] = [];
    const stamp = this.#stamp;
    const slot = this.#slot;
    if (stamp && slot) {
      if (this.#generation === 0x7fffffff) {
        stamp.fill(0);
        this.#generation = 0;
      }
      const generation = ++this.#generation;
      for (let i = 0; i < buckets.length; i++) {
        const b = buckets[i]!;
        if (stamp[b] !== generation) {
          stamp[b] = generation;
          slot[b] = distinct.length;
          distinct.push(b);
        }
        slots[i] = slot[b]!;
      }
    } else {
      const seen = new Map<number, number>();
      for (let i = 0; i < buckets.length; i++) {
        const b = buckets[i]!;
        let d = seen.get(b);
        if (d === undefined) {
          d = distinct.length;
          seen.set(b, d);
          distinct.push(b);
        }
        slots[i] = d;
      }
    }
    return { slots, distinct };
  }
}

// ---- scanning a subject bucket (fixed 24-byte records: tag rest, ordinal, index, payload) ----

function ordinalAt(bucket: Buffer, r: number): number {
  return (bucket[r + 4]! << 16) | (bucket[r + 5]! << 8) | bucket[r + 6]!;
}

/** Offset of the payload of the record (tag rest, ordinal, index), or -1. */
function findRecord(bucket: Buffer, rest: number, ordinal: number, index: number): number {
  for (let r = 0; r < bucket.length; r += SUBJECT_RECORD_BYTES) {
    if (bucket.readUInt32BE(r) === rest && bucket[r + 7] === index && ordinalAt(bucket, r) === ordinal) return r + 8;
  }
  return -1;
}

/** The index of `subject` among the people under a tag rest, or -1. */
function findPerson(bucket: Value, rest: number, subject: Buffer): number {
  if (!bucket) return -1;
  for (let r = 0; r < bucket.length; r += SUBJECT_RECORD_BYTES) {
    if (bucket.readUInt32BE(r) === rest && ordinalAt(bucket, r) === PERSON && subject.compare(bucket, r + 8, r + 8 + SUBJECT_BYTES) === 0) return bucket[r + 7]!;
  }
  return -1;
}

function countPeople(bucket: Value, rest: number): number {
  let n = 0;
  if (bucket) for (let r = 0; r < bucket.length; r += SUBJECT_RECORD_BYTES) if (bucket.readUInt32BE(r) === rest && ordinalAt(bucket, r) === PERSON) n++;
  return n;
}

function hasRecord(bucket: Value, record: Buffer): boolean {
  if (!bucket) return false;
  for (let r = 0; r < bucket.length; r += record.length) if (record.compare(bucket, r, r + record.length) === 0) return true;
  return false;
}

function append(bucket: Value, record: Buffer): Buffer {
  return bucket ? Buffer.concat([bucket, record]) : record;
}

