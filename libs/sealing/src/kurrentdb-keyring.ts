import {
  END,
  NO_STREAM,
  START,
  STREAM_EXISTS,
  StreamDeletedError,
  StreamNotFoundError,
  WrongExpectedVersionError,
  jsonEvent,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AppendStreamState,
  type EventData,
  type Filter,
  type Position,
  type ReadPosition,
  type ResolvedEvent,
} from '@kurrent/kurrentdb-client';
import { randomBytes } from 'node:crypto';
import { SealingError } from './errors.js';
import { holdsKek, personKid, unwrapKey, wrapKey, type RingKey, type SharedKeyring } from './keyring.js';
import { currentKekId, type SealingKeys } from './keys.js';
import type { SqliteKeyring } from './sqlite-keyring.js';

/**
 * What the shared key ring uses of a KurrentDB client. `KurrentDBClient` from `@kurrent/kurrentdb-client`
 * is one; the tests pass the in-process stand-in.
 */
export interface KurrentKeyClient {
  appendToStream(streamName: string, events: EventData[], options: { streamState: AppendStreamState }): Promise<unknown>;
  readStream(streamName: string, options: { fromRevision: bigint | 'start' | 'end'; maxCount: bigint; direction?: 'forwards' | 'backwards' }): AsyncIterable<ResolvedEvent>;
  readAll(options: { fromPosition?: ReadPosition; maxCount?: number | bigint; filter?: Filter }): AsyncIterable<AllStreamResolvedEvent>;
  tombstoneStream(streamName: string): Promise<unknown>;
}

/** The event that makes a person key: the only event of its stream. */
export const PERSON_KEY_MADE = 'PersonKeyMade';
/** The event that makes the period key of a year: the only event of its stream. */
export const PERIOD_KEY_MADE = 'PeriodKeyMade';
/**
 * A key re-wrapped under a new key-encryption key (a rotation): appended to the key's own stream, so the
 * stream's last event holds the wrap in use, and hard-deleting the stream (shredding) still removes every
 * wrap of the key.
 */
export const KEY_REWRAPPED = 'KeyRewrapped';
/** The type of the tombstone KurrentDB writes to $all when a stream is hard-deleted. */
const STREAM_DELETED = '$streamDeleted';
/** The local ring's meta key holding how far it has read the key streams in $all (`commit/prepare`). */
const FOLLOWED_META = 'kurrentdb-followed-position';
/** The local ring's meta key saying its own keys were put into KurrentDB (`publish`). */
const PUBLISHED_META = 'kurrentdb-published-at';

interface KeyMadeData {
  readonly v: 1;
  /** The sealing key set the key is wrapped under (its kid): a ring of other keys refuses it. */
  readonly keySet: string;
  readonly wrapped: string;
  readonly createdAt: string;
  readonly kid?: string;
  readonly epoch?: number;
  /** The key-encryption key the wrap is made under; absent: the key set's first KEK (its kid). */
  readonly kek?: string;
  /** On KeyRewrapped: when. */
  readonly rewrappedAt?: string;
}

export interface KurrentKeyringOptions {
  readonly client: KurrentKeyClient;
  /** The hub's own copy, its cache (`keyring.sqlite` in its data dir). */
  readonly local: SqliteKeyring;
  readonly keys: SealingKeys;
  /** The log stream the keys belong to: key streams are `<it>-key-<kid hex>` and `<it>-epoch-<year>`. */
  readonly logStream: string;
  readonly now?: () => Date;
  /** Told of a failure of a background step (following, fetching a key a fold missed, a deletion to retry). */
  readonly onError?: (error: unknown) => void;
  /** Told after each background follow that succeeded (to say a failure is over). */
  readonly onFollowed?: () => void;
  /** Keys made or fetched at once in one `prepare` (default 32). */
  readonly concurrency?: number;
  /** Events per read of $all while following (default 1000). */
  readonly followPage?: number;
}

