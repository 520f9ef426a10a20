import { Query } from '@nestjs/cqrs';
import type { SelfCheckView } from '../audit/self-check.service.js';
import type { CodeMapperHealth } from '../linkage/hub-code-mapper.js';
import type { RateLimitReadiness } from '../rate-limits/rate-limits.service.js';

export interface Readiness {
  readonly status: 'ready';
  /** Number of events in the ledger. */
  readonly head: number;
  /** Serials allocated and not yet ended (I2); normally 0 between commands. */
  readonly openSerials: number;
  /** Serials this run's start-up recovery voided. */
  readonly voidedAtStartup: number;
  /** How agency codes are translated: Redis, the store while Redis is unreachable (degraded), or the store by configuration. */
  readonly codeMapper: CodeMapperHealth;
  /**
   * Where the rate limits' budgets are kept: `redis` (shared by every hub on it), `degraded` (Redis
   * configured but not answering: this hub's own budgets, the fallback), `local` (no Redis: this hub's own)
   * or `off`; `shared`, and how many times decisions fell back to local budgets since start.
   */
  readonly rateLimits: RateLimitReadiness;
  /** The hub's check of its own log: passed, off, or a run in progress (failed or unverified is not ready). */
  readonly selfCheck: SelfCheckView;
  /** A `leader` takes commands; a `standby` (KurrentDB only) serves reads and refuses commands (503 NOT_LEADER). The embedded SQLite hub always leads. */
  readonly role: 'leader' | 'standby';
  /** On KurrentDB: the leader as this hub knows it (instance id, URL). */
  readonly leader?: { readonly instanceId: string; readonly url?: string };
}

export class GetReadinessQuery extends Query<Readiness> {}
