import { Inject } from '@nestjs/common';
import { CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import type { EventStore, SerialNumber } from '#ledger';
import { NumberingError, decidePersonNumbering, personNumberingStreamId, type IndividualNumberChangedData, type MyNumber } from '#numbering';
import { appendDecided, IdempotencyKeys, replayOrRethrow, type Outcome } from '../../ledger/idempotency.js';
import { loadStream } from '../../ledger/load-stream.js';
import { hasCode, withRetries } from '../../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { MunicipalityDirectory } from '../../municipalities/municipality-directory.js';
import { IdentifierVault } from '../../vault/identifier-vault.js';
import { NumberGenerator } from '../number-generator.js';
import { personNumberingFold } from '../person-numbering.fold.js';
import { ChangeIndividualNumberCommand, type ChangedIndividualNumber } from './change-individual-number.command.js';
import { eventOfSerial, identifiersOf } from './replay.js';

const ATTEMPTS = 8;

@CommandHandler(ChangeIndividualNumberCommand)
export class ChangeIndividualNumberHandler implements ICommandHandler<ChangeIndividualNumberCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly vault: IdentifierVault,
    private readonly municipalities: MunicipalityDirectory,
    private readonly numbers: NumberGenerator,
    private readonly idempotencyKeys: IdempotencyKeys,
    private readonly eventBus: EventBus,
  ) {}

  async execute(command: ChangeIndividualNumberCommand): Promise<Outcome<ChangedIndividualNumber>> {
    const { residentRecordCode, municipalityCode, reason, caller } = command;
    const idempotency = this.idempotencyKeys.scope(caller, { residentRecordCode, municipalityCode, reason });
    const streamId = personNumberingStreamId(this.vault.digest('resident-record-code', residentRecordCode));
    try {
      // The requesting municipality must be one in force (the change decider does not look at it).
      if (!this.municipalities.has(municipalityCode)) {
        throw new NumberingError('UNKNOWN_MUNICIPALITY', `municipality ${municipalityCode} is not in the municipality list in force; check the code or update the list`);
      }
      // NUMBER_UNCHANGED: the draw hit a number this person held before; draw again like a held claim.
      return await withRetries(ATTEMPTS, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION', 'CLAIM_CONFLICT', 'NUMBER_UNCHANGED'), async () => {
        const { state, expectedRevision } = await loadStream(this.store, streamId, personNumberingFold);
        const number = this.numbers.individualNumber();
        const changedAt = this.clock().toISOString();
        const events = decidePersonNumbering(
          {
            type: 'ChangeIndividualNumber',
            data: {
              reason,
              number,
              numberDigest: this.vault.digest('individual-number', number),
              identifiers: { individualNumber: number, residentRecordCode },
              changedAt,
            },
          },
          state,
        );
        return appendDecided(
          this.store,
          this.eventBus,
          { streamId, expectedRevision, events, caller, idempotency },
          (result) => ({ serial: result.serial, individualNumber: number, changedAt }),
          (serial) => this.replay(serial),
        );
      });
    } catch (error) {
      return replayOrRethrow(error, this.store, idempotency, (serial) => this.replay(serial));
    }
  }

  private async replay(serial: SerialNumber): Promise<ChangedIndividualNumber> {
    const event = await eventOfSerial<IndividualNumberChangedData>(this.store, serial, 'IndividualNumberChanged');
    const { individualNumber } = identifiersOf(this.vault, event);
    return { serial, individualNumber: individualNumber as MyNumber, changedAt: event.data.changedAt };
  }
}
