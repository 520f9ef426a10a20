import Database from 'better-sqlite3';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { AppendPlanner, type LedgerIndex, type PlannedBatch, type PlannedEvent, type StoredIdempotency } from './append-planner.js';
import { BatchedEventStore, type BatchOutcomes } from './batched-event-store.js';
import type { RecordedEvent } from './envelope.js';
import type { AppendRequest, AppendResult, ReadAllOptions, ReadStreamOptions, SerialStatus } from './event-store.port.js';
import { uuidv7 } from './ids.js';
import { BloomFilter, filterSize, type BloomFilterOptions } from './bloom-filter.js';
import { restoreFilter, saveFilters, takeSavedFilters } from './saved-filters.js';
import { DeferredKeyIndex, keyHash, type KeyIndexOptions, type WriteOp } from './key-index.js';
import { SqliteWriter } from './sqlite-writer.js';
import { MerkleTreeProjection } from './tree/merkle-tree-projection.js';
import { serialStatusOf } from './in-memory-event-store.js';
import type { SerialNumber } from './serial-number.js';

/** Work that MUST commit atomically with the events it sees (the writes of a caller's own table). */
export interface CommitHook {
  /**
   * Called while a batch is planned, once per batch, with its events in position order; the returned
   * writes commit in the same transaction as the events.
   */
  prepare(events: readonly PlannedEvent[]): readonly WriteOp[];
  /** Planned batches from `durableHead` on were never written: forget what was derived from them. */
  rollback?(durableHead: number): void;
}

export interface SqliteEventStoreOptions {
  /** File path, or ':memory:' for tests. */
  readonly path: string;
  readonly nodeId: number;
  readonly now?: () => Date;
  readonly newEventId?: () => string;
  readonly hooks?: readonly CommitHook[];
  /** `FULL` (default) makes every commit durable against power loss, not only process crashes. */
  readonly synchronous?: 'FULL' | 'NORMAL';
  readonly keyIndex?: KeyIndexOptions;
  /**
   * Size and probes of each of the ledger's three Bloom filters (stream ids, idempotency keys, claims):
   * fixed memory whatever the length of the log (I11), 4 MiB and 3 probes each by default. A longer log
   * only raises their false-positive rate, and a false positive costs one indexed read.
   */
  readonly filters?: BloomFilterOptions;
  /**
   * Keep the Merkle tree of the log (I3) in the ledger file, written by the writer thread in the same
   * transaction as the events it covers. At open, a tree that is missing or behind is first rebuilt or
   * brought up to date from the log. Read it with `new MerkleTreeProjection({ source, maintainedByLedger: true })`.
   */
  readonly tree?: boolean;
  /**
   * The writer thread's SQLite page cache (KiB); SQLite's default (2 MiB) when absent. A writer that
   * appends new streams at a high rate over a long log (a bulk import) inserts into index B-trees far
   * larger than that, at random places; a larger cache keeps more of their pages.
   */
  readonly writerCacheKiB?: number;
}

export const SCHEMA_VERSION = 1;

/**
 * Characters per string of rows sent to the writer thread. Copying a string to another thread costs
 * several times more per byte once it is too big for V8's regular heap pages (≈ 128 KiB), so a batch
 * goes as a list of strings below that.
 */
const TEXT_CHUNK = 32_768;


export const LEDGER_DDL = `
CREATE TABLE IF NOT EXISTS events (
  position        INTEGER PRIMARY KEY,
  stream_id       TEXT    NOT NULL,
  stream_revision INTEGER NOT NULL,
  serial          TEXT    NOT NULL,
  envelope        TEXT    NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events (stream_id, stream_revision);
CREATE INDEX IF NOT EXISTS events_by_serial ON events (serial);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'APPEND_ONLY: events are never updated (I1); append a correcting event instead'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'APPEND_ONLY: events are never deleted (I1); append a correcting event instead'); END;
CREATE TABLE IF NOT EXISTS open_serials (
  serial         TEXT    PRIMARY KEY,
  first_position INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
`;

