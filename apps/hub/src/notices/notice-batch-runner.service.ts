import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { decideNoticeBatchCompleted, noticeBatchStreamId, type AgencyId, type SubjectId } from '#linkage';
import { EventSealer } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import { CLOCK, EVENT_STORE, LEDGER, type Clock } from '../ledger/tokens.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { FollowedProjection } from '../projections/followed-projection.js';
import { openNoticeBatches } from '../projections/followed-stores.js';
import { fanOutNoticeBatch } from './notice-batch.fanout.js';
import { NOTICE_BATCH_RECIPIENTS_FILE, NoticeBatchRecipients, SqliteNoticeBatches, type NoticeBatchRow } from './notice-batch.store.js';
import { SHARED_RECIPIENT_LISTS, type SharedRecipientLists } from './notice-batch-shared-lists.js';

/** The batches' progress (delivered / failed / completed), folded from the log into `notice-batches.sqlite`. */
@Injectable()
export class NoticeBatchProgress extends FollowedProjection<SqliteNoticeBatches> {
  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    private readonly config: HubConfig,
  ) {
    super(events, 'NoticeBatchProgress');
  }

  protected open(): SqliteNoticeBatches {
    return openNoticeBatches(this.config.dataDir);
  }
}

/** The domain of the keyed hash that names a batch recipient's notice. */
export const BATCH_NOTICE_HANDLE = 'notice-batch-recipient';

/**
 * The leader's fan-out of notice batches, in the background: after start (or a takeover), and whenever
 * a batch is accepted, every batch started and not completed is fanned out (notice-batch.fanout.ts) from
 * the log's cursor (the progress projection: every recipient below it has its event in the log, whichever
 * hub appended it) or this hub's own, whichever is further, and then completed (NoticeBatchCompleted, its
 * own serial, with the counts the progress projection folded from the log). A hub that holds no list for
 * a running batch (a standby that took over, with a data directory of its own) takes it from the shared
 * store (KurrentDB) first. A standby does nothing; losing leadership stops it.
 */
