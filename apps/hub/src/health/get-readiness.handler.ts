import { Inject } from '@nestjs/common';
import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { EventStore } from '#ledger';
import { HubProblem } from '../http/hub-problem.js';
import { LedgerLifecycle } from '../ledger/ledger-lifecycle.service.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { HubCodeMapper } from '../linkage/hub-code-mapper.js';
import { GetReadinessQuery, type Readiness } from './get-readiness.query.js';

@QueryHandler(GetReadinessQuery)
export class GetReadinessHandler implements IQueryHandler<GetReadinessQuery> {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly lifecycle: LedgerLifecycle,
    private readonly mapper: HubCodeMapper,
  ) {}

  async execute(): Promise<Readiness> {
    if (!this.lifecycle.ready) throw new HubProblem('NOT_READY', 'the ledger is not open or start-up recovery has not finished');
    const [head, open] = await Promise.all([this.store.head(), this.store.openSerials()]);
    return { status: 'ready', head, openSerials: open.length, voidedAtStartup: this.lifecycle.voidedAtStartup, codeMapper: this.mapper.health() };
  }
}
