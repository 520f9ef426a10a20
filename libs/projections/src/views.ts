import { ProjectionError } from './errors.js';
import type { NamedCode, ProvisionKind, ProvisionRecord, ProvisionStatus } from './provision-record.js';

/**
 * The shapes the hub serves from provision records, and the pure rules behind them, shared by every
 * store so that the SQLite and in-memory views answer alike. Stores fetch candidate rows through their
 * indexes; these functions filter, order and shape them.
 */

/** Provision records are shown for 7 years (情報提供等記録の保存期間); older ones stay in the log. */
export const RETENTION_YEARS = 7;
const JST_OFFSET_MS = 9 * 3600_000;
export const DEFAULT_AGENCY_LIMIT = 100;
export const MAX_AGENCY_LIMIT = 1000;

/** An agency as the person sees it: its registry id and its registered name at the time (null when it was not registered). */
export interface CitizenAgency {
  readonly agencyId: string;
  readonly name: string | null;
}

/** One exchange as the person sees it: when, who, from whom, what, why. No subject id, no codes. */
export interface CitizenRecord {
  readonly serial: string;
  /** The query's time, ISO 8601 UTC. */
  readonly at: string;
  /** Date and time in Japan time: `YYYY-MM-DD`, `HH:mm:ss`. */
  readonly date: string;
  readonly time: string;
  /** An agency's query, or the person's own self-information request. */
  readonly kind: ProvisionKind;
  /** Who asked; null for the person's own self-information request. */
  readonly requester: CitizenAgency | null;
  /** From whom. */
  readonly provider: CitizenAgency;
  /** Why: the procedure (its code and its name in the table of the time). */
  readonly procedure: NamedCode;
  /** What: the information items. */
  readonly items: readonly NamedCode[];
  readonly outcome: ProvisionStatus;
}

export const DEFAULT_CITIZEN_LIMIT = 100;
export const MAX_CITIZEN_LIMIT = 1000;

export interface CitizenRecordsOptions {
  /** The instant the window of 7 years ends at (the caller's clock). */
  readonly now: Date | string;
  /** Inclusive lower bound on the query's time (RFC 3339); never before the 7-year window. */
  readonly from?: string;
  /** Exclusive upper bound on the query's time (RFC 3339); never after now. */
  readonly to?: string;
  /** Only the exchanges in which this agency asked or provided. */
  readonly agencyId?: string;
  /** Page size, 1–1000, default 100. */
  readonly limit?: number;
  /** The `next` cursor of the previous page. */
  readonly after?: string;
}

export interface CitizenRecordsPage {
  /** Newest first. */
  readonly records: readonly CitizenRecord[];
  /** Pass as `after` for the next page; absent on the last page. */
  readonly next?: string;
}

export interface CitizenMonthsOptions {
  readonly now: Date | string;
  readonly from?: string;
  readonly to?: string;
}

/** One month (Japan time) of the person's exchanges: how many, and how many per outcome. */
export interface CitizenMonth {
  /** `YYYY-MM`, Japan time. */
  readonly month: string;
  readonly total: number;
  readonly byOutcome: Readonly<Partial<Record<ProvisionStatus, number>>>;
}

/** A citizen view's bounds, resolved: [startMs, endMs) within the 7-year window, the agency, the page. */
export interface CitizenQuery {
  readonly startMs: number;
  readonly endMs: number;
  readonly agencyId: string | undefined;
  readonly limit: number;
  /** Rows strictly after this (requestedAt, serial) in newest-first order. */
  readonly after: { readonly requestedMs: number; readonly serial: string } | undefined;
}

/** The window a citizen view reads: the 7 years before now (now included), narrowed by from (inclusive) and to (exclusive). */
export function citizenWindow(options: CitizenMonthsOptions): { readonly startMs: number; readonly endMs: number } {
  const nowMs = nowMsOf(options);
  const fromMs = options.from === undefined ? undefined : msOf(options.from, 'from');
  const toMs = options.to === undefined ? undefined : msOf(options.to, 'to');
  const startMs = Math.max(retentionStartMs(nowMs), fromMs ?? Number.MIN_SAFE_INTEGER);
  const endMs = Math.min(nowMs + 1, toMs ?? Number.MAX_SAFE_INTEGER);
  return { startMs, endMs };
}

export function citizenQuery(options: CitizenRecordsOptions): CitizenQuery {
  const { limit = DEFAULT_CITIZEN_LIMIT, after, agencyId } = options;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_CITIZEN_LIMIT) throw new ProjectionError('INVALID_ARGUMENT', `limit must be an integer from 1 to ${MAX_CITIZEN_LIMIT}`);
  if (agencyId !== undefined && (typeof agencyId !== 'string' || agencyId.length === 0)) throw new ProjectionError('INVALID_ARGUMENT', 'agencyId must be an agency id');
  return { ...citizenWindow(options), agencyId, limit, after: after === undefined ? undefined : parseCursor(after) };
}

