import { Inject } from '@nestjs/common';
import { Command, CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import type { EventStore, SerialNumber } from '#ledger';
import { decideNotice, noticeDecider, noticeStreamId, type AgencyId, type NoticeSentData } from '#linkage';
import { HubProblem } from '../http/hub-problem.js';
import { appendDecided, IdempotencyKeys, replayOrRethrow, type Caller, type Outcome } from '../ledger/idempotency.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { HubCodeMapper } from '../linkage/hub-code-mapper.js';
import { eventOfSerial } from '../numbering/commands/replay.js';

export interface SentNotice {
  readonly noticeId: string;
  readonly serial: string;
  readonly sentAt: string;
}

export class SendNoticeCommand extends Command<Outcome<SentNotice>> {
  constructor(
    readonly agencyId: AgencyId,
    readonly code: string,
    readonly title: string,
    readonly body: string,
    readonly caller: Caller,
  ) {
    super();
  }
}

/**
 * Sends a notice: the agency's own code resolves the person (I7: only a code issued to that agency);
 * the text is sealed with the person's key when appended (I5, I10) and recorded under a serial of its own.
 */
@CommandHandler(SendNoticeCommand)
export class SendNoticeHandler implements ICommandHandler<SendNoticeCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly mapper: HubCodeMapper,
    private readonly idempotencyKeys: IdempotencyKeys,
    private readonly eventBus: EventBus,
  ) {}

  async execute({ agencyId, code, title, body, caller }: SendNoticeCommand): Promise<Outcome<SentNotice>> {
    const idempotency = this.idempotencyKeys.scope(caller, { code, title, body });
    try {
      const subjectId = await this.mapper.mapper.resolve(agencyId, code);
      if (subjectId === undefined) throw new HubProblem('UNKNOWN_CODE', 'no person holds this code at the sending agency; use the code the hub issued to your agency for the person');
      const noticeId = randomUUID();
      const streamId = noticeStreamId(noticeId);
      const sentAt = this.clock().toISOString();
      const events = decideNotice({ type: 'SendNotice', data: { noticeId, subjectId, agencyId, title, body, sentAt } }, noticeDecider.initialState());
      return await appendDecided(
        this.store,
        this.eventBus,
        { streamId, expectedRevision: 'no_stream', events, caller, idempotency },
        (result) => ({ noticeId, serial: result.serial, sentAt }),
        (serial) => this.replay(serial),
      );
    } catch (error) {
      return replayOrRethrow(error, this.store, idempotency, (serial) => this.replay(serial));
    }
  }

  private async replay(serial: SerialNumber): Promise<SentNotice> {
    const event = await eventOfSerial<NoticeSentData>(this.store, serial, 'NoticeSent');
    return { noticeId: event.data.noticeId, serial, sentAt: event.data.sentAt };
  }
}
