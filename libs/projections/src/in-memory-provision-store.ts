import type { RecordedEvent } from '#ledger';
import { RecordDigest } from './digest.js';
import { ProjectionError } from './errors.js';
import { bySerial, ProvisionFoldState, type ProvisionRecord } from './provision-record.js';
import type { ProvisionRecordStore } from './provision-store.port.js';
import {
  agencyQuery,
  agencyRecord,
  citizenMonths,
  citizenQuery,
  citizenRecord,
  citizenWindow,
  compareCounts,
  inCitizenRange,
  inAgencyRange,
  monthJst,
  monthRangeMs,
  newestFirst,
  pageOf,
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

/**
 * Provision records held in memory: for tests, and the reference the SQLite store is held to. Records
 * read back carry `subjectRef(subjectId)`, as the SQLite store's do (default: the subject id itself).
 */
export class InMemoryProvisionStore implements ProvisionRecordStore {
  private readonly subjectRef: (subjectId: string) => string;
  private state: ProvisionFoldState;
  private position = -1;

  constructor(private readonly options: { readonly subjectRef?: (subjectId: string) => string } = {}) {
    this.subjectRef = options.subjectRef ?? ((s) => s);
    this.state = new ProvisionFoldState(options);
  }

  async apply(events: readonly RecordedEvent[]): Promise<void> {
    // Check the whole batch first, so that a refused batch changes nothing.
    let expected = this.position + 1;
    for (const e of events) {
      if (e.position < expected) continue;
      if (e.position !== expected) throw gapError(expected, e.position);
      expected += 1;
    }
    for (const e of events) {
      if (e.position <= this.position) continue;
      this.state.fold(e);
      this.position = e.position;
    }
  }

  async checkpoint(): Promise<number> {
    return this.position;
  }

  async reset(): Promise<void> {
    this.state = new ProvisionFoldState(this.options);
    this.position = -1;
  }

  async digest(): Promise<string> {
    const d = new RecordDigest();
    for (const r of this.sorted()) d.add(r);
    return d.hex();
  }

  async records(options: { readonly afterSerial?: string; readonly limit?: number } = {}): Promise<ProvisionRecord[]> {
    const after = options.afterSerial;
    const rows = this.sorted().filter((r) => after === undefined || r.serial > after);
    return options.limit === undefined ? rows : rows.slice(0, options.limit);
  }

  async record(serial: string): Promise<ProvisionRecord | undefined> {
    return this.state.records.get(serial);
  }

  async citizenRecords(subjectId: string, options: CitizenRecordsOptions): Promise<CitizenRecordsPage> {
    const q = citizenQuery(options);
    const ref = this.subjectRef(subjectId);
    const rows = [...this.state.records.values()].filter((r) => r.subjectId === ref && inCitizenRange(q, r)).sort(newestFirst);
    const page = pageOf(rows, q.limit);
    return { ...page, records: page.records.map(citizenRecord) };
  }

  async citizenMonths(subjectId: string, options: CitizenMonthsOptions): Promise<CitizenMonth[]> {
    const { startMs, endMs } = citizenWindow(options);
    const ref = this.subjectRef(subjectId);
    const rows: { ms: number; status: ProvisionRecord['status'] }[] = [];
    for (const r of this.state.records.values()) {
      const ms = Date.parse(r.requestedAt);
      if (r.subjectId === ref && ms >= startMs && ms < endMs) rows.push({ ms, status: r.status });
    }
    return citizenMonths(rows);
  }

  async agencyRecords(agencyId: string, options: AgencyRecordsOptions = {}): Promise<AgencyRecordsPage> {
    const q = agencyQuery(options);
    const out: AgencyRecord[] = [];
    for (const r of this.state.records.values()) {
      const role = roleOf(r, agencyId);
      if (role === undefined || (q.role !== undefined && !hasRole(r, agencyId, q.role)) || !inAgencyRange(q, r)) continue;
      out.push(agencyRecord(r, q.role ?? role));
    }
    return pageOf(out.sort(newestFirst), q.limit);
  }

  async agencyMonthlyCounts(agencyId: string, options: MonthlyCountsOptions = {}): Promise<MonthlyCount[]> {
    const range = options.month === undefined ? undefined : monthRangeMs(options.month);
    const counts = new Map<string, MonthlyCount>();
    for (const r of this.state.records.values()) {
      const role = roleOf(r, agencyId);
      const ms = Date.parse(r.requestedAt);
      if (role === undefined || (range !== undefined && (ms < range.start || ms >= range.end))) continue;
      const c: MonthlyCount = { month: monthJst(ms), procedure: r.procedure, role, status: r.status, count: 1 };
      const key = JSON.stringify([c.month, c.procedure.code, c.procedure.name, c.role, c.status]);
      const seen = counts.get(key);
      counts.set(key, seen === undefined ? c : { ...seen, count: seen.count + 1 });
    }
    return [...counts.values()].sort(compareCounts);
  }

  async close(): Promise<void> {}

  private sorted(): ProvisionRecord[] {
    return [...this.state.records.values()].sort(bySerial);
  }
}

/** The agency's role in a record; an agency that asked itself (a denied PROVIDER_IS_REQUESTER) counts once, as requester. */
export function roleOf(r: ProvisionRecord, agencyId: string): AgencyRole | undefined {
  if (r.requester?.id === agencyId) return 'requester';
  if (r.provider.id === agencyId) return 'provider';
  return undefined;
}

function hasRole(r: ProvisionRecord, agencyId: string, role: AgencyRole): boolean {
  return role === 'requester' ? r.requester?.id === agencyId : r.provider.id === agencyId;
}

export function gapError(expected: number, got: number): ProjectionError {
  return new ProjectionError('PROJECTION_GAP', `expected the event at position ${expected} next, got position ${got}: hand over every event in position order from checkpoint + 1 (catchUp reads them)`);
}
