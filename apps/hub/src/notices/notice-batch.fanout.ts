import type { AppendRequest, AppendResult, EventStore } from '#ledger';
import { batchNoticeId, batchNoticeSent, noticeStreamId, noticeUndelivered, type AgencyId, type SubjectId } from '#linkage';
import type { SealedAppend } from '#sealing';
import type { NoticeBatchRecipients } from './notice-batch.store.js';

/** What one fan-out sends: the batch and its text (opened from NoticeBatchStarted). */
export interface FanoutBatch {
  readonly batchId: string;
  readonly agencyId: AgencyId;
  readonly title: string;
  readonly body: string;
}

export interface FanoutOptions {
  /** The ledger as handlers see it: it seals each NoticeSent with the person's key (I10). */
  readonly store: EventStore;
  readonly recipients: NoticeBatchRecipients;
  /** The person a stored subject names (the code index's keys). */
  readonly subjectOf: (stored: Buffer | string) => SubjectId;
  /** Keyed hash (hex) naming recipient `seq` of a batch: its notice id, the same after any crash. */
  readonly handle: (value: string) => string;
  readonly now: () => Date;
  /**
   * Sealing in worker threads: each chunk's NoticeSent events are sealed there (`SealWorkers`, the same
   * sealer and keys) and appended, already sealed, to `raw` — the store `store` seals into. Without it,
   * `store` seals each append on this thread.
   */
  readonly workers?: { readonly seal: (requests: readonly AppendRequest[]) => Promise<readonly SealedAppend[]>; readonly raw: EventStore };
  /** Called with a chunk's people before its appends (the sealer reads their keys in one query). */
  readonly prepare?: (subjectIds: readonly SubjectId[]) => void;
  /** Recipients read per page of the list (default 2,000). */
  readonly chunk?: number;
  /**
   * Recipients appended per step (default 500, at most `chunk`): a page is issued a step at a time, each
   * step's people keys read in one query, and the cursor moves past each step once it is durable.
   */
  readonly step?: number;
  /** Steps whose appends may be in flight at once (the ledger commits them in large groups). */
  readonly chunksInFlight?: number;
  /** A pause after each chunk is issued (0: none). */
  readonly pauseMs?: number;
  /** After each chunk is durable: the cursor and how many this run recorded and found recorded before. */
  readonly onProgress?: (progress: FanoutProgress) => void;
  readonly signal?: AbortSignal;
}

export interface FanoutProgress {
  /** Recipients below this place are all recorded in the log. */
  readonly next: number;
  readonly total: number;
  readonly delivered: number;
  readonly failed: number;
  /** Recipients whose event a run before this one had already recorded (a resumed fan-out). */
  readonly recordedBefore: number;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A chunk's appends in flight, counted: `done` settles once every append issued for it settled (rejected
 * with the first failure, after the others ended). One promise per chunk instead of a derived promise per
 * append gathered by Promise.allSettled: the fan-out issues a million appends.
 */
class Chunk {
  /** Appends (and sealing jobs) not yet settled, plus one until the chunk is fully issued. */
  pending = 1;
  finished = false;
  readonly done: Promise<void>;
  #error: { reason: unknown } | undefined;
  #resolve!: () => void;
  #reject!: (reason: unknown) => void;

  constructor(
    /** The place after the chunk's last recipient: the cursor once it is durable. */
    readonly end: number,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A failure is awaited by the pipeline (settleOldest) or at the end; never left unhandled meanwhile.
    this.done.catch(() => undefined);
  }

  failed(reason: unknown): void {
    this.#error ??= { reason };
  }

  /** Every append of the chunk has been issued. */
  issued(): void {
    this.settled();
  }

