import Database from 'better-sqlite3';
import { AppendPlanner, type LedgerIndex, type PlannedBatch, type PlannedEvent, type StoredIdempotency } from './append-planner.js';
import { BatchedEventStore, type BatchOutcomes } from './batched-event-store.js';
import type { RecordedEvent } from './envelope.js';
import { LedgerError } from './errors.js';
import type { AppendRequest, ReadAllOptions, ReadStreamOptions, SerialStatus } from './event-store.port.js';
import { uuidv7 } from './ids.js';
import { DeferredKeyIndex, type KeyIndexOptions } from './key-index.js';
import { serialStatusOf } from './in-memory-event-store.js';
import type { SerialNumber } from './serial-number.js';

/** Work that MUST commit atomically with the events it sees (e.g. the Merkle tree state). */
export interface CommitHook {
  /** Called inside the write transaction, once per batch, with the events in position order. */
  onCommit(db: Database.Database, events: readonly PlannedEvent[]): void;
  /** Called after a failed batch was rolled back, so the hook can drop in-memory state. */
  onRollback?(): void;
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
}

export const SCHEMA_VERSION = 1;

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
 * The embedded event store: SQLite in WAL mode, one writer, group commit. The `envelope` column holds
 * the RFC 8785 canonical JSON of the whole event and is the source of truth; the other columns index it.
 */
export class SqliteEventStore extends BatchedEventStore {
  readonly db: Database.Database;
  private readonly planner: AppendPlanner;
  private readonly index: LedgerIndex;
  private readonly hooks: readonly CommitHook[];
  private readonly keys: DeferredKeyIndex;
  private headPosition: number;
  private commits = 0;
  /** Last revision of recently written streams; a read-through cache, cleared when it grows too large. */
  private readonly revisions = new Map<string, number>();
  private readonly stmt: ReturnType<SqliteEventStore['prepare']>;

  constructor(options: SqliteEventStoreOptions) {
    super();
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(LEDGER_DDL);
    const stored = this.db.prepare(`SELECT value FROM ledger_meta WHERE key = 'schema_version'`).pluck().get() as string | undefined;
    if (stored === undefined) this.db.prepare(`INSERT INTO ledger_meta (key, value) VALUES ('schema_version', ?)`).run(String(SCHEMA_VERSION));
    else if (Number(stored) !== SCHEMA_VERSION) throw new Error(`ledger file has schema version ${stored}; this build reads ${SCHEMA_VERSION}`);
    this.stmt = this.prepare();
    this.keys = new DeferredKeyIndex(this.db, options.keyIndex);
    this.hooks = options.hooks ?? [];
    const now = options.now ?? (() => new Date());
    this.planner = new AppendPlanner({ nodeId: options.nodeId, now, newEventId: options.newEventId ?? (() => uuidv7(now().getTime())) });
    this.headPosition = (this.stmt.head.get() as number | null) ?? 0;
    this.index = {
      streamRevision: (id) => {
        const cached = this.revisions.get(id);
        if (cached !== undefined) return cached;
        return (this.stmt.streamRevision.get(id) as number | null) ?? undefined;
      },
      serialState: (serial) => (this.stmt.isOpen.get(serial) !== undefined ? 'open' : this.stmt.serialExists.get(serial) !== undefined ? 'closed' : undefined),
      claimHeld: (claim) => this.keys.claimHeld(claim),
      idempotency: (key) => {
        const position = this.keys.keyPosition(key);
        return position === undefined ? undefined : this.storedIdempotency(position);
      },
      lastSequence: (day, nodeId) => {
        const prefix = `${day}${String(nodeId).padStart(2, '0')}`;
        const last = this.stmt.lastSerial.get(`${prefix}0000000000`, `${prefix}9999999999`) as string | null;
        return last === null ? 0 : Number(last.slice(10));
      },
    };
  }

