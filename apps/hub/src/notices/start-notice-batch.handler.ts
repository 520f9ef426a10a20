import { Inject } from '@nestjs/common';
import { Command, CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { EventStore, SerialNumber } from '#ledger';
import { checkNoticeBatchAudience, noticeBatchStarted, noticeBatchStreamId, type AgencyId, type NoticeBatchStartedData } from '#linkage';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import { appendDecided, IdempotencyKeys, replayOrRethrow, type Caller, type Outcome } from '../ledger/idempotency.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { HubCodeMapper } from '../linkage/hub-code-mapper.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { eventOfSerial } from '../numbering/commands/replay.js';
import { LOOKUPS_FILE } from '../state/lookup-store.js';
import { NoticeBatchRunner } from './notice-batch-runner.service.js';

export interface StartedNoticeBatch {
  readonly batchId: string;
  readonly serial: string;
  readonly total: number;
}

export class StartNoticeBatchCommand extends Command<Outcome<StartedNoticeBatch>> {
  constructor(
    readonly agencyId: AgencyId,
    readonly title: string,
    readonly body: string,
    readonly audience: string | undefined,
    readonly codes: readonly string[] | undefined,
    readonly caller: Caller,
  ) {
    super();
  }
}

/**
 * Accepts a nationwide notice batch: checks the audience, takes the recipient list (the listed codes
 * resolved at the calling agency, a code that names nobody kept as a failure to record; or everyone
 * holding a code of the agency, straight from the code index), then appends NoticeBatchStarted under a
 * serial of its own (the text sealed, I10) and wakes the leader's fan-out. The list is durable before the
 * event is appended, so a batch in the log always has its list: in this hub's data directory and, when
 * several hubs share a KurrentDB log, in the shared store (notice-batch-shared-lists.ts), from which
 * whichever hub leads later takes it.
 */
@CommandHandler(StartNoticeBatchCommand)
export class StartNoticeBatchHandler implements ICommandHandler<StartNoticeBatchCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly config: HubConfig,
    private readonly mapper: HubCodeMapper,
    private readonly views: LinkageViews,
    private readonly runner: NoticeBatchRunner,
    private readonly idempotencyKeys: IdempotencyKeys,
    private readonly eventBus: EventBus,
  ) {}

  async execute({ agencyId, title, body, audience, codes, caller }: StartNoticeBatchCommand): Promise<Outcome<StartedNoticeBatch>> {
    const refusal = checkNoticeBatchAudience({ audience, codes });
    if (refusal !== undefined) throw new HubProblem(refusal.code, refusal.detail);
    const idempotency = this.idempotencyKeys.scope(caller, { title, body, ...(audience === undefined ? {} : { audience }), ...(codes === undefined ? {} : { codes }) });
    const batchId = randomUUID();
    let listed = false;
    try {
      let total: number;
      if (codes !== undefined) {
        const subjects = await this.mapper.mapper.resolveMany(agencyId, codes);
        total = this.runner.recipients.addList(batchId, subjects.map((s) => (s === undefined ? null : this.views.codes.storedSubject(s))));
      } else {
        // Every code acknowledged before this request is in the index.
        await this.views.catchUp();
        total = this.runner.recipients.addAgencyHolders(batchId, agencyId, join(this.config.dataDir, LOOKUPS_FILE));
      }
      listed = true;
      // Several hubs on one KurrentDB log: the list goes to the shared store too, so whichever hub leads can run the batch.
      await this.runner.share(batchId, total);
      const startedAt = this.clock().toISOString();
      const events = [noticeBatchStarted({ batchId, agencyId, audience: codes === undefined ? 'all' : 'codes', total, title, body, startedAt })];
      const outcome = await appendDecided(
        this.store,
        this.eventBus,
        { streamId: noticeBatchStreamId(batchId), expectedRevision: 'no_stream', events, caller, idempotency },
        (result) => ({ batchId, serial: result.serial, total }),
        (serial) => this.replay(serial),
      );
      if (outcome.replayed) await this.runner.dropList(batchId);
      else this.runner.kick();
      return outcome;
    } catch (error) {
      // An append KurrentDB did not confirm may have been written: its batch then needs its list, kept.
      if (listed && (error as { code?: unknown } | null)?.code !== 'LOG_UNAVAILABLE') await this.runner.dropList(batchId);
      return replayOrRethrow(error, this.store, idempotency, (serial) => this.replay(serial));
    }
  }

  private async replay(serial: SerialNumber): Promise<StartedNoticeBatch> {
    const event = await eventOfSerial<NoticeBatchStartedData>(this.store, serial, 'NoticeBatchStarted');
    return { batchId: event.data.batchId, serial, total: event.data.total };
  }
}