/**
 * A planned batch that is not yet durable. What later batches must see of it (stream revisions,
 * serial states) is derived from its requests only when a look-up gets that far, which for new
 * streams and new serials (the Bloom filter and the planner answer those) is rarely.
 */
class InFlight {
  /** Dropped by the roll-back of a failed batch (this one or one before it): its own failure changes nothing more. */
  dropped = false;
  private revisionMap?: Map<string, number>;
  private serialMap?: Map<string, 'open' | 'closed'>;

  constructor(
    readonly firstPosition: number,
    readonly events: number,
    private readonly requests: readonly AppendRequest[],
    private readonly plan: PlannedBatch,
  ) {}

  /** Its keyed appends, for the rare look-up of a key whose append is still committing. */
  get idempotency(): PlannedBatch['idempotency'] {
    return this.plan.idempotency;
  }

  revision(streamId: string): number | undefined {
    if (this.revisionMap === undefined) {
      this.revisionMap = new Map();
      this.forEachAppended((request, result) => this.revisionMap!.set(request.streamId, result.nextExpectedRevision));
    }
    return this.revisionMap.get(streamId);
  }

  serialState(serial: string): 'open' | 'closed' | undefined {
    if (this.serialMap === undefined) {
      this.serialMap = new Map();
      this.forEachAppended((request, result) => this.serialMap!.set(result.serial, request.events[request.events.length - 1]!.terminal === undefined ? 'open' : 'closed'));
    }
    return this.serialMap.get(serial);
  }

  forEachAppended(f: (request: AppendRequest, result: AppendResult) => void): void {
    const outcomes = this.plan.outcomes;
    for (let i = 0; i < outcomes.length; i++) {
      const result = outcomes[i]!;
      if (!(result instanceof Error) && result.status === 'appended') f(this.requests[i]!, result);
    }
  }
}

/**
 * Entries of the last `limit` to `2 * limit` sets: two generations, the older dropped whole when the
 * newer fills, so that forgetting costs nothing per entry.
 */
class RecentMap<V> {
  private newer = new Map<string, V>();
  private older = new Map<string, V>();
  constructor(private readonly limit: number) {}

  get size(): number {
    return this.newer.size + this.older.size;
  }

  get(key: string): V | undefined {
    const v = this.newer.get(key);
    return v !== undefined ? v : this.older.get(key);
  }

  set(key: string, value: V): void {
    this.newer.set(key, value);
    if (this.newer.size >= this.limit) {
      this.older = this.newer;
      this.newer = new Map();
    }
  }

  clear(): void {
    this.newer = new Map();
    this.older = new Map();
  }
}

/**
 * The embedded event store: SQLite in WAL mode, one writer thread, group commit. The `envelope` column
 * holds the RFC 8785 canonical JSON of the whole event and is the source of truth; the other columns
 * index it.
 *
 * The main thread plans batches (checks, serials, canonical text) against durable state plus the
 * batches still committing; the writer thread commits them in order. An append resolves only after the
 * writer reported its batch committed, and `head()` counts only committed events.
 */
