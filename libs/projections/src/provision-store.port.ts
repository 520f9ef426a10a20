import type { LogProjection } from '#ledger';
import type { ProvisionRecord } from './provision-record.js';
import type { AgencyRecordsOptions, AgencyRecordsPage, CitizenMonth, CitizenMonthsOptions, CitizenRecordsOptions, CitizenRecordsPage, MonthlyCount, MonthlyCountsOptions } from './views.js';

/**
 * A projection of the log with a stored checkpoint (I8), as the runner drives it.
 * - `apply` takes every event in position order; events at or before the checkpoint are skipped (at-least-once
 *   delivery is safe); the first event after it MUST be at checkpoint + 1 (PROJECTION_GAP otherwise).
 * - A batch is applied whole or not at all.
 */
export type Projection = LogProjection;

/** Provision records (情報提供等記録) with the views the hub serves. A rebuild from the log MUST equal the live store (same digest). */
export interface ProvisionRecordStore extends Projection {
  /** SHA-256 (hex) over the RFC 8785 text of every record, in serial order, one per line: equal digests, equal stores. */
  digest(): Promise<string>;
  /** Records in serial order after `afterSerial`, at most `limit` (for diffs and exports). */
  records(options?: { readonly afterSerial?: string; readonly limit?: number }): Promise<ProvisionRecord[]>;
  record(serial: string): Promise<ProvisionRecord | undefined>;
  /**
   * The person's records of the last 7 years before `now` (narrowed by from/to and an agency that asked or
   * provided), newest first, a page at a time: one index range per page, whatever the person's history.
   */
  citizenRecords(subjectId: string, options: CitizenRecordsOptions): Promise<CitizenRecordsPage>;
  /** The person's counts per Japan-time month and outcome in the same window, oldest month first, empty months omitted. */
  citizenMonths(subjectId: string, options: CitizenMonthsOptions): Promise<CitizenMonth[]>;
  /** The agency's queries and provisions, newest first, a page at a time. */
  agencyRecords(agencyId: string, options?: AgencyRecordsOptions): Promise<AgencyRecordsPage>;
  /** Counts per month (Japan time), procedure, role and outcome. */
  agencyMonthlyCounts(agencyId: string, options?: MonthlyCountsOptions): Promise<MonthlyCount[]>;
  close(): Promise<void>;
}