  private prepare() {
    const db = this.db;
    return {
      head: db.prepare('SELECT max(position) + 1 FROM events').pluck(),
      streamRevision: db.prepare('SELECT max(stream_revision) FROM events WHERE stream_id = ?').pluck(),
      isOpen: db.prepare('SELECT 1 FROM open_serials WHERE serial = ?').pluck(),
      serialExists: db.prepare('SELECT 1 FROM events WHERE serial = ? LIMIT 1').pluck(),
      lastSerial: db.prepare('SELECT max(serial) FROM events WHERE serial BETWEEN ? AND ?').pluck(),
      insertEvent: db.prepare('INSERT INTO events (position, stream_id, stream_revision, serial, envelope) VALUES (?, ?, ?, ?, ?)'),
      openSerial: db.prepare('INSERT INTO open_serials (serial, first_position) VALUES (?, ?)'),
      closeSerial: db.prepare('DELETE FROM open_serials WHERE serial = ?'),
      readAll: db.prepare('SELECT envelope FROM events WHERE position >= ? ORDER BY position LIMIT ?').pluck(),
      readStream: db.prepare('SELECT envelope FROM events WHERE stream_id = ? AND stream_revision >= ? ORDER BY stream_revision LIMIT ?').pluck(),
      readSerial: db.prepare('SELECT envelope FROM events WHERE serial = ? ORDER BY position').pluck(),
      openSerials: db.prepare('SELECT serial FROM open_serials ORDER BY serial').pluck(),
    };
  }

  protected commitBatch(requests: readonly AppendRequest[]): BatchOutcomes {
    try {
      return this.commitTogether(requests);
    } catch (error) {
      // The batch was rolled back. Retry each request alone so that only the faulty one fails.
      if (requests.length === 1) return [{ ok: false, error: asError(error) }];
      return requests.map((r) => {
        try {
          return this.commitTogether([r])[0]!;
        } catch (e) {
          return { ok: false as const, error: asError(e) };
        }
      });
    }
  }

  private commitTogether(requests: readonly AppendRequest[]): BatchOutcomes {
    let plan: PlannedBatch | undefined;
    const write = this.db.transaction(() => {
      plan = this.planner.plan(requests, this.headPosition, this.index);
      const s = this.stmt;
      for (const { event, canonical } of plan.events) {
        s.insertEvent.run(event.position, event.streamId, event.streamRevision, event.serial, canonical);
      }
      for (const o of plan.openedSerials) s.openSerial.run(o.serial, o.firstPosition);
      for (const serial of plan.closedSerials) s.closeSerial.run(serial);
      for (const hook of this.hooks) hook.onCommit(this.db, plan.events);
    });
    try {
      // better-sqlite3 commits synchronously; with WAL + synchronous=FULL the WAL is fsynced before COMMIT returns.
      write.immediate();
    } catch (error) {
      this.planner.reset();
      for (const hook of this.hooks) hook.onRollback?.();
      throw error;
    }
    this.headPosition += plan!.events.length;
    this.commits += 1;
    this.keys.add(plan!);
    if (this.revisions.size > 65_536) this.revisions.clear();
    for (const { event } of plan!.events) this.revisions.set(event.streamId, event.streamRevision);
    this.keys.maintain(this.headPosition, plan!.idempotency.length + plan!.claims.length);
    return plan!.outcomes;
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
    return this.headPosition;
  }

  /** Idempotency keys and claims held in memory, not yet in the key tables. */
  get unflushedKeyCount(): number {
    return this.keys.recentCount;
  }

  /** Transactions committed by this instance (group commit makes this far fewer than appends). */
  get commitCount(): number {
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

  protected closeStorage(): void {
    this.keys.flush(Number.POSITIVE_INFINITY, this.headPosition);
    this.db.close();
  }
}

function parseAll(rows: readonly string[]): RecordedEvent[] {
  const out = new Array<RecordedEvent>(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = JSON.parse(rows[i]!) as RecordedEvent;
  return out;
}

function asError(error: unknown): Error {
  if (error instanceof LedgerError || error instanceof Error) return error;
  return new Error(String(error));
}