export class SqliteEventStore extends BatchedEventStore {
  /** The main thread's connection: reads, and look-ups while planning. */
  readonly db: Database.Database;
  /**
   * Batches of at most 128 events, up to 8 planned ahead of the writer: while one commits, the next are
   * planned and queued, and the writer commits whatever queued in one transaction (one fsync). With
   * fewer, larger batches the two threads took turns waiting for each other (bench:ledger: ≈ 45,000
   * events/s at 2 batches of 256 in flight against ≈ 50,000–58,000 at 8 of 128).
   */
  protected override readonly maxInFlight = 8;
  protected override readonly maxBatchEvents = 128;
  private readonly writer: SqliteWriter;
  private readonly planner: AppendPlanner;
  private readonly index: LedgerIndex;
  private readonly hooks: readonly CommitHook[];
  private readonly keys: DeferredKeyIndex;
  private readonly stmt: ReturnType<SqliteEventStore['prepare']>;
  private durableHead: number;
  private plannedHead: number;
  private pending: InFlight[] = [];
  /** Last revision of durable streams read recently; a read-through cache kept current as batches commit. */
  private readonly revisions = new RecentMap<number>(8192);
  /** State of serials written recently, as of the batch that last wrote them. */
  private readonly serialStates = new RecentMap<'open' | 'closed'>(8192);
  private failure: Promise<void> | undefined;
  private keyFlush: Promise<void> | undefined;
  private commits = 0;
  /**
   * Every stream id ever written (a Bloom filter of a fixed size): creating a new stream then needs no
   * read, but for the false positives, which one indexed read settles.
   */
  private readonly streams: BloomFilter;
  private readonly filterOptions: Required<BloomFilterOptions>;

  constructor(options: SqliteEventStoreOptions) {
    super();
    // A bad size is refused before the file is opened.
    this.filterOptions = filterSize(options.filters);
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(LEDGER_DDL);
    const stored = this.db.prepare(`SELECT value FROM ledger_meta WHERE key = 'schema_version'`).pluck().get() as string | undefined;
    if (stored === undefined) this.db.prepare(`INSERT INTO ledger_meta (key, value) VALUES ('schema_version', ?)`).run(String(SCHEMA_VERSION));
    else if (Number(stored) !== SCHEMA_VERSION) throw new Error(`ledger file has schema version ${stored}; this build reads ${SCHEMA_VERSION}`);
    // Filters saved at the last clean close are taken out of the file now: after a crash there are none.
    const savedFilters = takeSavedFilters(this.db);
    this.keys = new DeferredKeyIndex(this.db, { ...options.keyIndex, filters: this.filterOptions }, savedFilters);
    this.stmt = this.prepare();
    this.hooks = options.hooks ?? [];
    const now = options.now ?? (() => new Date());
    this.planner = new AppendPlanner({ nodeId: options.nodeId, now, newEventId: options.newEventId ?? uuidv7 });
    this.durableHead = (this.stmt.head.get() as number | null) ?? 0;
    this.streams = restoreFilter(savedFilters, 'streams', this.durableHead, this.filterOptions) ?? this.loadStreamFilter();
    this.plannedHead = this.durableHead;
    if (options.tree === true) {
      if (options.path === ':memory:') throw new Error('a ledger that keeps its Merkle tree needs a file');
      // The writer continues the stored tree: bring it level with the log first (rebuilt if missing).
      // A tree ahead of the log (TREE_AHEAD_OF_LOG: events were removed) refuses the open.
      let tree: MerkleTreeProjection | undefined;
      try {
        tree = new MerkleTreeProjection({ source: options.path, stepEvents: 65_536 });
        tree.catchUp();
      } catch (error) {
        this.db.close();
        throw error;
      } finally {
        tree?.close();
      }
    }
    this.writer = new SqliteWriter(options.path, options.synchronous ?? 'FULL', options.tree === true, options.writerCacheKiB);
    this.index = {
      streamRevision: (id) => {
        // Every stream planned or written is in the filter: a new stream costs no further look-up.
        if (!this.streams.mayContain(keyHash(id))) return undefined;
        for (let i = this.pending.length - 1; i >= 0; i--) {
          const r = this.pending[i]!.revision(id);
          if (r !== undefined) return r;
        }
        const cached = this.revisions.get(id);
        if (cached !== undefined) return cached;
        const stored = (this.stmt.streamRevision.get(id) as number | null) ?? undefined;
        if (stored !== undefined) this.revisions.set(id, stored);
        return stored;
      },
      serialState: (serial) => {
        for (let i = this.pending.length - 1; i >= 0; i--) {
          const state = this.pending[i]!.serialState(serial);
          if (state !== undefined) return state;
        }
        const cached = this.serialStates.get(serial);
        if (cached !== undefined) return cached;
        if (this.stmt.isOpen.get(serial) !== undefined) return 'open';
        return this.stmt.serialExists.get(serial) !== undefined ? 'closed' : undefined;
      },
      claimHeld: (claim) => this.keys.claimHeld(claim),
      idempotency: (key) => {
        const position = this.keys.keyPosition(key);
        if (position === undefined) return undefined;
        if (position < this.durableHead) return this.storedIdempotency(position);
        // The key's append is still committing: its outcome is in the planned batch.
        for (const f of this.pending) {
          if (position >= f.firstPosition + f.events) continue;
          for (const k of f.idempotency) if (k.key === key) return k.record;
        }
        return undefined;
      },
      lastSequence: (day, nodeId) => {
        const prefix = `${day}${String(nodeId).padStart(2, '0')}`;
        const last = this.stmt.lastSerial.get(`${prefix}0000000000`, `${prefix}9999999999`) as string | null;
        return last === null ? 0 : Number(last.slice(10));
      },
    };
  }

