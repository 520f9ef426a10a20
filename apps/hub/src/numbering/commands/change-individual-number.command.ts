import { Command } from '@nestjs/cqrs';
import type { SerialNumber } from '#ledger';
import type { ChangeReason, MyNumber } from '#numbering';
import type { Caller, Outcome } from '../../ledger/idempotency.js';

export interface ChangedIndividualNumber {
  readonly serial: SerialNumber;
  readonly individualNumber: MyNumber;
  readonly changedAt: string;
}

/** 番号変更: replace a resident's individual number; the old one is revoked and never issued again. */
export class ChangeIndividualNumberCommand extends Command<Outcome<ChangedIndividualNumber>> {
  constructor(
    readonly residentRecordCode: string,
    readonly municipalityCode: string,
    readonly reason: ChangeReason,
    readonly caller: Caller,
  ) {
    super();
  }
}
