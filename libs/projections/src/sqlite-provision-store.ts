import Database from 'better-sqlite3';
import type { RecordedEvent } from '#ledger';
import type { AgencyKind } from '#linkage';
import { RecordDigest } from './digest.js';
import { ProjectionError } from './errors.js';
import { gapError } from './in-memory-provision-store.js';
import { pickTableInForce, provisionChange, type AgencyEntry, type ProvisionChange, type ProvisionFoldLookup, type ProvisionKind, type ProvisionRecord, type ProvisionStatus, type TableEntry } from './provision-record.js';
import type { ProvisionRecordStore } from './provision-store.port.js';
import {
  agencyQuery,
  agencyRecord,
  citizenMonths,
  citizenQuery,
  citizenRecord,
  citizenWindow,
  compareCounts,
  cursorOf,
  monthJst,
  monthRangeMs,
  type AgencyRecord,
  type AgencyRecordsOptions,
  type AgencyRecordsPage,
  type AgencyRole,
  type CitizenMonth,
  type CitizenMonthsOptions,
  type CitizenRecordsOptions,
  type CitizenRecordsPage,
  type MonthlyCount,
  type MonthlyCountsOptions,
} from './views.js';

/** The projections file's name in the hub's data directory, beside the ledger file; the auditor looks for it there. */
export const PROJECTIONS_FILE = 'projections.sqlite';

/** Bumped when the tables below change shape: an old file is then rebuilt, not misread. */
export const PROVISION_LAYOUT_VERSION = 4;

/**
 * Provision records in their own SQLite file (`<data>/projections.sqlite`). Rows are keyed by serial;
 * each view is one index range: by subject and time (citizens: a page of their records, the agency filter
 * checked on that range, which holds one person's rows only; their monthly counts), by requester or
 * provider and time (agencies and their monthly counts). A self-information request has no requester
 * (NULL) and kind 'self-information'. A push is a row of kind 'push' (requester: the subscriber told; query_id:
 * the pushId, found by a partial index when its delivery ends it). Agency names and table names are kept beside the rows, so the
 * fold resumes from the stored checkpoint without re-reading the log.
 */
export const PROVISION_DDL = `
CREATE TABLE IF NOT EXISTS projection_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provision_agencies (agency_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provision_tables (version INTEGER PRIMARY KEY, effective_ms INTEGER NOT NULL, procedures TEXT NOT NULL, items TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS provision_records (
  serial TEXT NOT NULL UNIQUE,
  query_id TEXT NOT NULL,
  subject_id TEXT,
  kind TEXT NOT NULL,
  requester_id TEXT,
  requester_kind TEXT,
  requester_name TEXT,
  provider_id TEXT NOT NULL,
  provider_kind TEXT,
  provider_name TEXT,
  procedure_code TEXT NOT NULL,
  procedure_name TEXT,
  items TEXT NOT NULL,
  table_version INTEGER,
  batch_id TEXT,
  batch_index INTEGER,
  batch_size INTEGER,
  status TEXT NOT NULL,
  reason TEXT,
  requested_at TEXT NOT NULL,
  requested_ms INTEGER NOT NULL,
  ended_at TEXT
);
CREATE INDEX IF NOT EXISTS provision_by_subject ON provision_records (subject_id, requested_ms, serial) WHERE subject_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS provision_by_requester ON provision_records (requester_id, requested_ms, serial);
CREATE INDEX IF NOT EXISTS provision_by_provider ON provision_records (provider_id, requested_ms, serial);
CREATE INDEX IF NOT EXISTS provision_by_push ON provision_records (query_id) WHERE kind = 'push';
`;


const COLUMNS = [
  'serial', 'query_id', 'subject_id', 'kind', 'requester_id', 'requester_kind', 'requester_name', 'provider_id', 'provider_kind', 'provider_name',
  'procedure_code', 'procedure_name', 'items', 'table_version', 'batch_id', 'batch_index', 'batch_size', 'status', 'reason',
  'requested_at', 'requested_ms', 'ended_at',
] as const;
const SELECT = `SELECT ${COLUMNS.join(', ')} FROM provision_records`;
/** Columns no index covers: a record whose indexed columns stay as they were is updated in these only. */
const INDEXED = new Set<string>(['serial', 'query_id', 'subject_id', 'kind', 'requester_id', 'provider_id', 'requested_ms']);
const UNINDEXED = COLUMNS.flatMap((c, i) => (INDEXED.has(c) ? [] : [i]));
/** Records written in recent batches kept in memory: a query's next step finds its row without reading it. */
const RECENT_RECORDS = 8192;

