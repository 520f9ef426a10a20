import type { RecordedEvent } from '#ledger';
import type { AgencyKind, SubscriptionCreatedData, SubscriptionEndReason, SubscriptionStatus } from '#linkage';
import { SqliteFold, type SqliteFoldOptions } from '#projections';

/** The index file in the hub's data directory, beside the ledger. */
export const SUBSCRIPTION_INDEX_FILE = 'subscriptions.sqlite';
export const SUBSCRIPTION_INDEX_LAYOUT_VERSION = 2;
export const DEFAULT_SUBSCRIPTION_LIMIT = 100;
export const MAX_SUBSCRIPTION_LIMIT = 1000;

/** One subscription as the index keeps it: clear fields, the person as a reference, the code still sealed. */
export interface StoredSubscription {
  readonly subscriptionId: string;
  /** Its position in the log (the SubscriptionCreated event): the order of a listing. */
  readonly position: number;
  readonly serial: string;
  readonly requesterAgencyId: string;
  readonly requesterKind: AgencyKind;
  readonly providerAgencyId: string;
  readonly providerKind: AgencyKind;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly tableVersion: number;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly status: SubscriptionStatus;
  readonly endedAt?: string;
  readonly endReason?: SubscriptionEndReason | 'CANCELLED' | 'EXPIRED';
  /** The stored SubscriptionCreated (its sealed section, the subscriber's code in it), for the hub to open. */
  readonly created: { readonly streamId: string; readonly schemaVersion: number; readonly data: Readonly<Record<string, unknown>> };
}

export interface SubscriptionPage {
  readonly subscriptions: StoredSubscription[];
  /** Present when more remain: pass it as `after`. */
  readonly next?: string;
}

/** An active subscriber of one provider's item for one person. */
export interface ActiveRow {
  readonly subscriptionId: string;
  readonly requesterAgencyId: string;
  readonly requesterKind: AgencyKind;
  readonly providerKind: AgencyKind;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
}

export interface SubscriptionIndexOptions extends SqliteFoldOptions {
  /** The reference the file keeps for a person instead of the subject id (the hub: the id of their key, I10). */
  readonly subjectRef: (subjectId: string) => string;
  /** The person a SubscriptionCreated is for, read without opening it ('shredded' to skip it). */
  readonly personOf: (event: RecordedEvent) => string | null | 'shredded';
  /** Opens a KeysShredded event (its erased subject is sealed, I10). */
  readonly open: (event: RecordedEvent) => RecordedEvent;
}

const DDL = `
CREATE TABLE IF NOT EXISTS subscriptions (
  subscription_id TEXT PRIMARY KEY,
  position INTEGER NOT NULL UNIQUE,
  serial TEXT NOT NULL,
  requester_agency_id TEXT NOT NULL,
  requester_kind TEXT NOT NULL,
  provider_agency_id TEXT NOT NULL,
  provider_kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  procedure_code TEXT NOT NULL,
  item_codes TEXT NOT NULL,
  table_version INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_at TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  ended_at TEXT,
  end_reason TEXT,
  stream_id TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscriptions_by_requester ON subscriptions (requester_agency_id, position);
CREATE INDEX IF NOT EXISTS subscriptions_active_by_expiry ON subscriptions (expires_ms) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS subscriptions_active_by_row ON subscriptions (requester_kind, procedure_code, provider_kind) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS subscriptions_by_subject ON subscriptions (subject, position);
CREATE INDEX IF NOT EXISTS subscriptions_by_created ON subscriptions (created_ms);
CREATE TABLE IF NOT EXISTS subscription_items (
  provider_agency_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  item_code TEXT NOT NULL,
  subscription_id TEXT NOT NULL,
  PRIMARY KEY (provider_agency_id, subject, item_code, subscription_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscription_items_by_subscription ON subscription_items (subscription_id);
`;

const COLUMNS =
  'subscription_id, position, serial, requester_agency_id, requester_kind, provider_agency_id, provider_kind, procedure_code, item_codes, table_version, created_at, expires_at, status, ended_at, end_reason, stream_id, schema_version, data';

interface Row {
  subscription_id: string;
  position: number;
  serial: string;
  requester_agency_id: string;
  requester_kind: string;
  provider_agency_id: string;
  provider_kind: string;
  procedure_code: string;
  item_codes: string;
  table_version: number;
  created_at: string;
  expires_at: string;
  status: string;
  ended_at: string | null;
  end_reason: string | null;
  stream_id: string;
  schema_version: number;
  data: string;
}

