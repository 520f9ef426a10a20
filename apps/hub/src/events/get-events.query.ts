import { Query } from '@nestjs/cqrs';
import type { RecordedEvent } from '#ledger';

export interface EventsPage {
  readonly events: readonly RecordedEvent[];
  /** Where the next page starts. */
  readonly nextPosition: number;
  /** Number of events in the ledger when the page was read. */
  readonly head: number;
}

/** The auditors' read of the log from a position, as stored. */
export class GetEventsQuery extends Query<EventsPage> {
  constructor(
    readonly fromPosition: number,
    readonly limit: number,
  ) {
    super();
  }
}