/** Whether two versions of a record have the same values in every indexed column. */
function sameIndexedColumns(a: ProvisionRecord, b: ProvisionRecord): boolean {
  return (
    a.queryId === b.queryId &&
    a.subjectId === b.subjectId &&
    a.kind === b.kind &&
    (a.requester?.id ?? null) === (b.requester?.id ?? null) &&
    a.provider.id === b.provider.id &&
    Date.parse(a.requestedAt) === Date.parse(b.requestedAt)
  );
}

interface Row {
  serial: string;
  query_id: string;
  subject_id: string | null;
  kind: string;
  requester_id: string | null;
  requester_kind: string | null;
  requester_name: string | null;
  provider_id: string;
  provider_kind: string | null;
  provider_name: string | null;
  procedure_code: string;
  procedure_name: string | null;
  items: string;
  table_version: number | null;
  batch_id: string | null;
  batch_index: number | null;
  batch_size: number | null;
  status: string;
  reason: string | null;
  requested_at: string;
  requested_ms: number;
  ended_at: string | null;
}

/** A record as a row (its subjectId is already the person's reference, as the fold's lookup gave it). */
function toRow(r: ProvisionRecord): unknown[] {
  return [
    r.serial, r.queryId, r.subjectId, r.kind, r.requester?.id ?? null, r.requester?.kind ?? null, r.requester?.name ?? null, r.provider.id, r.provider.kind, r.provider.name,
    r.procedure.code, r.procedure.name, JSON.stringify(r.items), r.tableVersion, r.batch?.batchId ?? null, r.batch?.index ?? null, r.batch?.size ?? null,
    r.status, r.reason, r.requestedAt, Date.parse(r.requestedAt), r.endedAt,
  ];
}

function fromRow(row: Row): ProvisionRecord {
  return {
    serial: row.serial,
    queryId: row.query_id,
    subjectId: row.subject_id,
    kind: row.kind as ProvisionKind,
    requester: row.requester_id === null ? null : { id: row.requester_id, kind: row.requester_kind as AgencyKind | null, name: row.requester_name },
    provider: { id: row.provider_id, kind: row.provider_kind as AgencyKind | null, name: row.provider_name },
    procedure: { code: row.procedure_code, name: row.procedure_name },
    items: JSON.parse(row.items) as ProvisionRecord['items'],
    tableVersion: row.table_version,
    batch: row.batch_id === null ? null : { batchId: row.batch_id, index: row.batch_index!, size: row.batch_size! },
    status: row.status as ProvisionStatus,
    reason: row.reason,
    requestedAt: row.requested_at,
    endedAt: row.ended_at,
  };
}

export interface SqliteProvisionStoreOptions {
  /** File path, or ':memory:'. */
  readonly path: string;
  /** Open an existing file without writing to it (the auditor reads the live file this way). */
  readonly readonly?: boolean;
  /**
   * What the file keeps for a person instead of their subject id (the hub passes a keyed handle, so its
   * files hold no subject id, I10); records read back carry it in `subjectId`. A rebuild that is to equal
   * a live file MUST use the same function.
   */
  readonly subjectRef: (subjectId: string) => string;
  /**
   * The person a query event is about as the file keeps them, read without opening the event (the hub:
   * the id in its key reference, libs/sealing `referenceOf`); null for none, 'shredded' to skip it.
   * Default: `subjectRef` of the subject id in the event's data.
   */
  readonly personOf?: (event: RecordedEvent) => string | null | 'shredded';
  /** SQLite page cache in service (KiB). Default PROVISION_CACHE_KIB. */
  readonly cacheKiB?: number;
  /** SQLite page cache while a catch-up applies large batches (KiB). Default PROVISION_CATCH_UP_CACHE_KIB. */
  readonly catchUpCacheKiB?: number;
}