/**
 * The subscriptions (issue 14) as a projection of their events in its own SQLite file with a stored
 * checkpoint (I8, I11): one row per subscription (its state, the person kept as the id of their key, the
 * subscriber's code left sealed in the stored event), and, for the active ones, one row per (provider,
 * person, item): what the fan-out of an update reads, one index range. Nothing per person is held in
 * memory. Rebuilt from the log when deleted, to the same rows (`digest()`); an erasure (KeysShredded)
 * deletes the person's rows, a retention sweep those created in the years it shreds.
 */
export class SqliteSubscriptionIndex extends SqliteFold {
  readonly #s;
  readonly #subjectRef: (subjectId: string) => string;
  readonly #personOf: (event: RecordedEvent) => string | null | 'shredded';
  readonly #open: (event: RecordedEvent) => RecordedEvent;

  constructor(options: SubscriptionIndexOptions) {
    super(options, {
      name: 'the subscription index',
      layoutVersion: SUBSCRIPTION_INDEX_LAYOUT_VERSION,
      ddl: DDL,
      tables: ['subscriptions', 'subscription_items'],
      rows: {
        query: `SELECT k, v FROM (
  SELECT 'sub:' || subscription_id AS k, json_array(position, serial, requester_agency_id, requester_kind, provider_agency_id, provider_kind, subject, procedure_code, item_codes, table_version, created_at, expires_at, status, ended_at, end_reason, stream_id, schema_version, data) AS v FROM subscriptions
  UNION ALL SELECT 'item:' || provider_agency_id || '/' || subject || '/' || item_code || '/' || subscription_id, '' FROM subscription_items
) ORDER BY k`,
        key: 'k',
      },
    });
    this.#subjectRef = options.subjectRef;
    this.#personOf = options.personOf;
    this.#open = options.open;
    const p = (sql: string) => this.db.prepare(sql);
    this.#s = {
      insert: p(
        `INSERT OR IGNORE INTO subscriptions (subscription_id, position, serial, requester_agency_id, requester_kind, provider_agency_id, provider_kind, subject, procedure_code, item_codes, table_version, created_at, created_ms, expires_at, expires_ms, status, stream_id, schema_version, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)`,
      ),
      insertItem: p('INSERT OR IGNORE INTO subscription_items (provider_agency_id, subject, item_code, subscription_id) VALUES (?, ?, ?, ?)'),
      end: p(`UPDATE subscriptions SET status = ?, ended_at = ?, end_reason = ? WHERE subscription_id = ? AND status = 'active'`),
      dropItems: p('DELETE FROM subscription_items WHERE subscription_id = ?'),
      one: p(`SELECT ${COLUMNS} FROM subscriptions WHERE subscription_id = ?`),
      page: p(`SELECT ${COLUMNS} FROM subscriptions WHERE requester_agency_id = ? AND position > ? ORDER BY position LIMIT ?`),
      pageOfSubject: p(`SELECT ${COLUMNS} FROM subscriptions WHERE subject = ? AND position > ? ORDER BY position LIMIT ?`),
      active: p(
        `SELECT s.subscription_id, s.requester_agency_id, s.requester_kind, s.provider_kind, s.procedure_code, s.item_codes FROM subscription_items i JOIN subscriptions s ON s.subscription_id = i.subscription_id
         WHERE i.provider_agency_id = ? AND i.subject = ? AND i.item_code = ? AND s.status = 'active' AND s.expires_ms > ? ORDER BY s.position`,
      ),
      overlapping: p(
        `SELECT s.subscription_id, s.item_codes FROM subscription_items i JOIN subscriptions s ON s.subscription_id = i.subscription_id
         WHERE i.provider_agency_id = ? AND i.subject = ? AND i.item_code IN (SELECT value FROM json_each(?)) AND s.requester_agency_id = ? AND s.status = 'active' AND s.expires_ms > ? ORDER BY s.position LIMIT 1`,
      ),
      due: p(`SELECT subscription_id FROM subscriptions INDEXED BY subscriptions_active_by_expiry WHERE status = 'active' AND expires_ms <= ? ORDER BY expires_ms LIMIT ?`).pluck(),
      activeRows: p(`SELECT DISTINCT requester_kind, procedure_code, provider_kind FROM subscriptions WHERE status = 'active'`),
      activeOfRow: p(
        `SELECT subscription_id, item_codes FROM subscriptions INDEXED BY subscriptions_active_by_row WHERE status = 'active' AND requester_kind = ? AND procedure_code = ? AND provider_kind = ? AND subscription_id > ? ORDER BY subscription_id LIMIT ?`,
      ),
      subjectIds: p('SELECT subscription_id FROM subscriptions WHERE subject = ?').pluck(),
      forgetSubject: p('DELETE FROM subscriptions WHERE subject = ?'),
      createdBefore: p('SELECT subscription_id FROM subscriptions WHERE created_ms < ?').pluck(),
      forgetBefore: p('DELETE FROM subscriptions WHERE created_ms < ?'),
    };
  }

  protected applyEvent(event: RecordedEvent): void {
    switch (event.type) {
      case 'SubscriptionCreated':
        return this.#created(event);
      case 'SubscriptionCancelled':
        return this.#ended(event, 'cancelled', 'cancelledAt', 'CANCELLED');
      case 'SubscriptionExpired':
        return this.#ended(event, 'expired', 'expiredAt', 'EXPIRED');
      case 'SubscriptionEnded':
        return this.#ended(event, 'ended', 'endedAt', undefined);
      case 'KeysShredded':
        if (event.streamId === 'keys-shredded') this.#forget(this.#open(event));
        return;
      default:
        return;
    }
  }

  #created(event: RecordedEvent): void {
    const person = this.#personOf(event);
    // Its key was shredded (or it names no one): nothing to keep (a rebuild skips it as the live index forgot it).
    if (person === 'shredded' || person === null) return;
    const d = event.data as Omit<SubscriptionCreatedData, 'subjectId' | 'requesterCode'>;
    this.#s.insert.run(
      d.subscriptionId,
      event.position,
      event.serial,
      d.requesterAgencyId,
      d.requesterKind,
      d.providerAgencyId,
      d.providerKind,
      person,
      d.procedureCode,
      JSON.stringify(d.itemCodes),
      d.tableVersion,
      d.createdAt,
      Date.parse(d.createdAt),
      d.expiresAt,
      Date.parse(d.expiresAt),
      event.streamId,
      event.schemaVersion,
      JSON.stringify(event.data),
    );
    for (const item of d.itemCodes) this.#s.insertItem.run(d.providerAgencyId, person, item, d.subscriptionId);
  }

  #ended(event: RecordedEvent, status: SubscriptionStatus, timeField: string, reason: string | undefined): void {
    const d = event.data as Record<string, unknown>;
    const id = d['subscriptionId'];
    const at = d[timeField];
    if (typeof id !== 'string' || typeof at !== 'string') return;
    const endReason = reason ?? (typeof d['reason'] === 'string' ? d['reason'] : null);
    this.#s.end.run(status, at, endReason, id);
    this.#s.dropItems.run(id);
  }

  #forget(event: RecordedEvent): void {
    const d = event.data as { scope?: unknown; throughEpoch?: unknown; subject?: unknown };
    if (d.scope === 'retention' && typeof d.throughEpoch === 'number') {
      const before = Date.UTC(d.throughEpoch + 1, 0, 1) - 9 * 3600 * 1000;
      for (const id of this.#s.createdBefore.all(before) as string[]) this.#s.dropItems.run(id);
      this.#s.forgetBefore.run(before);
    } else if (d.scope === 'erasure' && typeof d.subject === 'string') {
      const ref = this.#subjectRef(d.subject);
      for (const id of this.#s.subjectIds.all(ref) as string[]) this.#s.dropItems.run(id);
      this.#s.forgetSubject.run(ref);
    }
  }

  /** The active, unexpired subscriptions to `providerAgencyId`'s `itemCode` for the person, oldest first. */
  activeSubscribers(providerAgencyId: string, subjectId: string, itemCode: string, nowMs: number): ActiveRow[] {
    this.checkOpen();
    const rows = this.#s.active.all(providerAgencyId, this.#subjectRef(subjectId), itemCode, nowMs) as {
      subscription_id: string;
      requester_agency_id: string;
      requester_kind: AgencyKind;
      provider_kind: AgencyKind;
      procedure_code: string;
      item_codes: string;
    }[];
    return rows.map((r) => ({
      subscriptionId: r.subscription_id,
      requesterAgencyId: r.requester_agency_id,
      requesterKind: r.requester_kind,
      providerKind: r.provider_kind,
      procedureCode: r.procedure_code,
      itemCodes: JSON.parse(r.item_codes) as string[],
    }));
  }

  /**
   * The oldest of `requesterAgencyId`'s active, unexpired subscriptions to any of `itemCodes` of
   * `providerAgencyId` for the person (one index range per item), or undefined when it holds none.
   */
  overlapping(requesterAgencyId: string, providerAgencyId: string, subjectId: string, itemCodes: readonly string[], nowMs: number): { readonly subscriptionId: string; readonly itemCodes: readonly string[] } | undefined {
    this.checkOpen();
    const row = this.#s.overlapping.get(providerAgencyId, this.#subjectRef(subjectId), JSON.stringify(itemCodes), requesterAgencyId, nowMs) as { subscription_id: string; item_codes: string } | undefined;
    return row === undefined ? undefined : { subscriptionId: row.subscription_id, itemCodes: JSON.parse(row.item_codes) as string[] };
  }

  /** One subscription, whoever holds it (the caller checks it is theirs). */
  subscription(subscriptionId: string): StoredSubscription | undefined {
    this.checkOpen();
    const row = this.#s.one.get(subscriptionId) as Row | undefined;
    return row === undefined ? undefined : stored(row);
  }

  /** An agency's subscriptions in the order they were made; `after` is the `next` of the previous page. */
  page(requesterAgencyId: string, options: { readonly limit?: number; readonly after?: string } = {}): SubscriptionPage {
    this.checkOpen();
    const limit = options.limit ?? DEFAULT_SUBSCRIPTION_LIMIT;
    const after = options.after === undefined ? -1 : Number(options.after);
    const rows = this.#s.page.all(requesterAgencyId, after, limit + 1) as Row[];
    const subscriptions = rows.slice(0, limit).map(stored);
    return rows.length > limit ? { subscriptions, next: String(rows[limit - 1]!.position) } : { subscriptions };
  }

  /** The subscriptions to a person's information (the citizen's own view), in the order they were made. */
  pageOfSubject(subjectId: string, options: { readonly limit?: number; readonly after?: string } = {}): SubscriptionPage {
    this.checkOpen();
    const limit = options.limit ?? DEFAULT_SUBSCRIPTION_LIMIT;
    const after = options.after === undefined ? -1 : Number(options.after);
    const rows = this.#s.pageOfSubject.all(this.#subjectRef(subjectId), after, limit + 1) as Row[];
    const subscriptions = rows.slice(0, limit).map(stored);
    return rows.length > limit ? { subscriptions, next: String(rows[limit - 1]!.position) } : { subscriptions };
  }

  /** Up to `limit` active subscriptions whose expiry is at or before `nowMs`, the earliest first. */
  due(nowMs: number, limit: number): string[] {
    this.checkOpen();
    return this.#s.due.all(nowMs, limit) as string[];
  }

  /** The distinct (requester kind, procedure, provider kind) rows active subscriptions rest on. */
  activeTableRows(): { readonly requesterKind: AgencyKind; readonly procedureCode: string; readonly providerKind: AgencyKind }[] {
    this.checkOpen();
    return (this.#s.activeRows.all() as { requester_kind: AgencyKind; procedure_code: string; provider_kind: AgencyKind }[]).map((r) => ({
      requesterKind: r.requester_kind,
      procedureCode: r.procedure_code,
      providerKind: r.provider_kind,
    }));
  }

  /** Active subscriptions on one table row, by id after `after`, `limit` at a time. */
  activeOfRow(row: { readonly requesterKind: string; readonly procedureCode: string; readonly providerKind: string }, after: string, limit: number): { readonly subscriptionId: string; readonly itemCodes: readonly string[] }[] {
    this.checkOpen();
    return (this.#s.activeOfRow.all(row.requesterKind, row.procedureCode, row.providerKind, after, limit) as { subscription_id: string; item_codes: string }[]).map((r) => ({
      subscriptionId: r.subscription_id,
      itemCodes: JSON.parse(r.item_codes) as string[],
    }));
  }
}

function stored(r: Row): StoredSubscription {
  return {
    subscriptionId: r.subscription_id,
    position: r.position,
    serial: r.serial,
    requesterAgencyId: r.requester_agency_id,
    requesterKind: r.requester_kind as AgencyKind,
    providerAgencyId: r.provider_agency_id,
    providerKind: r.provider_kind as AgencyKind,
    procedureCode: r.procedure_code,
    itemCodes: JSON.parse(r.item_codes) as string[],
    tableVersion: r.table_version,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    status: r.status as SubscriptionStatus,
    ...(r.ended_at === null ? {} : { endedAt: r.ended_at }),
    ...(r.end_reason === null ? {} : { endReason: r.end_reason as StoredSubscription['endReason'] }),
    created: { streamId: r.stream_id, schemaVersion: r.schema_version, data: JSON.parse(r.data) as Record<string, unknown> },
  };
}
