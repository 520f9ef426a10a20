import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * The public service mesh's tables in the agency's own SQLite file (agency.sqlite), on the AgencyStore's
 * connection: the pushes received from the hub (de-duplicated by pushId, kept across restarts), the
 * fetch that followed each, and the copy updates loaded and reported to the hub (an outbox: the update
 * and its pending report are written in one transaction, the report is sent after, with an idempotency
 * key kept in the row, so a crash between the two is finished by sending it again).
 */
export const MESH_SCHEMA = `
CREATE TABLE IF NOT EXISTS pushes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  push_id TEXT NOT NULL UNIQUE,
  serial TEXT NOT NULL,
  subscription_id TEXT NOT NULL,
  code TEXT NOT NULL,
  local_id TEXT,
  provider_agency_id TEXT NOT NULL,
  procedure_code TEXT NOT NULL,
  item_code TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  push_digest TEXT NOT NULL,
  fetch_wanted INTEGER NOT NULL CHECK (fetch_wanted IN (0, 1)),
  received_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS pushes_no_update BEFORE UPDATE ON pushes
  BEGIN SELECT RAISE(ABORT, 'received pushes are append-only'); END;
CREATE TRIGGER IF NOT EXISTS pushes_no_delete BEFORE DELETE ON pushes
  BEGIN SELECT RAISE(ABORT, 'received pushes are append-only'); END;
CREATE TABLE IF NOT EXISTS push_fetches (
  push_id TEXT PRIMARY KEY REFERENCES pushes (push_id),
  serial TEXT,
  outcome TEXT NOT NULL,
  reason TEXT,
  items_json TEXT,
  attempts INTEGER NOT NULL,
  fetched_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS push_fetches_no_update BEFORE UPDATE ON push_fetches
  BEGIN SELECT RAISE(ABORT, 'push fetches are append-only'); END;
CREATE TRIGGER IF NOT EXISTS push_fetches_no_delete BEFORE DELETE ON push_fetches
  BEGIN SELECT RAISE(ABORT, 'push fetches are append-only'); END;
CREATE TABLE IF NOT EXISTS copy_updates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  update_key TEXT NOT NULL,
  local_id TEXT NOT NULL REFERENCES persons (local_id),
  item_codes TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  request_digest TEXT NOT NULL,
  loaded_at TEXT NOT NULL,
  UNIQUE (update_key, local_id)
);
CREATE TRIGGER IF NOT EXISTS copy_updates_no_update BEFORE UPDATE ON copy_updates
  BEGIN SELECT RAISE(ABORT, 'copy updates are append-only'); END;
CREATE TRIGGER IF NOT EXISTS copy_updates_no_delete BEFORE DELETE ON copy_updates
  BEGIN SELECT RAISE(ABORT, 'copy updates are append-only'); END;
CREATE TABLE IF NOT EXISTS update_reports (
  update_row INTEGER PRIMARY KEY REFERENCES copy_updates (id),
  outcome TEXT NOT NULL,
  update_id TEXT,
  serial TEXT,
  subscribers INTEGER,
  reason TEXT,
  reported_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS update_reports_no_update BEFORE UPDATE ON update_reports
  BEGIN SELECT RAISE(ABORT, 'update reports are append-only'); END;
CREATE TRIGGER IF NOT EXISTS update_reports_no_delete BEFORE DELETE ON update_reports
  BEGIN SELECT RAISE(ABORT, 'update reports are append-only'); END;
`;

/** A push as the hub sends it (docs/intermediate-server-mesh.md); the subscriber's own code. */
export interface Push {
  readonly pushId: string;
  readonly serial: string;
  readonly subscriptionId: string;
  readonly code: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCode: string;
  readonly updatedAt: string;
  readonly issuedAt: string;
}

export type FetchOutcome = 'answered' | 'refused-by-provider' | 'denied' | 'failed' | 'not-sent';

export interface PushFetch {
  readonly serial: string | null;
  readonly outcome: FetchOutcome;
  readonly reason: string | null;
  /** The answer's items (answered only): the new value, obtained by an ordinary lawful query. */
  readonly items: Record<string, unknown> | null;
  readonly attempts: number;
  readonly fetchedAt: string;
}

export interface ReceivedPush extends Push {
  readonly id: number;
  /** The person this agency's code names, or null when the node holds no one with it. */
  readonly localId: string | null;
  readonly fetchWanted: boolean;
  readonly receivedAt: string;
  readonly fetch: PushFetch | null;
}

