import { Command } from '@nestjs/cqrs';
import type { SerialNumber } from '#ledger';
import type { MyNumber } from '#numbering';
import type { Caller, Outcome } from '../../ledger/idempotency.js';

export interface IssuedIndividualNumber {
  readonly serial: SerialNumber;
  readonly individualNumber: MyNumber;
  /** The citizen's secret for reading their provision records; absent for numbers issued before it existed. */
  readonly citizenSecret?: string;
  readonly issuedAt: string;
}

/** 付番: give a resident (known by resident record code) a new individual number. */
export class IssueIndividualNumberCommand extends Command<Outcome<IssuedIndividualNumber>> {
  constructor(
    readonly residentRecordCode: string,
    readonly municipalityCode: string,
    readonly caller: Caller,
  ) {
    super();
  }
}