/** Whether a record falls in a citizen query (the in-memory store's filter; SQL says the same in WHERE). */
export function inCitizenRange(q: CitizenQuery, r: ProvisionRecord): boolean {
  const ms = Date.parse(r.requestedAt);
  if (ms < q.startMs || ms >= q.endMs) return false;
  if (q.agencyId !== undefined && r.requester?.id !== q.agencyId && r.provider.id !== q.agencyId) return false;
  if (q.after !== undefined && (ms > q.after.requestedMs || (ms === q.after.requestedMs && r.serial >= q.after.serial))) return false;
  return true;
}

/** Counts per Japan-time month, oldest first, from the (ms, status) of the person's rows in the window. */
export function citizenMonths(rows: Iterable<{ readonly ms: number; readonly status: ProvisionStatus }>): CitizenMonth[] {
  const months = new Map<string, { total: number; byOutcome: Partial<Record<ProvisionStatus, number>> }>();
  for (const r of rows) {
    const month = monthJst(r.ms);
    let m = months.get(month);
    if (m === undefined) {
      m = { total: 0, byOutcome: {} };
      months.set(month, m);
    }
    m.total += 1;
    m.byOutcome[r.status] = (m.byOutcome[r.status] ?? 0) + 1;
  }
  return [...months.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([month, m]) => ({ month, total: m.total, byOutcome: Object.fromEntries(Object.entries(m.byOutcome).sort((a, b) => (a[0] < b[0] ? -1 : 1))) }));
}

export type AgencyRole = 'requester' | 'provider';

/** One query (as requester) or provision (as provider) as the agency sees it: the record without the subject id (it holds no agency code). */
export type AgencyRecord = Omit<ProvisionRecord, 'subjectId'> & { readonly role: AgencyRole };

export interface AgencyRecordsOptions {
  /** Only the queries it made, or only the provisions asked of it; both by default. */
  readonly role?: AgencyRole;
  /** Inclusive lower bound on the query's time (RFC 3339). */
  readonly from?: string;
  /** Exclusive upper bound on the query's time (RFC 3339). */
  readonly to?: string;
  /** Page size, 1–1000, default 100. */
  readonly limit?: number;
  /** The `next` cursor of the previous page. */
  readonly after?: string;
}

export interface AgencyRecordsPage {
  /** Newest first. */
  readonly records: readonly AgencyRecord[];
  /** Pass as `after` for the next page; absent on the last page. */
  readonly next?: string;
}

export interface MonthlyCountsOptions {
  /** `YYYY-MM` in Japan time; every month when absent. */
  readonly month?: string;
}

export interface MonthlyCount {
  /** `YYYY-MM`, Japan time. */
  readonly month: string;
  readonly procedure: NamedCode;
  readonly role: AgencyRole;
  readonly status: ProvisionStatus;
  readonly count: number;
}

export function msOf(instant: string, field: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}T/.test(instant) ? Date.parse(instant) : Number.NaN;
  if (Number.isNaN(ms)) throw new ProjectionError('INVALID_ARGUMENT', `${field} must be an RFC 3339 timestamp, e.g. 2026-04-01T00:00:00+09:00`);
  return ms;
}

/** The start of the 7-year window that ends at `nowMs` (calendar years, UTC). */
export function retentionStartMs(nowMs: number): number {
  const d = new Date(nowMs);
  d.setUTCFullYear(d.getUTCFullYear() - RETENTION_YEARS);
  return d.getTime();
}

export function nowMsOf(options: { readonly now: Date | string }): number {
  const now = options.now;
  const ms = now instanceof Date ? now.getTime() : msOf(now, 'now');
  if (Number.isNaN(ms)) throw new ProjectionError('INVALID_ARGUMENT', 'now must be a valid date');
  return ms;
}

/** `YYYY-MM` of the instant in Japan time (no daylight saving: a fixed +09:00). */
export function monthJst(ms: number): string {
  return new Date(ms + JST_OFFSET_MS).toISOString().slice(0, 7);
}

/** [start, end) in epoch ms of a `YYYY-MM` month in Japan time. */
export function monthRangeMs(month: string): { readonly start: number; readonly end: number } {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m) throw new ProjectionError('INVALID_ARGUMENT', `month must be YYYY-MM (Japan time), e.g. 2026-04; got "${month}"`);
  const y = Number(m[1]);
  const mo = Number(m[2]);
  return { start: Date.UTC(y, mo - 1, 1) - JST_OFFSET_MS, end: Date.UTC(y, mo, 1) - JST_OFFSET_MS };
}

