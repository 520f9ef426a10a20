import { Command } from '@nestjs/cqrs';
import type { SerialNumber } from '#ledger';
import type { CorporateNumber } from '#numbering';
import type { Caller, Outcome } from '../../ledger/idempotency.js';

export interface ChangedCorporateNumber {
  readonly serial: SerialNumber;
  readonly corporateNumber: CorporateNumber;
  /** The current name and location after the change. */
  readonly name: string;
  readonly location: string;
  /** Which of the two changed. */
  readonly changed: readonly ('name' | 'location')[];
  readonly effectiveOn: string;
  readonly changedAt: string;
}

/** 商号・所在地の変更: a new name, a new location or both, effective on a day. */
export class ChangeCorporateNumberCommand extends Command<Outcome<ChangedCorporateNumber>> {
  constructor(
    readonly corporateNumber: string,
    readonly name: string | undefined,
    readonly location: string | undefined,
    readonly reason: string,
    readonly effectiveOn: string,
    readonly caller: Caller,
  ) {
    super();
  }
}

export interface ClosedCorporateNumber {
  readonly serial: SerialNumber;
  readonly corporateNumber: CorporateNumber;
  readonly closedOn: string;
  readonly closedAt: string;
}

/** 閉鎖: the corporation's record closed on a day; the number stays public and is never designated again. */
export class CloseCorporateNumberCommand extends Command<Outcome<ClosedCorporateNumber>> {
  constructor(
    readonly corporateNumber: string,
    readonly reason: string,
    readonly closedOn: string,
    readonly caller: Caller,
  ) {
    super();
  }
}