export type UpdateReportOutcome = 'reported' | 'refused' | 'not-reported';

export interface UpdateReport {
  readonly outcome: UpdateReportOutcome;
  readonly updateId: string | null;
  readonly serial: string | null;
  readonly subscribers: number | null;
  readonly reason: string | null;
  readonly reportedAt: string;
}

export interface CopyUpdate {
  readonly row: number;
  readonly updateKey: string;
  readonly localId: string;
  readonly itemCodes: readonly string[];
  readonly updatedAt: string;
  readonly idempotencyKey: string;
  readonly requestDigest: string;
  readonly loadedAt: string;
  /** Null while the report to the hub is pending (not sent, or its answer not yet stored). */
  readonly report: UpdateReport | null;
}

/** Every field that makes a push what it is; issuedAt is left out (a redelivery may be stamped anew). */
export function digestOfPush(p: Push): string {
  return createHash('sha256').update(JSON.stringify([p.pushId, p.serial, p.subscriptionId, p.code, p.providerAgencyId, p.procedureCode, p.itemCode, p.updatedAt])).digest('hex');
}

interface PushRow {
  id: number;
  push_id: string;
  serial: string;
  subscription_id: string;
  code: string;
  local_id: string | null;
  provider_agency_id: string;
  procedure_code: string;
  item_code: string;
  updated_at: string;
  issued_at: string;
  push_digest: string;
  fetch_wanted: number;
  received_at: string;
  f_serial: string | null;
  f_outcome: FetchOutcome | null;
  f_reason: string | null;
  f_items: string | null;
  f_attempts: number | null;
  f_at: string | null;
}

interface UpdateRow {
  id: number;
  update_key: string;
  local_id: string;
  item_codes: string;
  updated_at: string;
  idempotency_key: string;
  request_digest: string;
  loaded_at: string;
  r_outcome: UpdateReportOutcome | null;
  r_update_id: string | null;
  r_serial: string | null;
  r_subscribers: number | null;
  r_reason: string | null;
  r_at: string | null;
}

const PUSH_SELECT = `SELECT p.*, f.serial AS f_serial, f.outcome AS f_outcome, f.reason AS f_reason, f.items_json AS f_items, f.attempts AS f_attempts, f.fetched_at AS f_at
  FROM pushes p LEFT JOIN push_fetches f ON f.push_id = p.push_id`;
const UPDATE_SELECT = `SELECT u.*, r.outcome AS r_outcome, r.update_id AS r_update_id, r.serial AS r_serial, r.subscribers AS r_subscribers, r.reason AS r_reason, r.reported_at AS r_at
  FROM copy_updates u LEFT JOIN update_reports r ON r.update_row = u.id`;

export class MeshStore {
  constructor(private readonly db: Database.Database) {
    db.exec(MESH_SCHEMA);
  }