  /** The filter of every stream of the log (after a run that did not close cleanly): one scan of the stream index. */
  private loadStreamFilter(): BloomFilter {
    const filter = new BloomFilter(this.filterOptions);
    for (const id of this.stmt.streamIds.iterate() as Iterable<string>) filter.add(keyHash(id));
    return filter;
  }

  private prepare() {
    const db = this.db;
    return {
      head: db.prepare('SELECT max(position) + 1 FROM events').pluck(),
      streamRevision: db.prepare('SELECT max(stream_revision) FROM events WHERE stream_id = ?').pluck(),
      isOpen: db.prepare('SELECT 1 FROM open_serials WHERE serial = ?').pluck(),
      serialExists: db.prepare('SELECT 1 FROM events WHERE serial = ? LIMIT 1').pluck(),
      lastSerial: db.prepare('SELECT max(serial) FROM events WHERE serial BETWEEN ? AND ?').pluck(),
      readAll: db.prepare('SELECT envelope FROM events WHERE position >= ? ORDER BY position LIMIT ?').pluck(),
      readStream: db.prepare('SELECT envelope FROM events WHERE stream_id = ? AND stream_revision >= ? ORDER BY stream_revision LIMIT ?').pluck(),
      readSerial: db.prepare('SELECT envelope FROM events WHERE serial = ? ORDER BY position').pluck(),
      openSerials: db.prepare('SELECT serial FROM open_serials ORDER BY serial').pluck(),
      streamIds: db.prepare('SELECT stream_id FROM events INDEXED BY events_by_stream WHERE stream_revision = 0').pluck(),
    };
  }