@Injectable()
export class NoticeBatchRunner implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  readonly #logger = new Logger('NoticeBatchRunner');
  readonly recipients: NoticeBatchRecipients;
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #bootstrapped = false;
  readonly #missing = new Set<string>();

  constructor(
    private readonly config: HubConfig,
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly progress: NoticeBatchProgress,
    private readonly views: LinkageViews,
    private readonly sealer: EventSealer,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
    @Inject(SHARED_RECIPIENT_LISTS) private readonly shared: SharedRecipientLists | null,
  ) {
    this.recipients = new NoticeBatchRecipients(join(config.dataDir, NOTICE_BATCH_RECIPIENTS_FILE));
    leadership?.onTakeover(async () => {
      if (this.#bootstrapped) this.kick();
    });
    leadership?.onRoleChange((role) => {
      if (role === 'standby') {
        this.#abort.abort();
        this.#abort = new AbortController();
      } else if (this.#bootstrapped) this.kick();
    });
  }

  onApplicationBootstrap(): void {
    this.#bootstrapped = true;
    this.kick();
  }

  get #leads(): boolean {
    return this.leadership === null || this.leadership.acceptsCommands;
  }

  /** Fans out what is pending (a run already going takes the new work on when it ends its pass). */
  kick(): void {
    if (this.#stopped || !this.#leads) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => (this.#running = undefined));
  }

  /** Resolves once no fan-out is going (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      try {
        const progress = await this.progress.current();
        this.#forgetCompleted(progress);
        const running = progress.running();
        for (const batch of running) {
          if (this.#stopped || !this.#leads) return;
          await this.#run(batch, this.#abort.signal);
        }
      } catch (error) {
        if (this.#stopped) return;
        this.#logger.error(`notice fan-out stopped, trying again in 1 s: ${error instanceof Error ? error.message : String(error)}`);
        await new Promise((r) => setTimeout(r, 1000).unref());
        this.#again = true;
      }
    } while (this.#again && !this.#stopped && this.#leads);
  }

  /** Lists this hub kept for batches completed since (by another hub that led meanwhile) go. */
  #forgetCompleted(progress: SqliteNoticeBatches): void {
    for (const batchId of this.recipients.batchIds()) {
      if (progress.batch(batchId)?.completedAt != null) this.recipients.drop(batchId);
    }
  }

  /**
   * Copies a batch's list from this hub's file to the shared store (several hubs on one KurrentDB log),
   * before its NoticeBatchStarted is appended; nothing on the embedded log. A failure drops the list and
   * refuses the command (503 LOG_UNAVAILABLE: nothing was started).
   */
  async share(batchId: string, total: number): Promise<void> {
    const shared = this.shared;
    if (shared === null) return;
    const recipients = this.recipients;
    const codes = this.views.codes;
    function* pages(): Generator<(SubjectId | null)[]> {
      for (let from = 0; ; ) {
        const page = recipients.page(batchId, from, 4096);
        if (page.length === 0) return;
        yield page.map((r) => (r.subject === null ? null : codes.subjectOfStored(r.subject)));
        from = page[page.length - 1]!.seq + 1;
      }
    }
    try {
      await shared.put(batchId, total, pages());
    } catch (error) {
      await this.dropList(batchId);
      throw new HubProblem('LOG_UNAVAILABLE', `the batch's recipient list could not be stored beside the log for the other hubs (${error instanceof Error ? error.message : String(error)}); nothing was started: send the command again`);
    }
  }

  /** Forgets a batch's list, here and in the shared store (a batch completed, or never started). */
  async dropList(batchId: string): Promise<void> {
    this.recipients.drop(batchId);
    await this.shared?.drop(batchId);
  }

  /** A running batch this hub holds no list for: its list from the shared store, filed from the log's cursor on. */
  async #takeList(batch: NoticeBatchRow): Promise<{ readonly next: number; readonly total: number } | undefined> {
    const list = await this.shared?.read(batch.batchId);
    if (list === undefined) return undefined;
    if (list.total !== batch.total) throw new Error(`the shared recipient list of notice batch ${batch.batchId} holds ${list.total} recipients, its NoticeBatchStarted ${batch.total}`);
    const next = Math.min(batch.logged, list.total);
    for await (const page of list.pages) {
      if (page.from + page.subjects.length <= next) continue;
      this.recipients.importPage(batch.batchId, page.from, page.subjects.map((s) => (s === null ? null : this.views.codes.storedSubject(s))));
    }
    this.recipients.completeImport(batch.batchId, next, list.total);
    this.#logger.log(`notice batch ${batch.batchId}: took its list of ${list.total} recipients from the shared store; the log holds the first ${next}`);
    return this.recipients.cursor(batch.batchId);
  }

  async #run(batch: NoticeBatchRow, signal: AbortSignal): Promise<void> {
    let cursor = this.recipients.cursor(batch.batchId) ?? (await this.#takeList(batch));
    if (cursor === undefined) {
      if (!this.#missing.has(batch.batchId)) this.#logger.error(`notice batch ${batch.batchId} is running but neither this hub's data directory nor a store shared with other hubs holds its recipient list; it stays running`);
      this.#missing.add(batch.batchId);
      return;
    }
    // The log's cursor: every recipient below it is recorded, by this hub or by one that led before.
    if (batch.logged > cursor.next) {
      this.recipients.advance(batch.batchId, Math.min(batch.logged, cursor.total));
      cursor = this.recipients.cursor(batch.batchId)!;
    }
    if (cursor.next < cursor.total) {
      const started = (await this.store.readStream(noticeBatchStreamId(batch.batchId), { maxCount: 1 }))[0];
      const text = started?.data as { title?: unknown; body?: unknown } | undefined;
      if (typeof text?.title !== 'string' || typeof text.body !== 'string') throw new Error(`the text of notice batch ${batch.batchId} does not open`);
      this.#logger.log(cursor.next > 0 ? `notice batch ${batch.batchId}: resuming the fan-out at recipient ${cursor.next} of ${cursor.total}` : `notice batch ${batch.batchId}: fan-out to ${cursor.total} recipients`);
      const sealer = this.sealer;
      const views = this.views;
      const done = await fanOutNoticeBatch(
        { batchId: batch.batchId, agencyId: batch.agencyId as AgencyId, title: text.title, body: text.body },
        {
          store: this.store,
          recipients: this.recipients,
          subjectOf: (s) => views.codes.subjectOfStored(s),
          handle: (v) => sealer.handle(BATCH_NOTICE_HANDLE, v),
          // The chunk's person keys in one key ring query (the store seals with this sealer).
          prepare: (subjects) => sealer.prepareSubjects(subjects),
          now: () => this.clock(),
          chunk: this.config.noticeBatches.chunk,
          pauseMs: this.config.noticeBatches.pauseMs,
          signal,
        },
      );
      if (done.next < done.total) return;
    }
    await this.#complete(batch.batchId);
  }

  async #complete(batchId: string): Promise<void> {
    const row = (await this.progress.current()).batch(batchId);
    if (row === undefined || row.completedAt !== null) return;
    const completed = decideNoticeBatchCompleted(row, { batchId, agencyId: row.agencyId as AgencyId, completedAt: this.clock().toISOString() });
    if (completed === undefined) {
      this.#logger.error(`notice batch ${batchId}: every recipient was handled but the log counts ${row.delivered} delivered and ${row.failed} failed of ${row.total}; it stays running`);
      return;
    }
    try {
      await this.store.append({ streamId: noticeBatchStreamId(batchId), expectedRevision: 0, events: [completed], serial: { allocate: true }, metadata: { actor: `agency:${row.agencyId}`, correlationId: `notice-batch-${batchId}` } });
    } catch (error) {
      // Completed by an earlier run (a crash after the append): nothing more to record.
      if ((error as { code?: unknown }).code !== 'WRONG_EXPECTED_REVISION') throw error;
    }
    await this.dropList(batchId);
    this.#logger.log(`notice batch ${batchId} completed: ${row.delivered} delivered, ${row.failed} failed of ${row.total}`);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.idle().catch(() => {});
  }

  onApplicationShutdown(): void {
    this.recipients.close();
  }
}
