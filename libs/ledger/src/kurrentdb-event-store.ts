import {
  KurrentDBClient,
  MaxAppendSizeExceededError,
  NO_STREAM,
  StreamNotFoundError,
  WrongExpectedVersionError,
  binaryEvent,
  type AppendStreamState,
  type EventData,
  type ResolvedEvent,
} from '@kurrent/kurrentdb-client';
import { AppendPlanner, type PlannedEvent } from './append-planner.js';
import { BatchedEventStore, type BatchOutcomes } from './batched-event-store.js';
import type { RecordedEvent } from './envelope.js';
import { LedgerError } from './errors.js';
import type { AppendRequest, AppendResult, ReadAllOptions, ReadStreamOptions, SerialStatus, SubscribeOptions } from './event-store.port.js';
import { uuidv7 } from './ids.js';
import { serialStatusOf } from './in-memory-event-store.js';
import { KurrentLogIndex } from './kurrentdb-log-index.js';
import type { SerialNumber } from './serial-number.js';

/**
 * What the adapter uses of a KurrentDB client. `KurrentDBClient` from `@kurrent/kurrentdb-client` is one
 * (the constructor checks that it fits); tests may pass a stand-in with the same behaviour.
 */
export interface KurrentLogClient {
  appendToStream(streamName: string, events: EventData[], options: { streamState: AppendStreamState }): Promise<unknown>;
  readStream(streamName: string, options: { fromRevision: bigint | 'end'; maxCount: bigint; direction?: 'forwards' | 'backwards' }): AsyncIterable<ResolvedEvent>;
  dispose(): Promise<void>;
}

export interface KurrentDbEventStoreOptions {
  /** A KurrentDB connection string (`kurrentdb://host:2113?tls=false`), or a client the caller owns. */
  readonly connection: string | KurrentLogClient;
  /** The KurrentDB stream that holds this ledger's log, one event per position. Default `linkage-ledger`. */
  readonly logStream?: string;
  readonly nodeId: number;
  readonly now?: () => Date;
  /** Event ids MUST be UUIDs: they become the KurrentDB event ids. Default: UUIDv7. */
  readonly newEventId?: () => string;
  /** Events per read from KurrentDB (default 4096). */
  readonly readPage?: number;
  /**
   * Bytes of envelopes per KurrentDB append (default 768 KiB, below the server's default maximum append
   * size of 1 MiB). A larger batch goes as several appends, cut between requests, in order.
   */
  readonly maxAppendBytes?: number;
  /**
   * Whether this store may append when it opens (default true). Several hubs on one log: only the leader
   * appends, the others open read-only (`false`) and follow the log with `refresh()`; `setWritable`
   * changes it when leadership changes.
   */
  readonly writable?: boolean;
  /**
   * What a rejected expected revision of the log stream means. `retry` (default): another writer wrote;
   * the next batch reads what it missed and goes on. `fence`: this store was deposed (another hub leads
   * now): it stops appending at once, every append after it is refused with NOT_WRITER, and `onFenced`
   * is told; only `setWritable(true)` (after leadership is won again) lets it append again.
   */
  readonly onConflict?: 'retry' | 'fence';
  readonly onFenced?: (error: LogConflictError) => void;
  /**
   * A SQLite file for the planner's index (kurrentdb-log-index.ts), a local projection of the log with its
   * checkpoint: an open reads only the log beyond it. Rebuilt from the log when missing, of another log
   * stream, or ahead of or beside the log (the log was replaced). Without it the index is in memory and
   * rebuilt from the whole log at every open.
   */
  readonly indexPath?: string;
}

/** Appends are refused: this store is not the log's writer (a standby hub, or a leader that was fenced off). */
export class NotWriterError extends LedgerError {
  readonly code = 'NOT_WRITER';
  constructor(
    readonly logStream: string,
    readonly reason: 'read-only' | 'fenced',
  ) {
    super(
      reason === 'fenced'
        ? `this store was fenced off the log stream ${logStream}: another writer appended at the revision it expected, so it appends nothing more until it leads again`
        : `this store only reads the log stream ${logStream}: another writer appends to it`,
    );
  }
}