/** The stream of one person's key. */
export function personKeyStream(logStream: string, kid: Buffer): string {
  return `${logStream}-key-${kid.toString('hex')}`;
}

/** The stream of one year's period key. */
export function periodKeyStream(logStream: string, epoch: number): string {
  return `${logStream}-epoch-${epoch}`;
}

/**
 * The key ring of the hubs that share one KurrentDB log. KurrentDB holds the durable, shared copy: one
 * stream per person key (`<log>-key-<kid hex>`) and per period key (`<log>-epoch-<year>`), each holding
 * one event with the key wrapped under the key-encryption key (AES-256-GCM, as in the SQLite ring: no key
 * is ever stored in clear). Each hub keeps a local SqliteKeyring as its cache, from which every
 * synchronous call of the sealer and the folds is answered.
 *
 * - Making a key: `prepareSeal` appends it with expected revision "no stream" before anything is sealed
 *   under it, then keeps it locally. Of two hubs making one person's key at once, KurrentDB refuses one
 *   (wrong expected version) and that one reads and keeps the winner's key: one key per person, ever.
 * - Opening: `prepareOpen` fetches the keys events name that the local copy lacks; `follow` reads the key
 *   streams' events in $all (filtered by their prefixes) from where it stopped, so a standby has the keys
 *   of what the leader appends; a key a fold asks for and misses is fetched in the background.
 * - Shredding: the key's stream is hard-deleted (a tombstone: it can never be written again, so an erased
 *   person is never keyed anew, and its data leaves KurrentDB at the next scavenge), and the local copy is
 *   cleared. The tombstone is in $all, so every hub following clears its own copy; a deletion KurrentDB
 *   did not confirm is retried at each follow.
 */
