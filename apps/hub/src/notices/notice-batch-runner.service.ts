import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { decideNoticeBatchCompleted, noticeBatchStreamId, type AgencyId } from '#linkage';
import { EventSealer } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { CLOCK, EVENT_STORE, LEDGER, type Clock } from '../ledger/tokens.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { FollowedProjection } from '../projections/followed-projection.js';
import { fanOutNoticeBatch } from './notice-batch.fanout.js';
import { NOTICE_BATCH_RECIPIENTS_FILE, NOTICE_BATCHES_FILE, NoticeBatchRecipients, SqliteNoticeBatches, type NoticeBatchRow } from './notice-batch.store.js';

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
    return new SqliteNoticeBatches({ path: join(this.config.dataDir, NOTICE_BATCHES_FILE) });
  }
}

/** The domain of the keyed hash that names a batch recipient's notice. */
export const BATCH_NOTICE_HANDLE = 'notice-batch-recipient';

/**
 * The leader's fan-out of notice batches, in the background: after start (or a takeover), and whenever
 * a batch is accepted, every batch started and not completed is fanned out from its stored cursor
 * (notice-batch.fanout.ts) and then completed (NoticeBatchCompleted, its own serial, with the counts
 * the progress projection folded from the log). A standby does nothing; losing leadership stops it.
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
        const running = (await this.progress.current()).running();
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

  async #run(batch: NoticeBatchRow, signal: AbortSignal): Promise<void> {
    const cursor = this.recipients.cursor(batch.batchId);
    if (cursor === undefined) {
      if (!this.#missing.has(batch.batchId)) this.#logger.error(`notice batch ${batch.batchId} is running but this hub's data directory holds no recipient list for it; it stays running`);
      this.#missing.add(batch.batchId);
      return;
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
    this.recipients.drop(batchId);
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