/** The log stream was appended to by another writer since this store last read it. */
export class LogConflictError extends LedgerError {
  readonly code = 'LOG_CONFLICT';
  constructor(
    readonly logStream: string,
    readonly expectedHead: number,
  ) {
    super(`the log stream ${logStream} was written by another writer (this store expected ${expectedHead} events); this batch was not written, retry it`);
  }
}

/**
 * KurrentDB did not answer. After an append, the append may or may not have been written: a retry with the
 * same idempotency key returns the original outcome if it was.
 */
export class LogUnavailableError extends LedgerError {
  readonly code = 'LOG_UNAVAILABLE';
  constructor(
    readonly logStream: string,
    readonly operation: 'append' | 'read',
    readonly reason: string,
  ) {
    super(
      operation === 'append'
        ? `KurrentDB did not confirm the append to ${logStream} (${reason}); it may or may not have been written: retry with the same idempotency key`
        : `KurrentDB could not be read (${logStream}: ${reason})`,
    );
  }
}

/** An append (one request's events) is larger than KurrentDB accepts in one append. */
export class AppendTooLargeError extends LedgerError {
  readonly code = 'APPEND_TOO_LARGE';
  constructor(readonly bytes: number, readonly maxAppendSize: number) {
    super(`an append of ${bytes} bytes of envelopes is larger than KurrentDB's maximum append size (${maxAppendSize} bytes)`);
  }
}

/** The log stream holds something that is not this ledger's log: the store refuses to open or read it. */
export class LogInvalidError extends LedgerError {
  readonly code = 'LOG_INVALID';
  constructor(
    readonly logStream: string,
    readonly revision: number,
    detail: string,
  ) {
    super(`the log stream ${logStream} at revision ${revision}: ${detail}`);
  }
}

/** Events kept for subscribers beyond the ones being read. */
const SHARED_WINDOW = 8192;

/** Freezes an event and everything in it: events handed to several subscribers are shared. */
function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
}

/**
 * The event store on KurrentDB (the scaled deployment's log).
 *
 * The whole log is ONE KurrentDB stream: the event at stream revision r is the event at ledger position r,
 * stored as the exact bytes of its RFC 8785 envelope (a binary event, so no serializer can reorder or
 * re-space it: these bytes are the Merkle leaf input), with the envelope's event id as KurrentDB's event id
 * and its type as the event type. A batch is appended with the expected revision of the log's last event,
 * so positions stay contiguous and a second writer fails loudly (LOG_CONFLICT) instead of interleaving.
 * KurrentDB's $all positions are not contiguous, and one event per ledger stream in KurrentDB streams could
 * not be appended atomically with the serial rules; hence one stream.
 *
 * The index the planner checks against (stream revisions, serial states, claims, idempotency keys, daily
 * sequences) is a local projection of the log (`indexPath`, a SQLite file with its checkpoint) that an open
 * brings up to date by reading only the log's tail: reads of events go to KurrentDB.
 * An append resolves only after KurrentDB acknowledged it (KurrentDB acknowledges once durable).
 */
export class KurrentDbEventStore extends BatchedEventStore {
  /** Events per planned batch at most; a batch goes as one append, or several when its bytes exceed `maxAppendBytes`. */
  protected override readonly maxBatchEvents = 1024;
  readonly logStream: string;
  private readonly client: KurrentLogClient;
  private readonly ownsClient: boolean;
  private readonly planner: AppendPlanner;
  private readonly index: KurrentLogIndex;
  private readonly readPage: number;
  private readonly maxAppendBytes: number;
  private durableHead = 0;
  /** Set after an append failed: KurrentDB may hold events this store has not applied; read them first. */
  private stale = false;
  private writable: boolean;
  private fenced = false;
  private readonly onConflict: 'retry' | 'fence';
  private readonly onFenced: ((error: LogConflictError) => void) | undefined;
  /** Commits and refreshes change the index: one at a time. */
  private exclusive: Promise<unknown> = Promise.resolve();
  /** Subscribers waiting for the head to move (appends of this store, or events `refresh` read). */
  private waiters: (() => void)[] = [];
  private shut = false;
  /** The events subscribers read last, from position `windowStart` on (see `sharedPage`). */
  private followWindow: RecordedEvent[] = [];
  private followWindowStart = 0;
  private readonly pageReads = new Map<number, Promise<readonly RecordedEvent[]>>();

