import { Command } from '@nestjs/cqrs';
import type { SerialNumber } from '#ledger';
import type { CorporateKind, CorporateNumber } from '#numbering';
import type { Caller, Outcome } from '../../ledger/idempotency.js';

export interface DesignatedCorporateNumber {
  readonly serial: SerialNumber;
  readonly corporateNumber: CorporateNumber;
  readonly designatedAt: string;
}

/** 法人番号の指定: designate a corporate number, from a registry number or drawn at random. */
export class DesignateCorporateNumberCommand extends Command<Outcome<DesignatedCorporateNumber>> {
  constructor(
    readonly name: string,
    readonly location: string,
    readonly kind: CorporateKind,
    readonly registryNumber: string | undefined,
    readonly caller: Caller,
  ) {
    super();
  }
}
