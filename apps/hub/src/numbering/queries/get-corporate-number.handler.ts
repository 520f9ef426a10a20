import { Inject } from '@nestjs/common';
import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { EventStore } from '#ledger';
import { corporateNumberStreamId, validateCorporateNumber, valueOrThrow, type DesignatedCorporateNumber } from '#numbering';
import { HubProblem } from '../../http/hub-problem.js';
import { loadStream } from '../../ledger/load-stream.js';
import { LEDGER } from '../../ledger/tokens.js';
import { corporateNumberFold } from '../corporate-number.fold.js';
import { GetCorporateNumberQuery } from './get-corporate-number.query.js';

@QueryHandler(GetCorporateNumberQuery)
export class GetCorporateNumberHandler implements IQueryHandler<GetCorporateNumberQuery> {
  constructor(@Inject(LEDGER) private readonly store: EventStore) {}

  async execute(query: GetCorporateNumberQuery): Promise<DesignatedCorporateNumber> {
    // CHECK_DIGIT_MISMATCH (with expected and actual digits) before any read: a typo is not "unknown".
    const corporateNumber = valueOrThrow(validateCorporateNumber(query.corporateNumber));
    const { state } = await loadStream(this.store, corporateNumberStreamId(corporateNumber), corporateNumberFold);
    if (state.status !== 'designated') {
      throw new HubProblem('CORPORATE_NUMBER_NOT_FOUND', `no corporate number ${corporateNumber} has been designated`);
    }
    return state;
  }
}
