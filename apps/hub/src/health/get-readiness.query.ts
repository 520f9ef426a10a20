import { Query } from '@nestjs/cqrs';
import type { SelfCheckView } from '../audit/self-check.service.js';
import type { CodeMapperHealth } from '../linkage/hub-code-mapper.js';

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
  /** The hub's check of its own log: passed, off, or a run in progress (failed or unverified is not ready). */
  readonly selfCheck: SelfCheckView;
  /** A `leader` takes commands; a `standby` (KurrentDB only) serves reads and refuses commands (503 NOT_LEADER). The embedded SQLite hub always leads. */
  readonly role: 'leader' | 'standby';
  /** On KurrentDB: the leader as this hub knows it (instance id, URL). */
  readonly leader?: { readonly instanceId: string; readonly url?: string };
}

export class GetReadinessQuery extends Query<Readiness> {}
