import { Query } from '@nestjs/cqrs';

export interface Readiness {
  readonly status: 'ready';
  /** Number of events in the ledger. */
  readonly head: number;
  /** Serials allocated and not yet ended (I2); normally 0 between commands. */
  readonly openSerials: number;
  /** Serials this run's start-up recovery voided. */
  readonly voidedAtStartup: number;
}

export class GetReadinessQuery extends Query<Readiness> {}
