import { Inject } from '@nestjs/common';
import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { EventStore } from '#ledger';
import { EVENT_STORE } from '../ledger/tokens.js';
import { GetEventsQuery, type EventsPage } from './get-events.query.js';

@QueryHandler(GetEventsQuery)
export class GetEventsHandler implements IQueryHandler<GetEventsQuery> {
  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  async execute(query: GetEventsQuery): Promise<EventsPage> {
    // Head first: every event of the page is below it, so a page never claims more than the head says.
    const head = await this.store.head();
    const events = query.fromPosition >= head ? [] : await this.store.readAll({ fromPosition: query.fromPosition, maxCount: Math.min(query.limit, head - query.fromPosition) });
    return { events, nextPosition: query.fromPosition + events.length, head };
  }
}