export function citizenRecord(r: ProvisionRecord): CitizenRecord {
  const jst = new Date(Date.parse(r.requestedAt) + JST_OFFSET_MS).toISOString();
  return {
    serial: r.serial,
    at: r.requestedAt,
    date: jst.slice(0, 10),
    time: jst.slice(11, 19),
    kind: r.kind,
    requester: r.requester === null ? null : { agencyId: r.requester.id, name: r.requester.name },
    provider: { agencyId: r.provider.id, name: r.provider.name },
    procedure: { code: r.procedure.code, name: r.procedure.name },
    items: r.items.map((i) => ({ code: i.code, name: i.name })),
    outcome: r.status,
  };
}

export function agencyRecord(r: ProvisionRecord, role: AgencyRole): AgencyRecord {
  return {
    serial: r.serial,
    queryId: r.queryId,
    role,
    kind: r.kind,
    requester: r.requester,
    provider: r.provider,
    procedure: r.procedure,
    items: r.items,
    tableVersion: r.tableVersion,
    batch: r.batch,
    status: r.status,
    reason: r.reason,
    requestedAt: r.requestedAt,
    endedAt: r.endedAt,
  };
}

/** Newest first: by the query's time, then by serial. */
export function newestFirst(a: { readonly requestedAt: string; readonly serial: string }, b: { readonly requestedAt: string; readonly serial: string }): number {
  if (a.requestedAt !== b.requestedAt) return a.requestedAt < b.requestedAt ? 1 : -1;
  return a.serial < b.serial ? 1 : a.serial > b.serial ? -1 : 0;
}

/** The query's time as stored (normalised UTC) for a view bound, so that bounds compare as the rows do. */
export interface AgencyQuery {
  readonly role: AgencyRole | undefined;
  readonly fromMs: number | undefined;
  readonly toMs: number | undefined;
  readonly limit: number;
  /** Rows strictly after this (requestedAt, serial) in newest-first order. */
  readonly after: { readonly requestedMs: number; readonly serial: string } | undefined;
}

export function agencyQuery(options: AgencyRecordsOptions): AgencyQuery {
  const { role, from, to, limit = DEFAULT_AGENCY_LIMIT, after } = options;
  if (role !== undefined && role !== 'requester' && role !== 'provider') throw new ProjectionError('INVALID_ARGUMENT', 'role must be "requester" or "provider"');
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AGENCY_LIMIT) throw new ProjectionError('INVALID_ARGUMENT', `limit must be an integer from 1 to ${MAX_AGENCY_LIMIT}`);
  return {
    role,
    fromMs: from === undefined ? undefined : msOf(from, 'from'),
    toMs: to === undefined ? undefined : msOf(to, 'to'),
    limit,
    after: after === undefined ? undefined : parseCursor(after),
  };
}

/** A page cursor: the last row's time and serial, so that the next page is one index range. */
export function cursorOf(r: { readonly requestedAt: string; readonly serial: string }): string {
  return `${Date.parse(r.requestedAt)}.${r.serial}`;
}

function parseCursor(after: string): { requestedMs: number; serial: string } {
  const m = /^(-?\d{1,16})\.(\d{20})$/.exec(after);
  if (!m) throw new ProjectionError('INVALID_ARGUMENT', 'after must be the `next` cursor of a previous page');
  return { requestedMs: Number(m[1]), serial: m[2]! };
}

/** Whether a record falls in the agency query's range (the in-memory store's filter; SQL says the same in WHERE). */
export function inAgencyRange(q: AgencyQuery, r: ProvisionRecord): boolean {
  const ms = Date.parse(r.requestedAt);
  if (q.fromMs !== undefined && ms < q.fromMs) return false;
  if (q.toMs !== undefined && ms >= q.toMs) return false;
  if (q.after !== undefined && (ms > q.after.requestedMs || (ms === q.after.requestedMs && r.serial >= q.after.serial))) return false;
  return true;
}

export function pageOf<T extends { readonly requestedAt: string; readonly serial: string }>(sorted: readonly T[], limit: number): { records: T[]; next?: string } {
  const records = sorted.slice(0, limit);
  return sorted.length > limit ? { records, next: cursorOf(records[records.length - 1]!) } : { records };
}

/** Counts ordered by month, procedure code and name, role, status. */
export function compareCounts(a: MonthlyCount, b: MonthlyCount): number {
  const keys = (c: MonthlyCount) => [c.month, c.procedure.code, c.procedure.name ?? '', c.role, c.status];
  const ka = keys(a);
  const kb = keys(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
  return 0;
}
