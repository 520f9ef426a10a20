import type { RecordedEvent } from '#ledger';
import { SqliteFold } from '#projections';

/** The pushes projection's file in the hub's data directory. */
export const PUSHES_FILE = 'pushes.sqlite';
export const PUSHES_LAYOUT_VERSION = 1;

export type PushStatus = 'pending' | 'delivered' | 'abandoned';
export const PUSH_STATUSES: readonly PushStatus[] = ['pending', 'delivered', 'abandoned'];

/** One push as the projection keeps it: ids, agencies, procedure, item, times and outcome; the person only as a keyed reference. */
export interface StoredPush {
  readonly pushId: string;
  readonly serial: string;
  readonly updateId: string;
  readonly requesterAgencyId: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCode: string;
  readonly updatedAt: string;
  readonly issuedAt: string;
  readonly deliverBy: string;
  readonly status: PushStatus;
  readonly attempts: number;
  readonly endSerial: string | null;
  readonly endedAt: string | null;
  readonly reason: string | null;
}

/** A push due for a try, with the worker's schedule. */
export interface DuePush {
  readonly pushId: string;
  readonly deliverByMs: number;
  readonly tries: number;
  readonly lastError: string | null;
}

/** A report whose fan-out has not issued every push it announced. */
export interface OpenFanOut {
  readonly updateId: string;
  readonly pushes: number;
  readonly issued: number;
}

export interface PushPage {
  readonly pushes: StoredPush[];
  readonly next?: string;
}

export const DEFAULT_PUSH_LIMIT = 50;
export const MAX_PUSH_LIMIT = 500;

const DDL = `
CREATE TABLE IF NOT EXISTS push_updates (
  update_id TEXT PRIMARY KEY,
  serial TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  item_codes TEXT NOT NULL,
  pushes INTEGER NOT NULL,
  issued INTEGER NOT NULL DEFAULT 0,
  reported_at TEXT NOT NULL,
  resumed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS push_updates_open ON push_updates (reported_at) WHERE issued < pushes AND resumed = 0;
CREATE TABLE IF NOT EXISTS pushes (
  push_id TEXT PRIMARY KEY,
  serial TEXT NOT NULL,
  update_id TEXT NOT NULL,
  person_ref TEXT,
  requester_id TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  procedure_code TEXT NOT NULL,
  item_code TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  issued_ms INTEGER NOT NULL,
  deliver_by TEXT NOT NULL,
  deliver_by_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  end_serial TEXT,
  ended_at TEXT,
  reason TEXT,
  tries INTEGER NOT NULL DEFAULT 0,
  next_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pushes_due ON pushes (next_ms) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS pushes_by_requester ON pushes (requester_id, issued_ms, push_id);
CREATE INDEX IF NOT EXISTS pushes_by_provider ON pushes (provider_id, issued_ms, push_id);
CREATE INDEX IF NOT EXISTS pushes_by_person ON pushes (person_ref, issued_ms, push_id) WHERE person_ref IS NOT NULL;
`;

const PUSH_COLUMNS = `push_id, serial, update_id, requester_id, provider_id, procedure_code, item_code, updated_at, issued_at, deliver_by, status, attempts, end_serial, ended_at, reason`;

interface PushRow {
  push_id: string;
  serial: string;
  update_id: string;
  requester_id: string;
  provider_id: string;
  procedure_code: string;
  item_code: string;
  updated_at: string;
  issued_at: string;
  deliver_by: string;
  status: string;
  attempts: number;
  end_serial: string | null;
  ended_at: string | null;
  reason: string | null;
}

function fromRow(r: PushRow): StoredPush {
  return {
    pushId: r.push_id,
    serial: r.serial,
    updateId: r.update_id,
    requesterAgencyId: r.requester_id,
    providerAgencyId: r.provider_id,
    procedureCode: r.procedure_code,
    itemCode: r.item_code,
    updatedAt: r.updated_at,
    issuedAt: r.issued_at,
    deliverBy: r.deliver_by,
    status: r.status as PushStatus,
    attempts: r.attempts,
    endSerial: r.end_serial,
    endedAt: r.ended_at,
    reason: r.reason,
  };
}

const CURSOR = /^(\d{1,16})\.([0-9a-f-]{36})$/;