/**
 * The provision records' page cache in service: the B-trees' upper levels. A record's leaf pages are read
 * from the operating system's file cache (not the hub's memory), so that memory does not grow with the
 * number of records (I11).
 */
export const PROVISION_CACHE_KIB = 8 * 1024;
/** The page cache while a catch-up (a rebuild, a restart far behind) writes batches of thousands of rows to four B-trees. */
export const PROVISION_CATCH_UP_CACHE_KIB = 64 * 1024;
/** A batch of at least this many events is taken for a catch-up's. */
const PROVISION_CATCH_UP_BATCH = 1000;

export class SqliteProvisionStore implements ProvisionRecordStore {
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<SqliteProvisionStore['prepare']>;
  private readonly agencies = new Map<string, AgencyEntry>();
  private readonly tables = new Map<number, TableEntry>();
  /** Records changed in the batch being applied: folded in memory, written once at its end. */
  private readonly dirty = new Map<string, ProvisionRecord>();
  /** The serials of the batch's staged push rows, by pushId. */
  private readonly dirtyPushes = new Map<string, string>();
  /** The batch's records that are in the file (updated, not inserted), as the file holds them now. */
  private readonly stored = new Map<string, ProvisionRecord>();
  /** Records as the file holds them, written (or read) in recent batches; emptied by a rollback, a reset or a forget. */
  private readonly recent = new Map<string, ProvisionRecord>();
  /** Whether rows were deleted in the batch being applied (its records are then not kept in `recent`, emptied then). */
  private forgotInBatch = false;
  private position = -1;
  private closed = false;
  private readonly lookup: ProvisionFoldLookup;
  private readonly subjectRef: (subjectId: string) => string;
  private readonly cacheKiB: number;
  private readonly catchUpCacheKiB: number;
  private catchingUp = false;

