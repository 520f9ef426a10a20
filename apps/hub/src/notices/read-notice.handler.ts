import { Inject } from '@nestjs/common';
import { Command, CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import type { EventStore, NewEvent } from '#ledger';
import { noticeStreamId, type SubjectId } from '#linkage';
import { HubProblem } from '../http/hub-problem.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { loadStream } from '../ledger/load-stream.js';
import { hasCode, withRetries } from '../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { NOTICE_READ_TYPES, decideReadNotice, evolveNoticeRead, initialNoticeReadState, type NoticeReadState, type NoticeStreamEvent } from './notice-read.decider.js';

export interface ReadNoticeResult {
  readonly noticeId: string;
  /** The first time the person read it. */
  readonly readAt: string;
  /** The serial of the NoticeRead event when this request recorded it; absent when it was read before. */
  readonly serial?: string;
}

export class ReadNoticeCommand extends Command<ReadNoticeResult> {
  constructor(
    readonly subjectId: SubjectId,
    readonly noticeId: string,
    readonly correlationId: string,
  ) {
    super();
  }
}

const FOLD = { initialState: initialNoticeReadState, evolve: evolveNoticeRead, types: NOTICE_READ_TYPES };

/**
 * Marks a notice read by the person it was sent to: one NoticeRead on the notice's stream, under a serial of
 * its own; a second read appends nothing and answers the first time (two reads at once: the loser of the
 * expected-revision race reloads and finds it read). 404 UNKNOWN_NOTICE for a notice that is not theirs.
 */
@CommandHandler(ReadNoticeCommand)
export class ReadNoticeHandler implements ICommandHandler<ReadNoticeCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly eventBus: EventBus,
  ) {}

  async execute({ subjectId, noticeId, correlationId }: ReadNoticeCommand): Promise<ReadNoticeResult> {
    const streamId = noticeStreamId(noticeId);
    return withRetries(3, (error) => hasCode(error, 'WRONG_EXPECTED_REVISION'), async () => {
      const loaded = await loadStream<NoticeReadState, NoticeStreamEvent>(this.store, streamId, FOLD);
      const readAt = this.clock().toISOString();
      const decision = decideReadNotice({ noticeId, subjectId, readAt }, loaded.state);
      if (decision.kind === 'unknown') throw new HubProblem('UNKNOWN_NOTICE', `you hold no notice ${noticeId}; use the noticeId of one of your notices (GET /v1/citizens/me/notices)`);
      if (decision.kind === 'read-before') return { noticeId, readAt: decision.readAt };
      const events = decision.events as unknown as readonly NewEvent[];
      const result = await this.store.append({ streamId, expectedRevision: loaded.expectedRevision, events, serial: { allocate: true }, metadata: { actor: 'citizen', correlationId } });
      this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
      return { noticeId, readAt, serial: result.serial };
    });
  }
}