export class KurrentKeyring implements SharedKeyring {
  readonly #client: KurrentKeyClient;
  readonly #local: SqliteKeyring;
  #keys: SealingKeys;
  readonly #logStream: string;
  readonly #now: () => Date;
  readonly #onError: (error: unknown) => void;
  readonly #onFollowed: () => void;
  readonly #concurrency: number;
  readonly #followPage: number;
  readonly #inflight = new Map<string, Promise<void>>();
  /** Streams whose hard delete is not confirmed yet. */
  readonly #toDelete = new Set<string>();
  readonly #deleting = new Set<Promise<void>>();
  #followed: Position | undefined;
  #following: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: KurrentKeyringOptions) {
    this.#client = options.client;
    this.#local = options.local;
    this.#keys = options.keys;
    this.#logStream = options.logStream;
    this.#now = options.now ?? (() => new Date());
    this.#onError = options.onError ?? (() => undefined);
    this.#onFollowed = options.onFollowed ?? (() => undefined);
    this.#concurrency = options.concurrency ?? 32;
    this.#followPage = options.followPage ?? 1000;
    const followed = this.#local.meta(FOLLOWED_META);
    if (followed !== undefined) {
      const [commit, prepare] = followed.split('/');
      this.#followed = { commit: BigInt(commit!), prepare: BigInt(prepare!) };
    }
  }

  /** The local copy (the hub's cache of the shared ring). */
  get local(): SqliteKeyring {
    return this.#local;
  }

  // The synchronous Keyring: answered from the local copy.

  subjectKey(subjectId: string, create: boolean): RingKey | 'shredded' | undefined {
    const found = this.#local.subjectKey(subjectId, false);
    if (found !== undefined || !create) return found;
    throw new SealingError('KEY_NOT_READY', 'this person\'s key was not made ready in the shared key ring before sealing (prepareSeal)');
  }

  isShredded(kid: Buffer): boolean {
    return this.#local.isShredded(kid);
  }

  isEpochShredded(epoch: number): boolean {
    return this.#local.isEpochShredded(epoch);
  }

  ensureSubjectKeys(subjectIds: readonly string[]): void {
    void subjectIds;
    throw new SealingError('KEY_NOT_READY', 'a shared key ring makes keys only through prepareSeal (asynchronous: KurrentDB holds them first)');
  }

  keyById(kid: Buffer): Buffer | 'shredded' | undefined {
    const found = this.#local.keyById(kid);
    // Not here yet (a standby that has not followed that far): fetched now, so that the fold's retry finds it.
    if (found === undefined && !this.#closed) void this.prepareOpen([kid], []).catch(this.#onError);
    return found;
  }

  epochKey(epoch: number, create: boolean): Buffer | 'shredded' | undefined {
    const found = this.#local.epochKey(epoch, false);
    if (found !== undefined) return found;
    if (create) throw new SealingError('KEY_NOT_READY', `the period key of ${epoch} was not made ready in the shared key ring before sealing (prepareSeal)`);
    if (!this.#closed) void this.prepareOpen([], [epoch]).catch(this.#onError);
    return undefined;
  }

  shredSubject(subjectId: string, at: string): boolean {
    const kid = personKid(this.#keys, subjectId);
    const changed = this.#local.shredSubject(subjectId, at);
    // Recorded as shredded even if this hub never held it (another hub made it): it is never kept anew.
    if (!this.#local.isShredded(kid)) this.#local.markShredded(kid, at);
    this.#delete(personKeyStream(this.#logStream, kid));
    return changed;
  }

  shredEpochsThrough(throughEpoch: number, at: string): number[] {
    const shredded = this.#local.shredEpochsThrough(throughEpoch, at);
    for (const epoch of this.#local.shreddedEpochs()) if (epoch <= throughEpoch) this.#delete(periodKeyStream(this.#logStream, epoch));
    return shredded;
  }

  liveEpochs(): number[] {
    return this.#local.liveEpochs();
  }

  // Making the local copy ready.

  async prepareSeal(subjectIds: readonly string[], epochs: readonly number[]): Promise<void> {
    const work: (() => Promise<void>)[] = [];
    const seen = new Set<string>();
    for (const subjectId of subjectIds) {
      const kid = personKid(this.#keys, subjectId);
      const hex = kid.toString('hex');
      if (seen.has(hex)) continue;
      seen.add(hex);
      if (this.#local.keyById(kid) === undefined) work.push(() => this.#once(`key-${hex}`, () => this.#makeSubject(kid)));
    }
    for (const epoch of new Set(epochs)) {
      if (this.#local.epochKey(epoch, false) === undefined) work.push(() => this.#once(`epoch-${epoch}`, () => this.#makeEpoch(epoch)));
    }
    await this.#run(work);
  }

  async prepareOpen(kids: readonly Buffer[], epochs: readonly number[]): Promise<void> {
    const work: (() => Promise<void>)[] = [];
    const seen = new Set<string>();
    for (const kid of kids) {
      const hex = kid.toString('hex');
      if (seen.has(hex)) continue;
      seen.add(hex);
      if (this.#local.keyById(kid) === undefined) work.push(() => this.#once(`key-${hex}`, () => this.#fetchSubject(kid)));
    }
    for (const epoch of new Set(epochs)) {
      if (this.#local.epochKey(epoch, false) === undefined) work.push(() => this.#once(`epoch-${epoch}`, () => this.#fetchEpoch(epoch)));
    }
    await this.#run(work);
  }

  /**
   * Reads the key streams' events in $all from where the last call stopped (kept in the local copy, so a
   * restart goes on from there): keys made by other hubs are kept, deleted streams cleared. Also retries
   * the deletions KurrentDB has not confirmed. Concurrent calls share one read.
   */
  follow(): Promise<void> {
    this.#following ??= this.#follow().finally(() => {
      this.#following = undefined;
    });
    return this.#following;
  }

  /**
   * Puts every key of the local copy into KurrentDB that is not there yet, and deletes there every key the
   * local copy holds as shredded: a hub whose ring was its own file (before its log moved to KurrentDB, or
   * before the ring was shared) hands its keys to the other hubs. A key KurrentDB already holds is left as
   * it is (the local copy then keeps its own, which is the same unless two rings were made apart: refused
   * then, as a key of another key set would be). Done once per local copy (remembered in it); idempotent.
   */
  async publish(): Promise<{ readonly keys: number; readonly shredded: number }> {
    if (this.#local.meta(PUBLISHED_META) !== undefined) return { keys: 0, shredded: 0 };
    let keys = 0;
    let shredded = 0;
    let after: Buffer | undefined;
    for (;;) {
      const page = this.#local.subjectPage(after, 500);
      if (page.length === 0) break;
      after = page.at(-1)!.kid;
      await this.#run(
        page.map((row) => async () => {
          const stream = personKeyStream(this.#logStream, row.kid);
          if (row.wrapped === null) {
            this.#delete(stream);
            shredded++;
            return;
          }
          const at = this.#now().toISOString();
          const made = await this.#append(stream, PERSON_KEY_MADE, { v: 1, keySet: this.#keys.kid, kid: row.kid.toString('hex'), wrapped: row.wrapped.toString('base64url'), createdAt: at, ...kekField(this.#keys, row.kek) });
          if (made === 'made') keys++;
          else if (made === 'deleted') this.#local.markShredded(row.kid, at);
          else await this.#sameAsShared(stream, row.wrapped, row.kek);
        }),
      );
    }
    for (const row of this.#local.epochEntries()) {
      const stream = periodKeyStream(this.#logStream, row.epoch);
      if (row.wrapped === null) {
        this.#delete(stream);
        shredded++;
        continue;
      }
      const at = this.#now().toISOString();
      const made = await this.#append(stream, PERIOD_KEY_MADE, { v: 1, keySet: this.#keys.kid, epoch: row.epoch, wrapped: row.wrapped.toString('base64url'), createdAt: at, ...kekField(this.#keys, row.kek) });
      if (made === 'made') keys++;
      else if (made === 'deleted') this.#local.markEpochShredded(row.epoch, at);
      else await this.#sameAsShared(stream, row.wrapped, row.kek);
    }
    await this.settled();
    if (this.#toDelete.size === 0) this.#local.setMeta(PUBLISHED_META, this.#now().toISOString());
    return { keys, shredded };
  }

  /** A local key that KurrentDB holds too must be the same key (unwrapped: each wrap has its own IV). */
  async #sameAsShared(stream: string, wrapped: Buffer, kek: string | null): Promise<void> {
    const found = await this.#read(stream);
    if (found === undefined || found === 'deleted') return;
    const what = stream.startsWith(`${this.#logStream}-key-`) ? `subject|${stream.slice(stream.lastIndexOf('-') + 1)}` : `epoch|${stream.slice(stream.lastIndexOf('-') + 1)}`;
    const shared = this.#wrappedOf(stream, found);
    if (!unwrapKey(this.#keys, what, shared.wrapped, shared.kek).equals(unwrapKey(this.#keys, what, wrapped, kek))) {
      throw new SealingError('INVALID_KEYS', `${stream} holds another key than this hub's key ring: two rings were made apart for one log; keep the one the log was sealed under`);
    }
  }

  /** Follows at once, then every `everyMs` in the background until closed (failures go to `onError`). */
  startFollowing(everyMs: number): void {
    if (this.#timer !== undefined || this.#closed) return;
    const follow = () => void this.follow().then(this.#onFollowed, this.#onError);
    follow();
    this.#timer = setInterval(follow, everyMs);
    this.#timer.unref();
  }

  /** Waits for the deletions started so far (each confirmed by KurrentDB, or left to retry). */
  async settled(): Promise<void> {
    while (this.#deleting.size > 0) await Promise.allSettled([...this.#deleting]);
  }

  /** Whether a hard delete of a key stream is still to be confirmed by KurrentDB. */
  get pendingDeletions(): number {
    return this.#toDelete.size;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#local.close();
  }

  async #follow(): Promise<void> {
    for (const stream of [...this.#toDelete]) this.#delete(stream);
    const prefix = `${this.#logStream}-`;
    const filter = streamNameFilter({ prefixes: [`${prefix}key-`, `${prefix}epoch-`] });
    for (;;) {
      if (this.#closed) return;
      const from = this.#followed;
      let read = 0;
      let last: Position | undefined;
      try {
        for await (const resolved of this.#client.readAll({ fromPosition: from ?? START, maxCount: this.#followPage, filter })) {
          read++;
          const event = resolved.event;
          if (event === undefined) continue;
          // A read from a position includes the event at it: the one kept last time.
          if (from !== undefined && event.position.commit === from.commit && event.position.prepare === from.prepare) continue;
          if (this.#closed) return;
          this.#take(event.streamId, event.type, event.data);
          last = event.position;
        }
      } catch (error) {
        throw unavailable('read the key streams', error);
      }
      if (last !== undefined) {
        this.#followed = last;
        this.#local.setMeta(FOLLOWED_META, `${last.commit}/${last.prepare}`);
      }
      if (read < this.#followPage) return;
    }
  }

  /** One event of a key stream, read in $all. */
  #take(streamId: string, type: string, data: unknown): void {
    const at = this.#now().toISOString();
    const what = this.#streamKind(streamId);
    if (what === undefined) return;
    if (type === STREAM_DELETED) {
      if (what.kind === 'key') this.#local.markShredded(what.kid, at);
      else this.#local.markEpochShredded(what.epoch, at);
      return;
    }
    if (type !== PERSON_KEY_MADE && type !== PERIOD_KEY_MADE && type !== KEY_REWRAPPED) return;
    const { wrapped, kek } = this.#wrappedOf(streamId, data);
    if (!holdsKek(this.#keys, kek)) {
      // A wrap under a KEK this hub does not hold (any more): a retired one, superseded by a later
      // KeyRewrapped of the same stream; if none follows, the key is fetched when asked for, and fails there.
      return;
    }
    if (type === KEY_REWRAPPED) {
      // A rotation on another hub: its new KEK (read from the shared keys dir) wraps what this hub makes from now on.
      if (kek !== null && kek !== currentKekId(this.#keys)) this.#adopt(kek);
      if (what.kind === 'key') {
        if (!this.#local.replaceWrapped(what.kid, wrapped, kek) && this.#local.keyById(what.kid) === undefined && !this.#local.isShredded(what.kid)) this.#local.storeWrapped(what.kid, wrapped, at, kek);
      } else if (!this.#local.replaceWrappedEpoch(what.epoch, wrapped, kek) && this.#local.epochKey(what.epoch, false) === undefined && !this.#local.isEpochShredded(what.epoch)) this.#local.storeWrappedEpoch(what.epoch, wrapped, at, kek);
      return;
    }
    if (what.kind === 'key') {
      if (this.#local.keyById(what.kid) === undefined) this.#local.storeWrapped(what.kid, wrapped, at, kek);
    } else if (this.#local.epochKey(what.epoch, false) === undefined) this.#local.storeWrappedEpoch(what.epoch, wrapped, at, kek);
  }

  /** Makes a KEK another hub rotated to this hub's current one (the previous current one kept for opening). */
  #adopt(kekId: string): void {
    // A KEK this hub holds as an earlier one is older than its current one (a re-wrap of an earlier rotation, read again).
    if (this.#keys.previousKeks?.has(kekId) === true) return;
    const key = this.#keys.loadKek?.(kekId);
    if (key === undefined) return;
    const previous = new Map(this.#keys.previousKeks ?? []);
    if (this.#keys.keyEncryption.length === 32) previous.set(currentKekId(this.#keys), this.#keys.keyEncryption);
    previous.delete(kekId);
    this.useKeys({ ...this.#keys, keyEncryption: key, kekId, previousKeks: previous });
  }

  /** The key set this ring wraps and opens with. */
  get keys(): SealingKeys {
    return this.#keys;
  }

  /** Goes on with the same key set under other key-encryption keys (a rotation): see SqliteKeyring.useKeys. */
  useKeys(next: SealingKeys): void {
    this.#local.useKeys(next);
    this.#keys = next;
  }

  /**
   * Re-wraps one page of keys under the current key-encryption key: for each person key of the local copy
   * after `afterKid` (up to `limit`, key id order; with `epochs` also every period key) whose wrap is under
   * another KEK, a KeyRewrapped event with the new wrap is appended to the key's stream (which must
   * exist: a deleted one is a shredded key, recorded so), then the local copy keeps the new wrap. Call
   * `follow()` first, so that the local copy holds every key the shared ring does. A rerun re-wraps only
   * what is still under another KEK.
   */
  async rewrapPage(afterKid: Buffer | undefined, limit: number, options: { readonly epochs?: boolean } = {}): Promise<{ personKeys: number; periodKeys: number; last: Buffer | undefined }> {
    const current = currentKekId(this.#keys);
    let personKeys = 0;
    let periodKeys = 0;
    const rows = this.#local.subjectPage(afterKid, limit);
    const at = () => this.#now().toISOString();
    await this.#run(
      rows
        .filter((row) => row.wrapped !== null && (row.kek ?? this.#keys.kid) !== current)
        .map((row) => async () => {
          const hex = row.kid.toString('hex');
          const what = `subject|${hex}`;
          const wrapped = wrapKey(this.#keys, what, unwrapKey(this.#keys, what, row.wrapped!, row.kek));
          const done = await this.#appendRewrap(personKeyStream(this.#logStream, row.kid), { v: 1, keySet: this.#keys.kid, kid: hex, wrapped: wrapped.toString('base64url'), createdAt: at(), kek: current, rewrappedAt: at() });
          if (done === 'deleted') this.#local.markShredded(row.kid, at());
          else if (this.#local.replaceWrapped(row.kid, wrapped, kekColumn(this.#keys, current))) personKeys++;
        }),
    );
    if (options.epochs === true) {
      for (const row of this.#local.epochEntries()) {
        if (row.wrapped === null || (row.kek ?? this.#keys.kid) === current) continue;
        const what = `epoch|${row.epoch}`;
        const wrapped = wrapKey(this.#keys, what, unwrapKey(this.#keys, what, row.wrapped, row.kek));
        const done = await this.#appendRewrap(periodKeyStream(this.#logStream, row.epoch), { v: 1, keySet: this.#keys.kid, epoch: row.epoch, wrapped: wrapped.toString('base64url'), createdAt: at(), kek: current, rewrappedAt: at() });
        if (done === 'deleted') this.#local.markEpochShredded(row.epoch, at());
        else if (this.#local.replaceWrappedEpoch(row.epoch, wrapped, kekColumn(this.#keys, current))) periodKeys++;
      }
    }
    return { personKeys, periodKeys, last: rows.length < limit ? undefined : rows.at(-1)!.kid };
  }

  /** Appends a KeyRewrapped event to an existing key stream: 'deleted' when the stream was hard-deleted (shredded). */
  async #appendRewrap(stream: string, data: KeyMadeData): Promise<'done' | 'deleted' | 'missing'> {
    try {
      await this.#client.appendToStream(stream, [jsonEvent({ type: KEY_REWRAPPED, data: { ...data } })], { streamState: STREAM_EXISTS });
      return 'done';
    } catch (error) {
      if (error instanceof StreamDeletedError) return 'deleted';
      if (error instanceof WrongExpectedVersionError) {
        // Not in KurrentDB at all (a key this hub's copy holds that was never published): published now, re-wrapped.
        const made = await this.#append(stream, data.kid !== undefined ? PERSON_KEY_MADE : PERIOD_KEY_MADE, data);
        return made === 'deleted' ? 'deleted' : made === 'made' ? 'done' : this.#appendRewrap(stream, data);
      }
      throw unavailable(`re-wrap the key of ${stream}`, error);
    }
  }

  #streamKind(streamId: string): { kind: 'key'; kid: Buffer } | { kind: 'epoch'; epoch: number } | undefined {
    const keyPrefix = `${this.#logStream}-key-`;
    const epochPrefix = `${this.#logStream}-epoch-`;
    if (streamId.startsWith(keyPrefix)) {
      const hex = streamId.slice(keyPrefix.length);
      return /^[0-9a-f]{32}$/.test(hex) ? { kind: 'key', kid: Buffer.from(hex, 'hex') } : undefined;
    }
    if (streamId.startsWith(epochPrefix)) {
      const year = streamId.slice(epochPrefix.length);
      return /^[0-9]{4}$/.test(year) ? { kind: 'epoch', epoch: Number(year) } : undefined;
    }
    return undefined;
  }

  #wrappedOf(streamId: string, data: unknown): { wrapped: Buffer; kek: string | null } {
    const d = (data instanceof Uint8Array ? JSON.parse(Buffer.from(data).toString('utf8')) : data) as Partial<KeyMadeData> | null;
    if (d === null || typeof d !== 'object' || d.v !== 1 || typeof d.wrapped !== 'string') throw new SealingError('INVALID_KEYS', `${streamId} does not hold a wrapped key`);
    if (d.keySet !== this.#keys.kid) throw new SealingError('INVALID_KEYS', `${streamId} holds a key of key set ${String(d.keySet)}, not ${this.#keys.kid}: the hubs of one log need the same sealing key file`);
    return { wrapped: Buffer.from(d.wrapped, 'base64url'), kek: typeof d.kek === 'string' && d.kek !== this.#keys.kid ? d.kek : null };
  }

  /** One make or fetch per key at a time in this process: concurrent callers share it. */
  #once(name: string, work: () => Promise<void>): Promise<void> {
    let running = this.#inflight.get(name);
    if (running === undefined) {
      running = work().finally(() => this.#inflight.delete(name));
      this.#inflight.set(name, running);
    }
    return running;
  }

  async #run(work: readonly (() => Promise<void>)[]): Promise<void> {
    for (let i = 0; i < work.length; i += this.#concurrency) await Promise.all(work.slice(i, i + this.#concurrency).map((w) => w()));
  }

  async #makeSubject(kid: Buffer): Promise<void> {
    const hex = kid.toString('hex');
    const stream = personKeyStream(this.#logStream, kid);
    const keys = this.#keys;
    const wrapped = wrapKey(keys, `subject|${hex}`, randomBytes(32));
    const at = this.#now().toISOString();
    const made = await this.#append(stream, PERSON_KEY_MADE, { v: 1, keySet: keys.kid, kid: hex, wrapped: wrapped.toString('base64url'), createdAt: at, ...kekField(keys, currentKekId(keys)) });
    if (made === 'made') this.#local.storeWrapped(kid, wrapped, at, kekColumn(keys, currentKekId(keys)));
    else if (made === 'deleted') this.#local.markShredded(kid, at);
    // Another hub made it first: its key is the person's key.
    else await this.#fetchSubject(kid);
  }

  async #makeEpoch(epoch: number): Promise<void> {
    const stream = periodKeyStream(this.#logStream, epoch);
    const keys = this.#keys;
    const wrapped = wrapKey(keys, `epoch|${epoch}`, randomBytes(32));
    const at = this.#now().toISOString();
    const made = await this.#append(stream, PERIOD_KEY_MADE, { v: 1, keySet: keys.kid, epoch, wrapped: wrapped.toString('base64url'), createdAt: at, ...kekField(keys, currentKekId(keys)) });
    if (made === 'made') this.#local.storeWrappedEpoch(epoch, wrapped, at, kekColumn(keys, currentKekId(keys)));
    else if (made === 'deleted') this.#local.markEpochShredded(epoch, at);
    else await this.#fetchEpoch(epoch);
  }

  /** Appends a key's one event with expected revision "no stream": 'exists' when another hub made it first. */
  async #append(stream: string, type: string, data: KeyMadeData): Promise<'made' | 'exists' | 'deleted'> {
    try {
      await this.#client.appendToStream(stream, [jsonEvent({ type, data: { ...data } })], { streamState: NO_STREAM });
      return 'made';
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) return 'exists';
      if (error instanceof StreamDeletedError) return 'deleted';
      throw unavailable(`make the key of ${stream}`, error);
    }
  }

  async #fetchSubject(kid: Buffer): Promise<void> {
    const stream = personKeyStream(this.#logStream, kid);
    const at = this.#now().toISOString();
    const found = await this.#read(stream);
    if (found === 'deleted') this.#local.markShredded(kid, at);
    else if (found !== undefined) {
      const { wrapped, kek } = this.#wrappedOf(stream, found);
      this.#local.storeWrapped(kid, wrapped, at, kek);
    }
  }

  async #fetchEpoch(epoch: number): Promise<void> {
    const stream = periodKeyStream(this.#logStream, epoch);
    const at = this.#now().toISOString();
    const found = await this.#read(stream);
    if (found === 'deleted') this.#local.markEpochShredded(epoch, at);
    else if (found !== undefined) {
      const { wrapped, kek } = this.#wrappedOf(stream, found);
      this.#local.storeWrappedEpoch(epoch, wrapped, at, kek);
    }
  }

  /**
   * The data of a key stream's last event (the key as it was made, or its latest re-wrap); undefined when
   * the stream does not exist, 'deleted' when it was hard-deleted.
   */
  async #read(stream: string): Promise<unknown> {
    try {
      for await (const resolved of this.#client.readStream(stream, { fromRevision: END, maxCount: 1n, direction: 'backwards' })) {
        if (resolved.event !== undefined) return resolved.event.data;
      }
      return undefined;
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      if (error instanceof StreamDeletedError) return 'deleted';
      throw unavailable(`read ${stream}`, error);
    }
  }

  /** Hard-deletes a key stream; a failure is left to retry at the next follow. */
  #delete(stream: string): void {
    this.#toDelete.add(stream);
    const deleting: Promise<void> = this.#client
      .tombstoneStream(stream)
      .then(
        () => {
          this.#toDelete.delete(stream);
        },
        (error: unknown) => {
          if (error instanceof StreamDeletedError) this.#toDelete.delete(stream);
          else this.#onError(unavailable(`delete ${stream} (retried at the next follow)`, error));
        },
      )
      .finally(() => this.#deleting.delete(deleting));
    this.#deleting.add(deleting);
  }
}

function unavailable(what: string, error: unknown): SealingError {
  if (error instanceof SealingError) return error;
  return new SealingError('KEYSTORE_UNAVAILABLE', `KurrentDB did not let the key ring ${what}: ${describe(error)}`);
}

/** The client's errors often carry no message of their own (or only their class name): name the class too. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const name = error.constructor.name;
  return error.message === '' || error.message === name ? name : `${name}: ${error.message}`;
}

/** The `kek` field of a key event: absent for the key set's first KEK (as every event written before rotation). */
function kekField(keys: SealingKeys, kek: string | null): { kek?: string } {
  return kek === null || kek === keys.kid ? {} : { kek };
}

/** The local copy's `kek` column for a KEK id (NULL for the key set's first KEK). */
function kekColumn(keys: SealingKeys, kek: string): string | null {
  return kek === keys.kid ? null : kek;
}