  protected async commitBatch(requests: readonly AppendRequest[]): Promise<BatchOutcomes> {
    // After a failed write, nothing is planned until the state derived from dropped batches is undone.
    if (this.failure) await this.failure;
    const plan = this.planner.plan(requests, this.plannedHead, this.index);
    const n = plan.events.length;
    if (n === 0) return plan.outcomes;
    const flight = new InFlight(this.plannedHead, n, requests, plan);
    // New streams join the filter at once, so that a later batch looks for them among the pending ones.
    for (let i = 0; i < requests.length; i++) {
      const result = plan.outcomes[i]!;
      if (result instanceof Error || result.status !== 'appended') continue;
      if (result.nextExpectedRevision === result.lastPosition - result.firstPosition) this.streams.add(keyHash(requests[i]!.streamId));
    }
    // Rows for the writer thread as strings of "stream\nrevision\nenvelope\n" per event, each cut after
    // the row that takes it past TEXT_CHUNK characters, and the 20-digit serials end to end. Strings
    // only: a typed array costs a structured clone several microseconds more per message.
    const text: string[] = [];
    let chunk = '';
    let serials = '';
    for (let i = 0; i < n; i++) {
      const { event, canonical } = plan.events[i]!;
      chunk += `${event.streamId}\n${event.streamRevision}\n${canonical}\n`;
      if (chunk.length >= TEXT_CHUNK) {
        text.push(chunk);
        chunk = '';
      }
      serials += event.serial;
    }
    if (chunk.length > 0) text.push(chunk);
    const writes = this.hooks.length === 0 ? [] : this.hooks.flatMap((h) => h.prepare(plan.events));
    this.plannedHead += n;
    this.pending.push(flight);
    this.keys.add(plan);
    try {
      const rows = { firstPosition: flight.firstPosition, count: n, text, serials };
      await this.writer.writeBatch({ rows, opened: plan.openedSerials.map((o) => [o.serial, o.firstPosition] as const), closed: plan.closedSerials, writes });
    } catch (error) {
      this.rollBack(flight);
      throw error;
    }
    this.pending.shift();
    this.durableHead = flight.firstPosition + flight.events;
    this.committed(flight.firstPosition, plan.events);
    this.keys.settled(this.durableHead);
    this.commits += 1;
    // An append that leaves its serial open is soon followed by the next step of that serial, on the same
    // stream (a query's provision, its completion): remember both as of this batch, so that planning
    // does not look them up in the database. Entries already remembered are kept current.
    flight.forEachAppended((request, result) => {
      if (request.events[request.events.length - 1]!.terminal === undefined) {
        this.revisions.set(request.streamId, result.nextExpectedRevision);
        this.serialStates.set(result.serial, 'open');
        return;
      }
      if (this.serialStates.get(result.serial) !== undefined) this.serialStates.set(result.serial, 'closed');
      if (this.revisions.get(request.streamId) !== undefined) this.revisions.set(request.streamId, result.nextExpectedRevision);
    });
    this.maintainKeys();
    return plan.outcomes;
  }

  /** A batch failed: it and every batch planned after it are dropped; undo what planning derived from them. */
  private rollBack(failed: InFlight): void {
    // The batches planned after the failed one fail too (the writer refuses them until it is told to resume),
    // their answers often after this roll-back ended: they were dropped with it and must not roll back again
    // (that would plan the next batch at their first position and leave the failed one's positions empty).
    if (this.failure || failed.dropped) return;
    this.failure = (async () => {
      // Batches planned before the failed one may still commit: wait until they have answered.
      while (this.pending.length > 0 && this.pending[0] !== failed) await new Promise((r) => setImmediate(r));
      for (const flight of this.pending) flight.dropped = true;
      this.pending = [];
      this.plannedHead = failed.firstPosition;
      this.planner.reset();
      this.revisions.clear();
      this.serialStates.clear();
      this.keys.discardFrom(failed.firstPosition);
      for (const hook of this.hooks) hook.rollback?.(failed.firstPosition);
      this.writer.resume();
    })().finally(() => {
      this.failure = undefined;
    });
  }

  private maintainKeys(): void {
    if (this.keyFlush) return;
    const flush = this.keys.takeFlush(this.durableHead);
    if (!flush) return;
    this.keyFlush = this.writer
      .writeKeys(flush.rows)
      .then(() => this.keys.completeFlush(flush))
      .catch(() => undefined)
      .finally(() => {
        this.keyFlush = undefined;
      });
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<readonly RecordedEvent[]> {
    return parseAll(this.stmt.readStream.all(streamId, options.fromRevision ?? 0, options.maxCount ?? -1) as string[]);
  }

  async readAll(options: ReadAllOptions = {}): Promise<readonly RecordedEvent[]> {
    return parseAll(this.stmt.readAll.all(options.fromPosition ?? 0, options.maxCount ?? -1) as string[]);
  }

  async readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]> {
    return parseAll(this.stmt.readSerial.all(serial) as string[]);
  }