  /**
   * Opens the store: connects, checks that the index file is of this log (the event at its checkpoint's
   * last position is the one it indexed, and the log is not shorter), else empties it; then reads the log
   * from the checkpoint on.
   */
  static async open(options: KurrentDbEventStoreOptions): Promise<KurrentDbEventStore> {
    const store = new KurrentDbEventStore(options);
    try {
      await store.resume();
      await store.catchUp();
    } catch (error) {
      store.index.close();
      if (store.ownsClient) await store.client.dispose().catch(() => undefined);
      throw error;
    }
    return store;
  }

  /** Events the index held at open (read from its file instead of the log). */
  resumedFrom = 0;

  private async resume(): Promise<void> {
    const { through, lastEventId } = this.index.indexed;
    if (through === 0) return;
    const [last] = await this.readRange(through - 1, 1).catch((error: unknown) => {
      // A log that holds something else at that position is another log: rebuilt below.
      if (error instanceof LogInvalidError) return [];
      throw error;
    });
    if (last === undefined || last.eventId !== lastEventId) {
      this.index.clear();
      return;
    }
    this.durableHead = through;
    this.resumedFrom = through;
  }

  private constructor(options: KurrentDbEventStoreOptions) {
    super();
    if (typeof options.connection === 'string') {
      const client: KurrentLogClient = KurrentDBClient.connectionString(options.connection);
      this.client = client;
      this.ownsClient = true;
    } else {
      this.client = options.connection;
      this.ownsClient = false;
    }
    this.logStream = options.logStream ?? 'linkage-ledger';
    this.readPage = options.readPage ?? 4096;
    this.maxAppendBytes = options.maxAppendBytes ?? 768 * 1024;
    this.writable = options.writable ?? true;
    this.onConflict = options.onConflict ?? 'retry';
    this.onFenced = options.onFenced;
    const now = options.now ?? (() => new Date());
    this.planner = new AppendPlanner({ nodeId: options.nodeId, now, newEventId: options.newEventId ?? uuidv7 });
    this.index = new KurrentLogIndex(options.indexPath, this.logStream);
  }

  /** Whether appends are taken now (see `writable`, `onConflict`). */
  get isWritable(): boolean {
    return this.writable && !this.fenced;
  }

  /**
   * Lets this store append (it leads now) or stops it (it stands by). Before appending again, read what
   * the other writer wrote: call `refresh()` first; a batch planned on an old head fails anyway.
   */
  setWritable(writable: boolean): void {
    this.writable = writable;
    if (writable) this.fenced = false;
  }

  /**
   * Reads and applies what other writers appended to the log since this store last read it, and wakes
   * its subscribers. Returns the head. A standby calls it to follow the leader.
   */
  async refresh(): Promise<number> {
    await this.serialize(async () => {
      await this.catchUp();
      this.stale = false;
      // The next serial is allocated from the log as read now, never from what this store last allocated.
      this.planner.reset();
    });
    this.wake();
    return this.durableHead;
  }

  /** The stored envelope texts of positions [from, from + count) as far as this store knows them durable: exactly the Merkle leaf inputs. */
  async storedTexts(from: number, count: number): Promise<string[]> {
    const to = Math.min(this.durableHead, from + count);
    if (to <= from) return [];
    const texts = await readLogTexts(this.client, this.logStream, from, to);
    return texts;
  }

