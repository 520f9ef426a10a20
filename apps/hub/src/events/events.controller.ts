import { Controller, Get, Query } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../http/problem.dto.js';
import { EventsPageResponse, EventsQuery, toEventsPageResponse } from './events.dto.js';
import { GetEventsQuery } from './get-events.query.js';

@ApiTags('audit')
@Controller('v1/events')
export class EventsController {
  constructor(private readonly queryBus: QueryBus) {}

  // Auditor access control arrives with agency authentication (next issue).
  @Get()
  @ApiOperation({
    summary: 'Read the ledger from a position (auditors).',
    description: 'Envelopes as stored. Numbering events carry keyed digests and sealed identifiers, never a plaintext individual number or resident record code (I4).',
  })
  @ApiOkResponse({ type: EventsPageResponse })
  @ApiProblems('VALIDATION_FAILED', 'INTERNAL', 'SERVICE_UNAVAILABLE')
  async list(@Query() query: EventsQuery): Promise<EventsPageResponse> {
    return toEventsPageResponse(await this.queryBus.execute(new GetEventsQuery(query.from, query.limit)));
  }
}