  settled(): void {
    if (--this.pending > 0) return;
    this.finished = true;
    if (this.#error === undefined) this.#resolve();
    else this.#reject(this.#error.reason);
  }
}

/**
 * The fan-out of one batch, from its stored cursor to its last recipient: per recipient one append under
 * its own serial, on the notice's own stream with `expectedRevision: 'no_stream'`, so that a recipient
 * whose event a crashed run already recorded is refused by the ledger (WRONG_EXPECTED_REVISION) and
 * counted as recorded before, never twice. Chunks of appends are issued together (the ledger's group
 * commit writes them in large transactions); the cursor moves past a chunk once it and every chunk before
 * it are durable, so a crash loses no recipient and repeats at most `chunk × chunksInFlight` checks.
 * A person erased since the batch began (their key shredded) gets NoticeUndelivered SUBJECT_ERASED, a
 * code that named nobody NoticeUndelivered UNKNOWN_CODE.
 */
export async function fanOutNoticeBatch(batch: FanoutBatch, options: FanoutOptions): Promise<FanoutProgress> {
  const { store, recipients, subjectOf, handle, now } = options;
  const CHUNK = options.chunk ?? 2000;
  // Appends in flight are a step's, not a page's: sealed appends waiting for the ledger lived long enough to
  // be copied by the young generation's collections and promoted (bench:push: chunks of 500 cost ≈ 10 % less
  // CPU per delivery than chunks of 2,000, and chunks of 5,000 nearly twice as much).
  const STEP = Math.max(1, Math.min(CHUNK, options.step ?? 500));
  const IN_FLIGHT = options.chunksInFlight ?? 4;
  const at = recipients.cursor(batch.batchId);
  if (at === undefined) throw new Error(`this hub holds no recipient list for notice batch ${batch.batchId}`);
  const { total } = at;
  let next = at.next;
  let delivered = 0;
  let failed = 0;
  let recordedBefore = 0;
  const metadata = { actor: `agency:${batch.agencyId}`, correlationId: `notice-batch-${batch.batchId}` };
  // The batch's notice ids share a keyed prefix and follow the recipients' order, so that the ledger's
  // stream index takes a batch's streams in order (random ids scatter a million inserts over its pages).
  // The order says nothing the log positions do not say already; the keyed tail keeps ids unguessable.
  const prefix = handle(batch.batchId).slice(0, 12);
  const noticeIdOf = (seq: number): string => batchNoticeId(`${prefix}${seq.toString(16).padStart(12, '0')}${handle(`${batch.batchId}|${seq}`).slice(0, 8)}`);

  const undelivered = (noticeId: string, reason: 'UNKNOWN_CODE' | 'SUBJECT_ERASED'): AppendRequest => ({
    streamId: noticeStreamId(noticeId),
    expectedRevision: 'no_stream',
    events: [noticeUndelivered({ noticeId, batchId: batch.batchId, agencyId: batch.agencyId, reason, failedAt: now().toISOString() })],
    serial: { allocate: true },
    metadata,
  });
  /**
   * Appends one request of a chunk and counts it when it settles: delivered (or failed, for a
   * NoticeUndelivered), recorded before when an earlier run wrote the recipient's stream, and for a person
   * erased since the batch began (`erasedNoticeId` given: the sealer refused), NoticeUndelivered in its place.
   */
  const track = (chunk: Chunk, request: AppendRequest, outcome: 'delivered' | 'failed', erasedNoticeId?: string, into: EventStore = store): void => {
    chunk.pending += 1;
    let appending: Promise<AppendResult>;
    try {
      appending = into.append(request);
    } catch (error) {
      appending = Promise.reject(error as Error);
    }
    appending.then(
      () => {
        if (outcome === 'delivered') delivered += 1;
        else failed += 1;
        chunk.settled();
      },
      (error: unknown) => {
        const code = codeOf(error);
        if (code === 'WRONG_EXPECTED_REVISION') recordedBefore += 1;
        // The person's key was shredded (an erasure) since the batch began: nothing is sealed for them any more.
        else if (code === 'KEY_SHREDDED' && erasedNoticeId !== undefined) track(chunk, undelivered(erasedNoticeId, 'SUBJECT_ERASED'), 'failed');
        else chunk.failed(error);
        chunk.settled();
      },
    );
  };

  const inFlight: Chunk[] = [];
  const settleOldest = async (): Promise<void> => {
    const oldest = inFlight.shift()!;
    await oldest.done;
    recipients.advance(batch.batchId, oldest.end);
    options.onProgress?.({ next: oldest.end, total, delivered, failed, recordedBefore });
  };

  let from = next;
  try {
    while (from < total) {
      if (options.signal?.aborted) break;
      const whole = recipients.page(batch.batchId, from, CHUNK);
      if (whole.length === 0) break;
      for (let at = 0; at < whole.length; at += STEP) {
        if (options.signal?.aborted) break;
        const page = whole.length <= STEP ? whole : whole.slice(at, at + STEP);
        from = page[page.length - 1]!.seq + 1;
        // Every append of the chunk settles before the chunk counts as done (a failure rejects it after the others ended).
        const chunk = new Chunk(from);
        const sentAt = now().toISOString();
        const subjects = page.map((r) => (r.subject === null ? null : subjectOf(r.subject)));
        if (options.workers === undefined) options.prepare?.(subjects.filter((s): s is SubjectId => s !== null));
        const sent: { noticeId: string; request: AppendRequest }[] = [];
        for (let k = 0; k < page.length; k++) {
          const noticeId = noticeIdOf(page[k]!.seq);
          const subjectId = subjects[k];
          if (subjectId === null || subjectId === undefined) {
            track(chunk, undelivered(noticeId, 'UNKNOWN_CODE'), 'failed');
            continue;
          }
          const request: AppendRequest = {
            streamId: noticeStreamId(noticeId),
            expectedRevision: 'no_stream',
            events: [batchNoticeSent({ noticeId, subjectId, agencyId: batch.agencyId, title: batch.title, body: batch.body, sentAt, batchId: batch.batchId })],
            serial: { allocate: true },
            metadata,
          };
          if (options.workers !== undefined) sent.push({ noticeId, request });
          else track(chunk, request, 'delivered', noticeId);
        }
        if (options.workers !== undefined && sent.length > 0) {
          const { seal, raw } = options.workers;
          // Sealed in a worker while this thread appends the chunks before; then appended as the inline path appends.
          chunk.pending += 1;
          seal(sent.map((x) => x.request)).then(
            (sealed) => {
              sealed.forEach((outcome, k) => {
                const { noticeId } = sent[k]!;
                if ('request' in outcome) track(chunk, outcome.request, 'delivered', undefined, raw);
                else if (outcome.error.code === 'KEY_SHREDDED') track(chunk, undelivered(noticeId, 'SUBJECT_ERASED'), 'failed');
                else chunk.failed(outcome.error);
              });
              chunk.settled();
            },
            (error: unknown) => {
              chunk.failed(error);
              chunk.settled();
            },
          );
        }
        chunk.issued();
        inFlight.push(chunk);
        if (inFlight.length >= IN_FLIGHT) await settleOldest();
        // The cursor follows every chunk already durable, not only the ones the pipeline waits for.
        while (inFlight[0]?.finished === true) await settleOldest();
      }
      if ((options.pauseMs ?? 0) > 0) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
    while (inFlight.length > 0) await settleOldest();
  } catch (error) {
    // Let the chunks still in flight end before giving up (their appends are the ledger's now), then rethrow.
    await Promise.allSettled(inFlight.map((c) => c.done));
    throw error;
  }
  next = recipients.cursor(batch.batchId)?.next ?? next;
  return { next, total, delivered, failed, recordedBefore };
}