  /**
   * Records a push once per pushId (durable before it returns: synchronous=FULL). The same pushId again
   * with the same content is a duplicate; with other content, `conflict`.
   */
  receivePush(push: Push, localId: string | null, fetchWanted: boolean, receivedAt: Date): { duplicate: boolean; conflict: boolean; push: ReceivedPush } {
    const digest = digestOfPush(push);
    const inserted = this.db
      .prepare(
        `INSERT OR IGNORE INTO pushes (push_id, serial, subscription_id, code, local_id, provider_agency_id, procedure_code, item_code, updated_at, issued_at, push_digest, fetch_wanted, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(push.pushId, push.serial, push.subscriptionId, push.code, localId, push.providerAgencyId, push.procedureCode, push.itemCode, push.updatedAt, push.issuedAt, digest, fetchWanted ? 1 : 0, receivedAt.toISOString()).changes;
    const row = this.db.prepare(`${PUSH_SELECT} WHERE p.push_id = ?`).get(push.pushId) as PushRow;
    return { duplicate: inserted === 0, conflict: inserted === 0 && row.push_digest !== digest, push: toPush(row) };
  }

  push(pushId: string): ReceivedPush | undefined {
    const row = this.db.prepare(`${PUSH_SELECT} WHERE p.push_id = ?`).get(pushId) as PushRow | undefined;
    return row && toPush(row);
  }

  /** Newest first; `before` is the id of the last line of the previous page. */
  pushes(options: { limit: number; before?: number }): ReceivedPush[] {
    const rows = this.db.prepare(`${PUSH_SELECT} WHERE (@before IS NULL OR p.id < @before) ORDER BY p.id DESC LIMIT @limit`).all({ before: options.before ?? null, limit: options.limit }) as PushRow[];
    return rows.map(toPush);
  }

  /** Pushes whose fetch was wanted and has no outcome yet (oldest first): resumed at start. */
  pendingFetches(): ReceivedPush[] {
    return (this.db.prepare(`${PUSH_SELECT} WHERE p.fetch_wanted = 1 AND f.push_id IS NULL ORDER BY p.id`).all() as PushRow[]).map(toPush);
  }

  /** The fetch's one outcome; a second is ignored (the first stands). */
  recordFetch(pushId: string, fetch: PushFetch): void {
    this.db
      .prepare('INSERT OR IGNORE INTO push_fetches (push_id, serial, outcome, reason, items_json, attempts, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(pushId, fetch.serial, fetch.outcome, fetch.reason, fetch.items === null ? null : JSON.stringify(fetch.items), fetch.attempts, fetch.fetchedAt);
  }

  /** The update rows of one update key, in the order they were loaded. */
  updates(updateKey: string): CopyUpdate[] {
    return (this.db.prepare(`${UPDATE_SELECT} WHERE u.update_key = ? ORDER BY u.id`).all(updateKey) as UpdateRow[]).map(toUpdate);
  }

  /** Every update whose report is pending, oldest first. */
  pendingReports(): CopyUpdate[] {
    return (this.db.prepare(`${UPDATE_SELECT} WHERE r.update_row IS NULL ORDER BY u.id`).all() as UpdateRow[]).map(toUpdate);
  }

  /** Inserts one update row (inside the caller's transaction). */
  addUpdate(u: Omit<CopyUpdate, 'row' | 'report'>): void {
    this.db
      .prepare('INSERT INTO copy_updates (update_key, local_id, item_codes, updated_at, idempotency_key, request_digest, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(u.updateKey, u.localId, JSON.stringify(u.itemCodes), u.updatedAt, u.idempotencyKey, u.requestDigest, u.loadedAt);
  }

  recordReport(row: number, report: UpdateReport): void {
    this.db
      .prepare('INSERT OR IGNORE INTO update_reports (update_row, outcome, update_id, serial, subscribers, reason, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(row, report.outcome, report.updateId, report.serial, report.subscribers, report.reason, report.reportedAt);
  }

  counts(): { pushes: number; pendingFetches: number; pendingReports: number } {
    const one = (sql: string): number => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      pushes: one('SELECT count(*) AS n FROM pushes'),
      pendingFetches: one('SELECT count(*) AS n FROM pushes p LEFT JOIN push_fetches f ON f.push_id = p.push_id WHERE p.fetch_wanted = 1 AND f.push_id IS NULL'),
      pendingReports: one('SELECT count(*) AS n FROM copy_updates u LEFT JOIN update_reports r ON r.update_row = u.id WHERE r.update_row IS NULL'),
    };
  }
}

function toPush(row: PushRow): ReceivedPush {
  return {
    id: row.id,
    pushId: row.push_id,
    serial: row.serial,
    subscriptionId: row.subscription_id,
    code: row.code,
    localId: row.local_id,
    providerAgencyId: row.provider_agency_id,
    procedureCode: row.procedure_code,
    itemCode: row.item_code,
    updatedAt: row.updated_at,
    issuedAt: row.issued_at,
    fetchWanted: row.fetch_wanted === 1,
    receivedAt: row.received_at,
    fetch:
      row.f_outcome === null
        ? null
        : {
            serial: row.f_serial,
            outcome: row.f_outcome,
            reason: row.f_reason,
            items: row.f_items === null ? null : (JSON.parse(row.f_items) as Record<string, unknown>),
            attempts: row.f_attempts ?? 0,
            fetchedAt: row.f_at!,
          },
  };
}

function toUpdate(row: UpdateRow): CopyUpdate {
  return {
    row: row.id,
    updateKey: row.update_key,
    localId: row.local_id,
    itemCodes: JSON.parse(row.item_codes) as string[],
    updatedAt: row.updated_at,
    idempotencyKey: row.idempotency_key,
    requestDigest: row.request_digest,
    loadedAt: row.loaded_at,
    report:
      row.r_outcome === null
        ? null
        : { outcome: row.r_outcome, updateId: row.r_update_id, serial: row.r_serial, subscribers: row.r_subscribers, reason: row.r_reason, reportedAt: row.r_at! },
  };
}
