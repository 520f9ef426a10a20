import { Inject } from '@nestjs/common';
import { CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import type { EventStore, SerialNumber } from '#ledger';
import { decidePersonNumbering, personNumberingStreamId, type IndividualNumberIssuedData, type MyNumber } from '#numbering';
import { appendDecided, IdempotencyKeys, replayOrRethrow, type Outcome } from '../../ledger/idempotency.js';
import { loadStream } from '../../ledger/load-stream.js';
import { hasCode, withRetries } from '../../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { MunicipalityDirectory } from '../../municipalities/municipality-directory.js';
import { IdentifierVault } from '../../vault/identifier-vault.js';
import { NumberGenerator } from '../number-generator.js';
import { personNumberingFold } from '../person-numbering.fold.js';
import { IssueIndividualNumberCommand, type IssuedIndividualNumber } from './issue-individual-number.command.js';
import { eventOfSerial, identifiersOf } from './replay.js';
import { newBearerToken, tokenDigest } from '../../linkage/hub-secrets.js';

/** Draws and concurrent writers: a held number (CLAIM_CONFLICT) is drawn again, a moved stream is reloaded. */
const ATTEMPTS = 8;

@CommandHandler(IssueIndividualNumberCommand)
export class IssueIndividualNumberHandler implements ICommandHandler<IssueIndividualNumberCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly vault: IdentifierVault,
    private readonly municipalities: MunicipalityDirectory,
    private readonly numbers: NumberGenerator,
    private readonly idempotencyKeys: IdempotencyKeys,
    private readonly eventBus: EventBus,
  ) {}

  async execute(command: IssueIndividualNumberCommand): Promise<Outcome<IssuedIndividualNumber>> {
    const { residentRecordCode, municipalityCode, caller } = command;
    const idempotency = this.idempotencyKeys.scope(caller, { residentRecordCode, municipalityCode });
    const streamId = personNumberingStreamId(this.vault.digest('resident-record-code', residentRecordCode));
    try {
      return await withRetries(ATTEMPTS, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION', 'CLAIM_CONFLICT'), async () => {
        const { state, expectedRevision } = await loadStream(this.store, streamId, personNumberingFold);
        const number = this.numbers.individualNumber();
        // The citizen's credential for their provision records (情報提供等記録), handed over with the number.
        const citizenSecret = newBearerToken();
        const issuedAt = this.clock().toISOString();
        const events = decidePersonNumbering(
          {
            type: 'IssueIndividualNumber',
            data: {
              // The hub's own id for the person: random, never derived from a number, never sent out.
              subjectId: randomUUID(),
              municipalityCode,
              municipalityKnown: this.municipalities.has(municipalityCode),
              number,
              numberDigest: this.vault.digest('individual-number', number),
              residentDigest: this.vault.digest('resident-record-code', residentRecordCode),
              identifiers: { individualNumber: number, residentRecordCode, citizenSecret },
              citizenCredentialDigest: tokenDigest(citizenSecret),
              issuedAt,
            },
          },
          state,
        );
        return appendDecided(
          this.store,
          this.eventBus,
          { streamId, expectedRevision, events, caller, idempotency },
          (result) => ({ serial: result.serial, individualNumber: number, citizenSecret, issuedAt }),
          (serial) => this.replay(serial),
        );
      });
    } catch (error) {
      return replayOrRethrow(error, this.store, idempotency, (serial) => this.replay(serial));
    }
  }

  /** The outcome of the original issuance, rebuilt from its events: the number comes from the opened seal. */
  private async replay(serial: SerialNumber): Promise<IssuedIndividualNumber> {
    const event = await eventOfSerial<IndividualNumberIssuedData>(this.store, serial, 'IndividualNumberIssued');
    const { individualNumber, citizenSecret } = identifiersOf(this.vault, event);
    return { serial, individualNumber: individualNumber as MyNumber, ...(citizenSecret === undefined ? {} : { citizenSecret }), issuedAt: event.data.issuedAt };
  }
}
