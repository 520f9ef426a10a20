import { Inject } from '@nestjs/common';
import { CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import type { EventStore, SerialNumber } from '#ledger';
import {
  corporateNumberFromBase,
  corporateNumberStreamId,
  decideCorporateNumber,
  type CorporateNumber,
  type CorporateNumberDesignatedData,
} from '#numbering';
import { appendDecided, IdempotencyKeys, replayOrRethrow, type Outcome } from '../../ledger/idempotency.js';
import { loadStream } from '../../ledger/load-stream.js';
import { hasCode, withRetries } from '../../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { corporateNumberFold } from '../corporate-number.fold.js';
import { NumberGenerator } from '../number-generator.js';
import { DesignateCorporateNumberCommand, type DesignatedCorporateNumber } from './designate-corporate-number.command.js';
import { eventOfSerial } from './replay.js';

const ATTEMPTS = 8;

@CommandHandler(DesignateCorporateNumberCommand)
export class DesignateCorporateNumberHandler implements ICommandHandler<DesignateCorporateNumberCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly numbers: NumberGenerator,
    private readonly idempotencyKeys: IdempotencyKeys,
    private readonly eventBus: EventBus,
  ) {}

  async execute(command: DesignateCorporateNumberCommand): Promise<Outcome<DesignatedCorporateNumber>> {
    const { name, location, kind, registryNumber, caller } = command;
    const body = registryNumber === undefined ? { name, location, kind } : { name, location, kind, registryNumber };
    const idempotency = this.idempotencyKeys.scope(caller, body);
    // A drawn number that is taken is drawn again; a registry number that is taken is the caller's conflict.
    const retryable = (e: unknown) =>
      hasCode(e, 'WRONG_EXPECTED_REVISION') || (registryNumber === undefined && hasCode(e, 'CORPORATE_NUMBER_ALREADY_DESIGNATED'));
    try {
      return await withRetries(ATTEMPTS, retryable, async () => {
        const corporateNumber = corporateNumberFromBase(registryNumber ?? this.numbers.corporateNumberBase());
        const streamId = corporateNumberStreamId(corporateNumber);
        const { state, expectedRevision } = await loadStream(this.store, streamId, corporateNumberFold);
        const designatedAt = this.clock().toISOString();
        const events = decideCorporateNumber({ type: 'DesignateCorporateNumber', data: { corporateNumber, name, location, kind, designatedAt } }, state);
        return appendDecided(
          this.store,
          this.eventBus,
          { streamId, expectedRevision, events, caller, idempotency },
          (result) => ({ serial: result.serial, corporateNumber, designatedAt }),
          (serial) => this.replay(serial),
        );
      });
    } catch (error) {
      return replayOrRethrow(error, this.store, idempotency, (serial) => this.replay(serial));
    }
  }

  private async replay(serial: SerialNumber): Promise<DesignatedCorporateNumber> {
    const event = await eventOfSerial<CorporateNumberDesignatedData>(this.store, serial, 'CorporateNumberDesignated');
    return { serial, corporateNumber: event.data.corporateNumber as CorporateNumber, designatedAt: event.data.designatedAt };
  }
}