  /** The stored envelope texts of one serial, in position order. */
  async serialTexts(serial: SerialNumber): Promise<{ position: number; envelope: string }[]> {
    const positions = this.index.serialPositions(serial);
    const out: { position: number; envelope: string }[] = [];
    for (let i = 0; i < positions.length; ) {
      let j = i + 1;
      while (j < positions.length && positions[j] === positions[j - 1]! + 1) j++;
      const texts = await readLogTexts(this.client, this.logStream, positions[i]!, positions[j - 1]! + 1);
      for (const [k, envelope] of texts.entries()) out.push({ position: positions[i]! + k, envelope });
      i = j;
    }
    return out;
  }

  /**
   * A page for a subscriber: the followers of one process read the same new events one after another, so
   * they share the reads (one at a time per position) and a window of the events last read, frozen.
   */
  private async sharedPage(from: number, pageSize: number): Promise<readonly RecordedEvent[]> {
    const start = this.followWindowStart;
    const end = start + this.followWindow.length;
    if (from >= start && from < end) return this.followWindow.slice(from - start, Math.min(end, from + pageSize) - start);
    let reading = this.pageReads.get(from);
    if (reading === undefined) {
      reading = this.readAll({ fromPosition: from, maxCount: Math.max(pageSize, 256) }).finally(() => this.pageReads.delete(from));
      this.pageReads.set(from, reading);
    }
    const page = await reading;
    if (page.length > 0) {
      for (const event of page) deepFreeze(event);
      const endNow = this.followWindowStart + this.followWindow.length;
      if (from === endNow) for (const event of page) this.followWindow.push(event);
      else if (from > endNow || from + page.length <= this.followWindowStart) {
        this.followWindow = [...page];
        this.followWindowStart = from;
      }
      if (this.followWindow.length > 2 * SHARED_WINDOW) {
        const drop = this.followWindow.length - SHARED_WINDOW;
        this.followWindow = this.followWindow.slice(drop);
        this.followWindowStart += drop;
      }
    }
    return page.length <= pageSize ? page : page.slice(0, pageSize);
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.exclusive.then(work, work);
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Catches up, then follows: woken by this store's own commits and by `refresh` (a standby's follower
   * of the leader's appends), so subscribers of a standby see what the leader writes.
   */
  override async *subscribe(options: SubscribeOptions): AsyncIterable<RecordedEvent> {
    const pageSize = options.pageSize ?? 1000;
    let next = options.fromPosition;
    while (!options.signal?.aborted && !this.shut) {
      const page = await this.sharedPage(next, pageSize);
      for (const event of page) {
        if (options.signal?.aborted) return;
        yield event;
        next = event.position + 1;
      }
      if (page.length < pageSize && this.durableHead <= next && !this.shut && !options.signal?.aborted) {
        await new Promise<void>((resolve) => {
          const done = () => {
            options.signal?.removeEventListener('abort', done);
            resolve();
          };
          this.waiters.push(done);
          options.signal?.addEventListener('abort', done, { once: true });
        });
      }
    }
  }

  protected commitBatch(requests: readonly AppendRequest[]): Promise<BatchOutcomes> {
    return this.serialize(() => this.commitExclusive(requests)).finally(() => this.wake());
  }

  private async commitExclusive(requests: readonly AppendRequest[]): Promise<BatchOutcomes> {
    if (!this.writable || this.fenced) {
      const refusal = new NotWriterError(this.logStream, this.fenced ? 'fenced' : 'read-only');
      return requests.map(() => refusal);
    }
    if (this.stale) {
      await this.catchUp();
      this.stale = false;
    }
    const plan = this.planner.plan(requests, this.durableHead, this.index);
    const outcomes = plan.outcomes;
    if (plan.events.length === 0) return outcomes;
    // Appended requests in request order; their events are consecutive in plan.events.
    let next = 0;
    let chunk: { request: number; events: PlannedEvent[] }[] = [];
    let bytes = 0;
    const write = async (): Promise<boolean> => {
      if (chunk.length === 0) return true;
      const first = chunk[0]!.events[0]!.event.position;
      const data: EventData[] = [];
      for (const c of chunk) for (const e of c.events) data.push(binaryEvent({ id: e.event.eventId, type: e.event.type, data: Buffer.from(e.canonical, 'utf8') }));
      try {
        await this.client.appendToStream(this.logStream, data, { streamState: first === 0 ? NO_STREAM : BigInt(first - 1) });
      } catch (error) {
        // Nothing of this chunk or after it is applied; serials allocated for them are allocated again.
        this.planner.reset();
        this.stale = true;
        const refusal = this.translate(error, bytes);
        if (refusal instanceof LogConflictError && this.onConflict === 'fence') {
          // Deposed: nothing more is appended from this store, not even the batches queued behind this one.
          this.fenced = true;
          this.onFenced?.(refusal);
        }
        // Refused: every request from this chunk on, and a retry in this batch of one of them (a duplicate
        // of an append that was not written).
        for (let i = chunk[0]!.request; i < outcomes.length; i++) {
          const o = outcomes[i]!;
          if (!(o instanceof Error) && (o.status === 'appended' || o.lastPosition >= first)) outcomes[i] = refusal;
        }
        return false;
      }
      const written: RecordedEvent[] = [];
      for (const c of chunk) for (const e of c.events) written.push(e.event);
      this.apply(written);
      chunk = [];
      bytes = 0;
      return true;
    };
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i]!;
      if (o instanceof Error || o.status !== 'appended') continue;
      const count = o.lastPosition - o.firstPosition + 1;
      const events = plan.events.slice(next, next + count);
      next += count;
      let size = 0;
      for (const e of events) size += Buffer.byteLength(e.canonical, 'utf8');
      if (chunk.length > 0 && bytes + size > this.maxAppendBytes && !(await write())) return outcomes;
      chunk.push({ request: i, events });
      bytes += size;
    }
    await write();
    return outcomes;
  }

  private translate(error: unknown, bytes: number): LedgerError {
    if (error instanceof WrongExpectedVersionError) return new LogConflictError(this.logStream, this.durableHead);
    if (error instanceof MaxAppendSizeExceededError) return new AppendTooLargeError(bytes, error.maxAppendSize);
    return new LogUnavailableError(this.logStream, 'append', reasonOf(error));
  }

  /** Reads and applies whatever the log holds beyond what this store has applied. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const page = await this.readRange(this.durableHead, this.readPage);
      if (page.length > 0) this.apply(page);
      if (page.length < this.readPage) return;
    }
  }

  /** Adds events, the next in position order, to the index (one transaction with its checkpoint). */
  private apply(events: readonly RecordedEvent[]): void {
    this.index.applyAll(events);
    this.durableHead = events[events.length - 1]!.position + 1;
  }

  /** Events at positions [from, from + count), as far as the log holds them. */
  private async readRange(from: number, count: number): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    if (count <= 0) return out;
    try {
      for await (const resolved of this.client.readStream(this.logStream, { fromRevision: BigInt(from), maxCount: BigInt(count) })) {
        out.push(this.decode(resolved, from + out.length));
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return out;
      if (error instanceof LedgerError) throw error;
      throw new LogUnavailableError(this.logStream, 'read', reasonOf(error));
    }
    return out;
  }

  private decode(resolved: ResolvedEvent, expected: number): RecordedEvent {
    const stored = resolved.event;
    const revision = stored === undefined ? expected : Number(stored.revision);
    if (stored === undefined || stored.isJson || !(stored.data instanceof Uint8Array)) {
      throw new LogInvalidError(this.logStream, revision, 'not a ledger envelope (the log holds binary events of canonical JSON)');
    }
    if (revision !== expected) throw new LogInvalidError(this.logStream, revision, `expected revision ${expected}: the log stream is not contiguous`);
    let event: RecordedEvent;
    try {
      event = JSON.parse(Buffer.from(stored.data.buffer, stored.data.byteOffset, stored.data.byteLength).toString('utf8')) as RecordedEvent;
    } catch {
      throw new LogInvalidError(this.logStream, revision, 'not a ledger envelope (not JSON)');
    }
    if (event === null || typeof event !== 'object' || event.position !== revision || typeof event.serial !== 'string' || typeof event.streamId !== 'string') {
      throw new LogInvalidError(this.logStream, revision, `not a ledger envelope for position ${revision}`);
    }
    if (event.eventId !== stored.id) throw new LogInvalidError(this.logStream, revision, `envelope event id ${event.eventId} is not the KurrentDB event id ${stored.id}`);
    return event;
  }

  /** Events at the given positions (ascending), read in runs of consecutive positions. */
  private async readPositions(positions: readonly number[]): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    for (let i = 0; i < positions.length; ) {
      let j = i + 1;
      while (j < positions.length && positions[j] === positions[j - 1]! + 1) j++;
      out.push(...(await this.readRange(positions[i]!, j - i)));
      i = j;
    }
    return out;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<readonly RecordedEvent[]> {
    return this.readPositions(this.index.streamPositions(streamId, options.fromRevision ?? 0, options.maxCount));
  }

  async readAll(options: ReadAllOptions = {}): Promise<readonly RecordedEvent[]> {
    const from = options.fromPosition ?? 0;
    // Only what this store knows durable: never an event it has not applied.
    const to = options.maxCount === undefined ? this.durableHead : Math.min(this.durableHead, from + options.maxCount);
    return this.readRange(from, to - from);
  }

  async readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]> {
    return this.readPositions(this.index.serialPositions(serial));
  }

  async serialStatus(serial: SerialNumber): Promise<SerialStatus | undefined> {
    return serialStatusOf(await this.readSerial(serial));
  }

  async openSerials(): Promise<readonly SerialNumber[]> {
    return this.index.openSerials();
  }

  async head(): Promise<number> {
    return this.durableHead;
  }

  async idempotentOutcome(key: string): Promise<{ readonly requestDigest: string; readonly result: AppendResult } | undefined> {
    const stored = this.index.idempotency(key);
    return stored && { requestDigest: stored.requestDigest, result: { ...stored.result, status: 'duplicate' } };
  }

  protected async closeStorage(): Promise<void> {
    this.shut = true;
    this.wake();
    this.index.close();
    if (this.ownsClient) await this.client.dispose();
  }
}