/**
 * Pushes as a projection of the log in their own SQLite file with a checkpoint (I8, I11): the reports
 * (CopyUpdated, with how many pushes each announced and how many were issued), every push (PushIssued)
 * and its end (PushDelivered, PushAbandoned). Pending deliveries are the rows still `pending`: the
 * delivery worker reads them page by page from an index, so nothing per push is held in memory, and a hub
 * killed in the middle of a fan-out finds after restart every push still to deliver.
 *
 * Beside the folded columns the worker keeps its schedule (`tries`, `next_ms`, `last_error`, and a
 * report's `resumed` flag): soft state, not from the log (a rebuild starts the retries over); the rows'
 * digest leaves it out. The person is kept only as the keyed reference of their key (never a subject id).
 */
export class PushStore extends SqliteFold {
  readonly #insertUpdate;
  readonly #insertPush;
  readonly #countIssued;
  readonly #endPush;
  readonly #due;
  readonly #nextDue;
  readonly #reschedule;
  readonly #pending;

  constructor(
    path: string,
    private readonly personOf: (event: RecordedEvent) => string | null | 'shredded',
  ) {
    super(
      { path },
      {
        name: 'the pushes',
        layoutVersion: PUSHES_LAYOUT_VERSION,
        ddl: DDL,
        tables: ['push_updates', 'pushes'],
        rows: { query: `SELECT ${PUSH_COLUMNS} FROM pushes ORDER BY push_id`, key: 'push_id' },
      },
    );
    this.#insertUpdate = this.db.prepare(
      `INSERT OR IGNORE INTO push_updates (update_id, serial, provider_id, item_codes, pushes, reported_at) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.#insertPush = this.db.prepare(
      `INSERT OR IGNORE INTO pushes (push_id, serial, update_id, person_ref, requester_id, provider_id, procedure_code, item_code, updated_at, issued_at, issued_ms, deliver_by, deliver_by_ms, status)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`,
    );
    this.#countIssued = this.db.prepare(`UPDATE push_updates SET issued = issued + 1 WHERE update_id = ?`);
    this.#endPush = this.db.prepare(`UPDATE pushes SET status = ?, attempts = ?, end_serial = ?, ended_at = ?, reason = ? WHERE push_id = ? AND status = 'pending'`);
    this.#due = this.db.prepare(`SELECT push_id, deliver_by_ms, tries, last_error FROM pushes WHERE status = 'pending' AND next_ms <= ? ORDER BY next_ms LIMIT ?`);
    this.#nextDue = this.db.prepare(`SELECT MIN(next_ms) FROM pushes WHERE status = 'pending'`).pluck();
    this.#reschedule = this.db.prepare(`UPDATE pushes SET tries = ?, next_ms = ?, last_error = ? WHERE push_id = ?`);
    this.#pending = this.db.prepare(`SELECT COUNT(*) FROM pushes WHERE status = 'pending'`).pluck();
  }

  protected applyEvent(event: RecordedEvent): void {
    const d = event.data as Record<string, unknown>;
    switch (event.type) {
      case 'CopyUpdated':
        this.#insertUpdate.run(d['updateId'], event.serial, d['providerAgencyId'], JSON.stringify(d['itemCodes']), d['pushes'], d['reportedAt']);
        return;
      case 'PushIssued': {
        const person = this.personOf(event);
        const issuedAt = String(d['issuedAt']);
        const deliverBy = String(d['deliverBy']);
        const inserted = this.#insertPush.run(
          d['pushId'], event.serial, d['updateId'], person === 'shredded' ? null : person, d['requesterAgencyId'], d['providerAgencyId'], d['procedureCode'], d['itemCode'],
          d['updatedAt'], issuedAt, Date.parse(issuedAt), deliverBy, Date.parse(deliverBy),
        );
        if (inserted.changes > 0) this.#countIssued.run(d['updateId']);
        return;
      }
      case 'PushDelivered':
        this.#endPush.run('delivered', d['attempts'], event.serial, d['deliveredAt'], d['duplicate'] === true ? 'duplicate' : null, d['pushId']);
        return;
      case 'PushAbandoned':
        this.#endPush.run('abandoned', d['attempts'], event.serial, d['abandonedAt'], d['lastError'], d['pushId']);
        return;
      default:
        return;
    }
  }

  /** Pending pushes whose next try is due at `nowMs`, soonest first, at most `limit`, none of `skip`. */
  due(nowMs: number, limit: number, skip: ReadonlySet<string>): DuePush[] {
    this.checkOpen();
    const rows = this.#due.all(nowMs, limit + skip.size) as { push_id: string; deliver_by_ms: number; tries: number; last_error: string | null }[];
    return rows
      .filter((r) => !skip.has(r.push_id))
      .slice(0, limit)
      .map((r) => ({ pushId: r.push_id, deliverByMs: r.deliver_by_ms, tries: r.tries, lastError: r.last_error }));
  }

  /** The next time any pending push is due (undefined: none pending). */
  nextDueMs(): number | undefined {
    this.checkOpen();
    const v = this.#nextDue.get() as number | null;
    return v ?? undefined;
  }

  /** The worker's schedule after a try: `tries` so far, the next try's time, the last failure. */
  reschedule(pushId: string, tries: number, nextMs: number, lastError: string | null): void {
    this.checkOpen();
    this.#reschedule.run(tries, nextMs, lastError, pushId);
  }

  pendingCount(): number {
    this.checkOpen();
    return this.#pending.get() as number;
  }

  /** Reports whose fan-out issued fewer pushes than announced and was not resumed yet by this file's worker. */
  openFanOuts(limit: number): OpenFanOut[] {
    this.checkOpen();
    return (this.db.prepare(`SELECT update_id, pushes, issued FROM push_updates WHERE issued < pushes AND resumed = 0 ORDER BY reported_at LIMIT ?`).all(limit) as { update_id: string; pushes: number; issued: number }[]).map(
      (r) => ({ updateId: r.update_id, pushes: r.pushes, issued: r.issued }),
    );
  }

  markResumed(updateId: string): void {
    this.checkOpen();
    this.db.prepare(`UPDATE push_updates SET resumed = 1 WHERE update_id = ?`).run(updateId);
  }

  update(updateId: string): { readonly pushes: number; readonly issued: number } | undefined {
    this.checkOpen();
    return this.db.prepare(`SELECT pushes, issued FROM push_updates WHERE update_id = ?`).get(updateId) as { pushes: number; issued: number } | undefined;
  }

  push(pushId: string): StoredPush | undefined {
    this.checkOpen();
    const row = this.db.prepare(`SELECT ${PUSH_COLUMNS} FROM pushes WHERE push_id = ?`).get(pushId) as PushRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /** An agency's pushes, as subscriber (requester), provider, or both; newest first. */
  agencyPushes(agencyId: string, options: { role?: 'subscriber' | 'provider'; limit?: number; after?: string } = {}): PushPage {
    this.checkOpen();
    const columns = options.role === 'subscriber' ? ['requester_id'] : options.role === 'provider' ? ['provider_id'] : ['requester_id', 'provider_id'];
    return this.#page(columns, agencyId, options);
  }

  /** The pushes about one person (their keyed reference), newest first. */
  personPushes(personRef: string, options: { limit?: number; after?: string } = {}): PushPage {
    this.checkOpen();
    return this.#page(['person_ref'], personRef, options);
  }

  #page(columns: readonly string[], value: string, options: { limit?: number; after?: string }): PushPage {
    const limit = Math.min(Math.max(options.limit ?? DEFAULT_PUSH_LIMIT, 1), MAX_PUSH_LIMIT);
    const cursor = options.after === undefined ? undefined : CURSOR.exec(options.after);
    const [ms, id] = cursor === undefined || cursor === null ? [Number.MAX_SAFE_INTEGER, 'g'] : [Number(cursor[1]), cursor[2]!];
    // One index range per column; an agency that is both sides of a push (never: a subscriber is never its own provider) would be listed once per side.
    const parts = columns.map((c) => `SELECT ${PUSH_COLUMNS}, issued_ms FROM pushes WHERE ${c} = @value AND (issued_ms < @ms OR (issued_ms = @ms AND push_id < @id))`);
    const rows = this.db
      .prepare(`SELECT * FROM (${parts.join(' UNION ')}) ORDER BY issued_ms DESC, push_id DESC LIMIT @limit`)
      .all({ value, ms, id, limit: limit + 1 }) as (PushRow & { issued_ms: number })[];
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { pushes: page.map(fromRow), ...(rows.length > limit && last !== undefined ? { next: `${last.issued_ms}.${last.push_id}` } : {}) };
  }
}