  async serialStatus(serial: SerialNumber): Promise<SerialStatus | undefined> {
    return serialStatusOf(await this.readSerial(serial));
  }

  async openSerials(): Promise<readonly SerialNumber[]> {
    return this.stmt.openSerials.all() as SerialNumber[];
  }

  async head(): Promise<number> {
    return this.durableHead;
  }

  async idempotentOutcome(key: string): Promise<{ requestDigest: string; result: AppendResult } | undefined> {
    const stored = this.index.idempotency(key);
    if (stored === undefined) return undefined;
    // A key of a batch still committing is answered only once that batch is durable.
    while (stored.result.lastPosition >= this.durableHead && this.pending.length > 0) await new Promise((r) => setImmediate(r));
    if (stored.result.lastPosition >= this.durableHead) return undefined;
    return { requestDigest: stored.requestDigest, result: { ...stored.result, status: 'duplicate' } };
  }

  /** Idempotency keys and claims held in memory, not yet in the key tables. */
  get unflushedKeyCount(): number {
    return this.keys.recentCount;
  }

  /**
   * The ledger's Bloom filters: memory fixed at open (I11), and how full they are. `falsePositiveRate` is
   * the share of look-ups of a new key that still read the index.
   */
  get filterStats(): { readonly name: string; readonly bytes: number; readonly hashes: number; readonly count: number; readonly falsePositiveRate: number }[] {
    const { keys, claims } = this.keys.filters;
    const stats = (name: string, f: BloomFilter) => ({ name, bytes: f.bytes, hashes: f.hashes, count: f.count, falsePositiveRate: f.falsePositiveRate });
    return [stats('streams', this.streams), stats('idempotency_keys', keys), stats('claims', claims)];
  }

  /** Transactions committed by the writer (group commit makes this far fewer than appends). */
  get commitCount(): number {
    return this.writer.transactions;
  }

  /**
   * How busy the writer thread has been (since `previous`, if given): with the main thread's own
   * utilization, this tells which of the two threads limits the rate of appends.
   */
  writerUtilization(previous?: EventLoopUtilization): EventLoopUtilization {
    return this.writer.eventLoopUtilization(previous);
  }

  /** Batches planned and committed by this instance (several may share one transaction). */
  get batchCount(): number {
    return this.commits;
  }

  /** The outcome of an earlier keyed append, rebuilt from its events (the log is the only record). */
  private storedIdempotency(position: number): StoredIdempotency {
    const [first] = parseAll(this.stmt.readAll.all(position, 1) as string[]);
    const stamp = first?.metadata.idempotency;
    if (!first || !stamp) throw new Error(`key index points at position ${position}, which holds no keyed append`);
    const events = stamp.events === 1 ? [first] : parseAll(this.stmt.readAll.all(position, stamp.events) as string[]);
    const last = events.at(-1)!;
    return {
      requestDigest: stamp.requestDigest,
      result: {
        status: 'appended',
        serial: first.serial,
        firstPosition: first.position,
        lastPosition: last.position,
        nextExpectedRevision: last.streamRevision,
        eventIds: events.map((e) => e.eventId),
      },
    };
  }

  protected async closeStorage(): Promise<void> {
    if (this.keyFlush) await this.keyFlush;
    const flush = this.keys.takeFlush(this.durableHead, true);
    if (flush) {
      await this.writer.writeKeys(flush.rows);
      this.keys.completeFlush(flush);
    }
    await this.writer.close();
    // Nothing writes the log any more: the filters are saved, so the next open need not read the whole log.
    saveFilters(this.db, [{ name: 'streams', through: this.durableHead, filter: this.streams }, ...this.keys.filtersToSave()]);
    this.db.close();
  }
}

function parseAll(rows: readonly string[]): RecordedEvent[] {
  const out = new Array<RecordedEvent>(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = JSON.parse(rows[i]!) as RecordedEvent;
  return out;
}
