import type { NewEvent } from '#ledger';
import type { AgencyId, SubjectId } from './identifiers.js';

/**
 * Nationwide notices (一斉お知らせ): an agency sends one notice to many people, an explicit list of its own
 * codes (at most NOTICE_BATCH_MAX_CODES) or everyone holding a code issued to it (`audience: "all"`).
 *
 * - One command, `StartNoticeBatch`, under its own serial: NoticeBatchStarted on the batch's stream
 *   (`notice-batch-<batchId>`), its title and body sealed (I10), the audience's size in clear. It ends its
 *   serial (`completed`), so the batch survives a crash of the hub (open serials are voided at start).
 * - The fan-out, by the leader in the background: per recipient one event on the recipient's own notice
 *   stream under its own serial: NoticeSent (schemaVersion 3: a single notice's fields and the batchId;
 *   the person and the text sealed, as a single notice is) or, when the recipient cannot be reached (an
 *   unknown code, a person erased since), NoticeUndelivered with a reason (nothing personal: clear).
 *   The notice id of recipient `seq` is derived from (batchId, seq) with the hub's handle key (a keyed
 *   prefix per batch, seq, a keyed tail), so it is the same after a crash: the ledger refuses a second
 *   event on that stream (`no_stream`), and no recipient is ever served twice.
 * - NoticeBatchCompleted on the batch stream at revision 1 (its own serial): the delivered and failed counts.
 */

/** Most codes one request may list. */
export const NOTICE_BATCH_MAX_CODES = 10_000;

export type NoticeBatchAudience = 'all' | 'codes';

/** Why a recipient got no notice. */
export type NoticeUndeliveredReason = 'UNKNOWN_CODE' | 'SUBJECT_ERASED';

export function noticeBatchStreamId(batchId: string): string {
  return `notice-batch-${batchId}`;
}

/** A notice id from 32 hex digits (formatted as a UUID, as every notice id is). */
export function batchNoticeId(hashHex: string): string {
  const h = hashHex.padEnd(32, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export interface NoticeBatchStartedData {
  readonly batchId: string;
  readonly agencyId: AgencyId;
  readonly audience: NoticeBatchAudience;
  /** Recipients in the batch (the codes listed, or the agency's code holders when it started). */
  readonly total: number;
  readonly title: string;
  readonly body: string;
  readonly startedAt: string;
}

export interface NoticeBatchStarted extends NewEvent<NoticeBatchStartedData> {
  readonly type: 'NoticeBatchStarted';
  readonly schemaVersion: 1;
  readonly terminal: 'completed';
}

export interface BatchNoticeSentData {
  readonly noticeId: string;
  readonly subjectId: SubjectId;
  readonly agencyId: AgencyId;
  readonly title: string;
  readonly body: string;
  readonly sentAt: string;
  readonly batchId: string;
}

export interface BatchNoticeSent extends NewEvent<BatchNoticeSentData> {
  readonly type: 'NoticeSent';
  readonly schemaVersion: 3;
  readonly terminal: 'completed';
}

export interface NoticeUndeliveredData {
  readonly noticeId: string;
  readonly batchId: string;
  readonly agencyId: AgencyId;
  readonly reason: NoticeUndeliveredReason;
  readonly failedAt: string;
}

export interface NoticeUndelivered extends NewEvent<NoticeUndeliveredData> {
  readonly type: 'NoticeUndelivered';
  readonly schemaVersion: 1;
  readonly terminal: 'completed';
}

export interface NoticeBatchCompletedData {
  readonly batchId: string;
  readonly agencyId: AgencyId;
  readonly total: number;
  readonly delivered: number;
  readonly failed: number;
  readonly completedAt: string;
}

export interface NoticeBatchCompleted extends NewEvent<NoticeBatchCompletedData> {
  readonly type: 'NoticeBatchCompleted';
  readonly schemaVersion: 1;
  readonly terminal: 'completed';
}

export type NoticeBatchEvent = NoticeBatchStarted | BatchNoticeSent | NoticeUndelivered | NoticeBatchCompleted;

export const NOTICE_BATCH_TYPES: ReadonlySet<string> = new Set(['NoticeBatchStarted', 'NoticeSent', 'NoticeUndelivered', 'NoticeBatchCompleted']);

/** Why a batch command is refused as a whole (the caller's input; the HTTP layer checks shapes first). */
export type NoticeBatchRefusal = { readonly code: 'VALIDATION_FAILED'; readonly detail: string };

/** The whole command's checks beyond the shapes: exactly one audience, a list within bounds and without repeats. */
export function checkNoticeBatchAudience(input: { readonly audience?: unknown; readonly codes?: readonly string[] | undefined }): NoticeBatchRefusal | undefined {
  const { audience, codes } = input;
  if (audience !== undefined && codes !== undefined) return { code: 'VALIDATION_FAILED', detail: 'give either audience "all" or a list of codes, not both' };
  if (audience === undefined && codes === undefined) return { code: 'VALIDATION_FAILED', detail: 'give the recipients: audience "all" (everyone holding a code of your agency) or codes (at most 10,000 of your codes)' };
  if (audience !== undefined && audience !== 'all') return { code: 'VALIDATION_FAILED', detail: 'audience must be "all"; to name people, give codes instead' };
  if (codes !== undefined) {
    if (codes.length === 0) return { code: 'VALIDATION_FAILED', detail: 'codes must list at least one code' };
    if (codes.length > NOTICE_BATCH_MAX_CODES) return { code: 'VALIDATION_FAILED', detail: `codes lists ${codes.length} codes; at most ${NOTICE_BATCH_MAX_CODES} per request (send several batches, or audience "all")` };
    const seen = new Map<string, number>();
    for (let i = 0; i < codes.length; i++) {
      const first = seen.get(codes[i]!);
      if (first !== undefined) return { code: 'VALIDATION_FAILED', detail: `codes[${i}] repeats codes[${first}]: each person is listed once` };
      seen.set(codes[i]!, i);
    }
  }
  return undefined;
}

export function noticeBatchStarted(data: NoticeBatchStartedData): NoticeBatchStarted {
  return { type: 'NoticeBatchStarted', schemaVersion: 1, data, terminal: 'completed' };
}

export function batchNoticeSent(data: BatchNoticeSentData): BatchNoticeSent {
  return { type: 'NoticeSent', schemaVersion: 3, data, terminal: 'completed' };
}

export function noticeUndelivered(data: NoticeUndeliveredData): NoticeUndelivered {
  return { type: 'NoticeUndelivered', schemaVersion: 1, data, terminal: 'completed' };
}

/** The batch's end; refused (undefined) while recipients remain: every recipient ends in exactly one event first. */
export function decideNoticeBatchCompleted(counts: { readonly total: number; readonly delivered: number; readonly failed: number }, data: Omit<NoticeBatchCompletedData, 'total' | 'delivered' | 'failed'>): NoticeBatchCompleted | undefined {
  if (counts.delivered + counts.failed !== counts.total) return undefined;
  return { type: 'NoticeBatchCompleted', schemaVersion: 1, data: { ...data, total: counts.total, delivered: counts.delivered, failed: counts.failed }, terminal: 'completed' };
}