  constructor(options: SqliteProvisionStoreOptions) {
    this.subjectRef = options.subjectRef;
    this.cacheKiB = options.cacheKiB ?? PROVISION_CACHE_KIB;
    this.catchUpCacheKiB = options.catchUpCacheKiB ?? PROVISION_CATCH_UP_CACHE_KIB;
    for (const kib of [this.cacheKiB, this.catchUpCacheKiB]) if (!Number.isSafeInteger(kib) || kib < 64) throw new RangeError(`a page cache must be an integer number of KiB, at least 64, got ${kib}`);
    const readonly = options.readonly === true;
    this.db = new Database(options.path, readonly ? { readonly: true, fileMustExist: true } : {});
    try {
      if (!readonly) {
        this.db.pragma('journal_mode = WAL');
        // A projection is rebuilt from the log after a power loss; it needs no fsync per batch.
        this.db.pragma('synchronous = NORMAL');
        // Small in service; batches of thousands of rows (a catch-up) touch four B-trees: then a larger cache (cacheFor).
        this.db.pragma(`cache_size = -${this.cacheKiB}`);
        // Checkpoint the WAL into the file every ~40 MB rather than every 4 MB: fewer, larger copies.
        this.db.pragma('wal_autocheckpoint = 10000');
        this.db.exec(PROVISION_DDL);
        this.db.prepare(`INSERT OR IGNORE INTO projection_meta (key, value) VALUES ('layout', ?), ('checkpoint', '-1')`).run(String(PROVISION_LAYOUT_VERSION));
      }
      this.db.pragma('busy_timeout = 5000');
      let layout = this.metaValue('layout');
      if (!readonly && layout !== String(PROVISION_LAYOUT_VERSION)) {
        // A file of another layout is a stale projection: its tables (perhaps of another shape) are made anew,
        // then rebuilt from the log (I8).
        this.db.exec(`DROP TABLE provision_records; DROP TABLE provision_agencies; DROP TABLE provision_tables; UPDATE projection_meta SET value = '-1' WHERE key = 'checkpoint';`);
        this.db.exec(PROVISION_DDL);
        this.db.prepare(`UPDATE projection_meta SET value = ? WHERE key = 'layout'`).run(String(PROVISION_LAYOUT_VERSION));
        layout = String(PROVISION_LAYOUT_VERSION);
      }
      if (layout !== String(PROVISION_LAYOUT_VERSION)) {
        throw new ProjectionError('LAYOUT_MISMATCH', `${options.path} holds provision records of layout ${layout ?? '(none)'}; this build reads layout ${PROVISION_LAYOUT_VERSION}: delete the file and let it rebuild from the log`);
      }
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.stmt = this.prepare();
    this.loadReference();
    const subjectRef = this.subjectRef;
    const lookup: ProvisionFoldLookup = {
      person:
        options.personOf ??
        ((event) => {
          const d = event.data as { subjectId?: unknown; sealed?: unknown } | null;
          if (d?.sealed === 'shredded') return 'shredded';
          return typeof d?.subjectId === 'string' ? subjectRef(d.subjectId) : null;
        }),
      ref: subjectRef,
      agency: (id) => this.agencies.get(id),
      table: (version) => this.tables.get(version),
      tableInForce: (atMs) => pickTableInForce(this.tables.values(), atMs),
      record: (serial) => {
        const pending = this.dirty.get(serial);
        if (pending !== undefined) return pending;
        const known = this.recent.get(serial);
        if (known !== undefined) {
          this.stored.set(serial, known);
          return known;
        }
        const row = this.stmt.record.get(serial) as Row | undefined;
        if (row === undefined) return undefined;
        const record = fromRow(row);
        this.stored.set(serial, record);
        return record;
      },
      pushRecord: (pushId) => {
        const serial = this.dirtyPushes.get(pushId);
        if (serial !== undefined) return this.dirty.get(serial);
        const row = this.stmt.pushRecord.get(pushId) as Row | undefined;
        if (row === undefined) return undefined;
        // Staged since (in this batch) under its serial: that copy is the current one.
        const staged = this.dirty.get(row.serial);
        if (staged !== undefined) return staged;
        const record = fromRow(row);
        this.stored.set(row.serial, record);
        return record;
      },
    };
    this.lookup = lookup;
  }

  private metaValue(key: string): string | undefined {
    const hasMeta = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'projection_meta'`).pluck().get() !== undefined;
    return hasMeta ? (this.db.prepare('SELECT value FROM projection_meta WHERE key = ?').pluck().get(key) as string | undefined) : undefined;
  }

  private prepare() {
    const db = this.db;
    const placeholders = COLUMNS.map(() => '?').join(', ');
    return {
      record: db.prepare(`${SELECT} WHERE serial = ?`),
      pushRecord: db.prepare(`${SELECT} INDEXED BY provision_by_push WHERE query_id = ? AND kind = 'push'`),
      insert: db.prepare(`INSERT INTO provision_records (${COLUMNS.join(', ')}) VALUES (${placeholders})`),
      update: db.prepare(`UPDATE provision_records SET ${COLUMNS.slice(1).map((c) => `${c} = ?`).join(', ')} WHERE serial = ?`),
      updateUnindexed: db.prepare(`UPDATE provision_records SET ${UNINDEXED.map((i) => `${COLUMNS[i]} = ?`).join(', ')} WHERE serial = ?`),
      upsertAgency: db.prepare('INSERT OR REPLACE INTO provision_agencies (agency_id, kind, name) VALUES (?, ?, ?)'),
      upsertTable: db.prepare('INSERT OR REPLACE INTO provision_tables (version, effective_ms, procedures, items) VALUES (?, ?, ?, ?)'),
      setCheckpoint: db.prepare(`UPDATE projection_meta SET value = ? WHERE key = 'checkpoint'`),
      checkpoint: db.prepare(`SELECT value FROM projection_meta WHERE key = 'checkpoint'`).pluck(),
      page: db.prepare(`${SELECT} WHERE serial > ? ORDER BY serial LIMIT ?`),
      all: db.prepare(`${SELECT} ORDER BY serial`),
      // A citizen's page: one range of their index entries, newest first; with a cursor, past it; with an agency, those it took part in.
      citizen: [false, true].map((cursor) =>
        [false, true].map((agency) =>
          db.prepare(
            `${SELECT} INDEXED BY provision_by_subject WHERE subject_id = ? AND requested_ms >= ? AND requested_ms < ?` +
              (cursor ? ' AND (requested_ms < ? OR (requested_ms = ? AND serial < ?))' : '') +
              (agency ? ' AND (requester_id = ? OR provider_id = ?)' : '') +
              ' ORDER BY requested_ms DESC, serial DESC LIMIT ?',
          ),
        ),
      ),
      citizenMonths: db.prepare(`SELECT requested_ms AS ms, status FROM provision_records INDEXED BY provision_by_subject WHERE subject_id = ? AND requested_ms >= ? AND requested_ms < ?`),
      forgetBefore: db.prepare('DELETE FROM provision_records WHERE requested_ms < ?'),
      forgetSubject: db.prepare('DELETE FROM provision_records WHERE subject_id = ?'),
    };
  }

  private loadReference(): void {
    this.recent.clear();
    this.agencies.clear();
    this.tables.clear();
    for (const a of this.db.prepare('SELECT agency_id, kind, name FROM provision_agencies').all() as { agency_id: string; kind: AgencyKind; name: string }[]) {
      this.agencies.set(a.agency_id, { agencyId: a.agency_id, kind: a.kind, name: a.name });
    }
    for (const t of this.db.prepare('SELECT version, effective_ms, procedures, items FROM provision_tables').all() as { version: number; effective_ms: number; procedures: string; items: string }[]) {
      this.tables.set(t.version, {
        version: t.version,
        effectiveFromMs: t.effective_ms,
        procedures: new Map(JSON.parse(t.procedures) as [string, string][]),
        items: new Map(JSON.parse(t.items) as [string, string][]),
      });
    }
    this.position = Number(this.stmt.checkpoint.get() ?? -1);
  }

  async apply(events: readonly RecordedEvent[]): Promise<void> {
    this.open();
    if (events.length === 0 || events[events.length - 1]!.position <= this.position) return;
    this.cacheFor(events.length);
    const run = this.db.transaction(() => {
      let position = this.position;
      for (const e of events) {
        if (e.position <= position) continue;
        if (e.position !== position + 1) throw gapError(position + 1, e.position);
        const change = provisionChange(e, this.lookup);
        if (change !== undefined) this.stage(change);
        position = e.position;
      }
      for (const r of this.dirty.values()) this.write(r);
      this.stmt.setCheckpoint.run(String(position));
      return position;
    });
    try {
      this.position = run();
      this.remember();
    } catch (error) {
      // The transaction rolled back: drop what the batch changed in memory too.
      this.loadReference();
      throw error;
    } finally {
      this.dirty.clear();
      this.dirtyPushes.clear();
      this.stored.clear();
      this.forgotInBatch = false;
    }
  }

  /** Inserts a new record's row, or updates a stored one (only its unindexed columns when no indexed one changed). */
  private write(r: ProvisionRecord): void {
    const row = toRow(r);
    const before = this.stored.get(r.serial);
    if (before === undefined) this.stmt.insert.run(row);
    else if (sameIndexedColumns(before, r)) this.stmt.updateUnindexed.run([...UNINDEXED.map((i) => row[i]), r.serial]);
    else this.stmt.update.run([...row.slice(1), r.serial]);
    this.stored.set(r.serial, r);
  }

  /** Rows are about to be deleted: no record kept in memory is known to be in the file any more (until the batch ends). */
  private forget(): void {
    this.recent.clear();
    this.forgotInBatch = true;
  }

  /** After a committed batch: its records as the file now holds them, for the next steps of their queries. */
  private remember(): void {
    if (this.forgotInBatch) return;
    for (const [serial, r] of this.stored) {
      this.recent.delete(serial);
      this.recent.set(serial, r);
    }
    if (this.recent.size > RECENT_RECORDS) {
      // The oldest eighth at once (deleting one Map entry per insert walks ever more holes at its front).
      let n = this.recent.size - RECENT_RECORDS + (RECENT_RECORDS >> 3);
      for (const serial of this.recent.keys()) {
        this.recent.delete(serial);
        if (--n === 0) break;
      }
    }
  }

  /** The page cache now (KiB): the service size, or the catch-up's while large batches come in. */
  get pageCacheKiB(): number {
    return -Number(this.db.pragma('cache_size', { simple: true }));
  }

  /** The catch-up's page cache while large batches come in; back to the service size (pages beyond it freed) at the first small one. */
  private cacheFor(batch: number): void {
    const catchingUp = batch >= PROVISION_CATCH_UP_BATCH;
    if (catchingUp === this.catchingUp) return;
    this.catchingUp = catchingUp;
    this.db.pragma(`cache_size = -${catchingUp ? this.catchUpCacheKiB : this.cacheKiB}`);
    if (!catchingUp) this.db.pragma('shrink_memory');
  }

  /** Writes the records staged so far in this batch (before rows are deleted, so none comes back). */
  private flushDirty(): void {
    for (const r of this.dirty.values()) this.write(r);
    this.dirty.clear();
    this.dirtyPushes.clear();
  }

  private stage(change: ProvisionChange): void {
    switch (change.kind) {
      case 'record':
        this.dirty.set(change.record.serial, change.record);
        if (change.record.kind === 'push') this.dirtyPushes.set(change.record.queryId, change.record.serial);
        return;
      case 'forget-before':
        this.flushDirty();
        this.forget();
        this.stmt.forgetBefore.run(change.beforeMs);
        return;
      case 'forget-subject':
        this.flushDirty();
        this.forget();
        this.stmt.forgetSubject.run(change.subjectId);
        return;
      case 'agency': {
        const a = change.agency;
        this.agencies.set(a.agencyId, a);
        this.stmt.upsertAgency.run(a.agencyId, a.kind, a.name);
        return;
      }
      case 'table': {
        const t = change.table;
        this.tables.set(t.version, t);
        this.stmt.upsertTable.run(t.version, t.effectiveFromMs, JSON.stringify([...t.procedures]), JSON.stringify([...t.items]));
        return;
      }
      default: {
        const never: never = change;
        throw new Error(`unreachable change ${JSON.stringify(never)}`);
      }
    }
  }

  async checkpoint(): Promise<number> {
    this.open();
    return this.position;
  }

  async reset(): Promise<void> {
    this.open();
    this.db.transaction(() => {
      this.db.exec('DELETE FROM provision_records; DELETE FROM provision_agencies; DELETE FROM provision_tables;');
      this.stmt.setCheckpoint.run('-1');
    })();
    this.loadReference();
  }

  async digest(): Promise<string> {
    this.open();
    const d = new RecordDigest();
    for (const row of this.stmt.all.iterate() as IterableIterator<Row>) d.add(fromRow(row));
    return d.hex();
  }

  async records(options: { readonly afterSerial?: string; readonly limit?: number } = {}): Promise<ProvisionRecord[]> {
    this.open();
    return (this.stmt.page.all(options.afterSerial ?? '', options.limit ?? -1) as Row[]).map(fromRow);
  }

  async record(serial: string): Promise<ProvisionRecord | undefined> {
    this.open();
    const row = this.stmt.record.get(serial) as Row | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  async citizenRecords(subjectId: string, options: CitizenRecordsOptions): Promise<CitizenRecordsPage> {
    this.open();
    const q = citizenQuery(options);
    const args: unknown[] = [this.subjectRef(subjectId), q.startMs, q.endMs];
    if (q.after !== undefined) args.push(q.after.requestedMs, q.after.requestedMs, q.after.serial);
    if (q.agencyId !== undefined) args.push(q.agencyId, q.agencyId);
    const statement = this.stmt.citizen[q.after === undefined ? 0 : 1]![q.agencyId === undefined ? 0 : 1]!;
    const rows = (statement.all(...args, q.limit + 1) as Row[]).map(fromRow);
    const page = rows.slice(0, q.limit);
    return rows.length > q.limit ? { records: page.map(citizenRecord), next: cursorOf(page[page.length - 1]!) } : { records: page.map(citizenRecord) };
  }

  async citizenMonths(subjectId: string, options: CitizenMonthsOptions): Promise<CitizenMonth[]> {
    this.open();
    const { startMs, endMs } = citizenWindow(options);
    return citizenMonths(this.stmt.citizenMonths.iterate(this.subjectRef(subjectId), startMs, endMs) as IterableIterator<{ ms: number; status: ProvisionStatus }>);
  }

  async agencyRecords(agencyId: string, options: AgencyRecordsOptions = {}): Promise<AgencyRecordsPage> {
    this.open();
    const q = agencyQuery(options);
    // One index range per role; both roles merge two ranges, each already bounded by the page size.
    const range = (column: 'requester_id' | 'provider_id', excludeSelf: boolean): { sql: string; args: unknown[] } => {
      const where = [`${column} = ?`];
      const args: unknown[] = [agencyId];
      if (excludeSelf) {
        // A self-information request has no requester (NULL): it is the provider's all the same.
        where.push('(requester_id IS NULL OR requester_id <> ?)');
        args.push(agencyId);
      }
      if (q.fromMs !== undefined) {
        where.push('requested_ms >= ?');
        args.push(q.fromMs);
      }
      if (q.toMs !== undefined) {
        where.push('requested_ms < ?');
        args.push(q.toMs);
      }
      if (q.after !== undefined) {
        where.push('(requested_ms < ? OR (requested_ms = ? AND serial < ?))');
        args.push(q.after.requestedMs, q.after.requestedMs, q.after.serial);
      }
      const index = column === 'requester_id' ? 'provision_by_requester' : 'provision_by_provider';
      return { sql: `${SELECT} INDEXED BY ${index} WHERE ${where.join(' AND ')} ORDER BY requested_ms DESC, serial DESC LIMIT ?`, args: [...args, q.limit + 1] };
    };
    const fetch = (r: { sql: string; args: unknown[] }, role: AgencyRole): AgencyRecord[] => (this.db.prepare(r.sql).all(...r.args) as Row[]).map((row) => agencyRecord(fromRow(row), role));
    let rows: AgencyRecord[];
    if (q.role === 'requester') rows = fetch(range('requester_id', false), 'requester');
    else if (q.role === 'provider') rows = fetch(range('provider_id', false), 'provider');
    else rows = [...fetch(range('requester_id', false), 'requester'), ...fetch(range('provider_id', true), 'provider')].sort(byMsThenSerialDesc);
    const records = rows.slice(0, q.limit);
    return rows.length > q.limit ? { records, next: cursorOf(records[records.length - 1]!) } : { records };
  }

  async agencyMonthlyCounts(agencyId: string, options: MonthlyCountsOptions = {}): Promise<MonthlyCount[]> {
    this.open();
    const range = options.month === undefined ? { start: Number.MIN_SAFE_INTEGER, end: Number.MAX_SAFE_INTEGER } : monthRangeMs(options.month);
    // Grouped by procedure and status inside SQL; months (Japan time) are cut in code, which needs no per-row column.
    const sql = (column: 'requester_id' | 'provider_id', excludeSelf: boolean) =>
      `SELECT requested_ms AS ms, procedure_code AS code, procedure_name AS name, status FROM provision_records INDEXED BY ${column === 'requester_id' ? 'provision_by_requester' : 'provision_by_provider'}
       WHERE ${column} = ? ${excludeSelf ? 'AND (requester_id IS NULL OR requester_id <> ?)' : ''} AND requested_ms >= ? AND requested_ms < ?`;
    const counts = new Map<string, MonthlyCount>();
    const add = (rows: { ms: number; code: string; name: string | null; status: ProvisionStatus }[], role: AgencyRole) => {
      for (const r of rows) {
        const month = monthJst(r.ms);
        const key = `${month}\u0000${r.code}\u0000${r.name ?? ''}\u0000${r.name === null ? 0 : 1}\u0000${role}\u0000${r.status}`;
        const seen = counts.get(key);
        counts.set(key, seen === undefined ? { month, procedure: { code: r.code, name: r.name }, role, status: r.status, count: 1 } : { ...seen, count: seen.count + 1 });
      }
    };
    add(this.db.prepare(sql('requester_id', false)).all(agencyId, range.start, range.end) as never, 'requester');
    add(this.db.prepare(sql('provider_id', true)).all(agencyId, agencyId, range.start, range.end) as never, 'provider');
    return [...counts.values()].sort(compareCounts);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private open(): void {
    if (this.closed) throw new ProjectionError('PROJECTION_CLOSED', 'the provision record store was closed; open a new one');
  }
}

function byMsThenSerialDesc(a: AgencyRecord, b: AgencyRecord): number {
  const am = Date.parse(a.requestedAt);
  const bm = Date.parse(b.requestedAt);
  if (am !== bm) return bm - am;
  return a.serial < b.serial ? 1 : a.serial > b.serial ? -1 : 0;
}