/** Events in a log stream: its last revision + 1, 0 when the stream does not exist. */
export async function logStreamLength(client: KurrentLogClient, logStream: string): Promise<number> {
  try {
    for await (const resolved of client.readStream(logStream, { fromRevision: 'end', maxCount: 1n, direction: 'backwards' })) {
      if (resolved.event !== undefined) return Number(resolved.event.revision) + 1;
    }
  } catch (error) {
    if (error instanceof StreamNotFoundError) return 0;
    throw new LogUnavailableError(logStream, 'read', reasonOf(error));
  }
  return 0;
}

/**
 * The stored texts of revisions [from, to) of a log stream, as the auditor reads them: the bytes of a
 * binary event as UTF-8, anything else as JSON (not what this adapter writes; verification reports it).
 */
export async function readLogTexts(client: KurrentLogClient, logStream: string, from: number, to: number): Promise<string[]> {
  const out: string[] = [];
  if (to <= from) return out;
  try {
    for await (const resolved of client.readStream(logStream, { fromRevision: BigInt(from), maxCount: BigInt(to - from) })) {
      const data = resolved.event?.data;
      out.push(data instanceof Uint8Array ? Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8') : JSON.stringify(data ?? null));
    }
  } catch (error) {
    if (error instanceof StreamNotFoundError) return out;
    throw new LogUnavailableError(logStream, 'read', reasonOf(error));
  }
  return out;
}

/**
 * A KurrentDB client's error in one line: its class, its message, and the gRPC status behind it when there
 * is one. The client's errors often carry no message of their own (a WrongExpectedVersionError has none; an
 * error from its Rust half for reads is often only its class name): log this, not `error.message`.
 */
export function describeKurrentError(error: unknown): string {
  return reasonOf(error);
}

function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const raw = (error as { _raw?: { details?: string } })._raw?.details;
  const name = error.constructor.name;
  const parts = [name === error.message ? name : `${name}: ${error.message}`];
  if (raw !== undefined && raw !== '' && !error.message.includes(raw)) parts.push(raw);
  return parts.join(' — ');
}
