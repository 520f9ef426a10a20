import { Inject } from '@nestjs/common';
import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { EventStore } from '#ledger';
import { SelfCheckService } from '../audit/self-check.service.js';
import { HubProblem } from '../http/hub-problem.js';
import { LedgerLifecycle } from '../ledger/ledger-lifecycle.service.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { HubCodeMapper } from '../linkage/hub-code-mapper.js';
import { RateLimits } from '../rate-limits/rate-limits.service.js';
import { GetReadinessQuery, type Readiness } from './get-readiness.query.js';

@QueryHandler(GetReadinessQuery)
export class GetReadinessHandler implements IQueryHandler<GetReadinessQuery> {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly lifecycle: LedgerLifecycle,
    private readonly mapper: HubCodeMapper,
    private readonly selfCheck: SelfCheckService,
    private readonly rateLimits: RateLimits,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
  ) {}

  async execute(): Promise<Readiness> {
    if (!this.lifecycle.ready) throw new HubProblem('NOT_READY', 'the ledger is not open or start-up recovery has not finished');
    const selfCheck = this.selfCheck.view();
    // An altered log (or one the start check could not verify) is not ready: it is still read, never signed.
    if (selfCheck.status === 'failed') {
      const f = selfCheck.finding!;
      const where = f.position === null ? 'the log' : `position ${f.position}${f.serial === null ? '' : ` (serial ${f.serial})`}`;
      throw new HubProblem('NOT_READY', `the self-check found the stored log altered: ${f.code} at ${where} (${f.check} check); no checkpoint is signed until the hub restarts on a sound ledger file`, { selfCheck });
    }
    if (selfCheck.status === 'unverified') throw new HubProblem('NOT_READY', 'the self-check at start could not finish; POST /v1/audit/self-checks runs it again', { selfCheck });
    const [head, open] = await Promise.all([this.store.head(), this.store.openSerials()]);
    const base = { status: 'ready', head, openSerials: open.length, voidedAtStartup: this.lifecycle.voidedAtStartup, codeMapper: this.mapper.health(), rateLimits: this.rateLimits.readiness(), selfCheck } as const;
    // The embedded SQLite hub is the only writer of its log: it always leads.
    if (this.leadership === null) return { ...base, role: 'leader' };
    // Several hubs on KurrentDB: which one this is, and who leads.
    const leader = this.leadership.leader;
    return { ...base, role: this.leadership.acceptsCommands ? 'leader' : 'standby', ...(leader === undefined ? {} : { leader }) };
  }
}
