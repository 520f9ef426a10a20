import { Query } from '@nestjs/cqrs';
import type { DesignatedCorporateNumber } from '#numbering';

/** Public lookup (法人番号の検索) by number. */
export class GetCorporateNumberQuery extends Query<DesignatedCorporateNumber> {
  constructor(readonly corporateNumber: string) {
    super();
  }
}
