import { Controller, Get, Query, Req } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Authenticator, type Credentialed } from '../linkage/authenticator.js';
import { ApiProblems } from '../http/problem.dto.js';
import { EventsPageResponse, EventsQuery, toEventsPageResponse } from './events.dto.js';
import { GetEventsQuery } from './get-events.query.js';

@ApiTags('audit')
@Controller('v1/events')
export class EventsController {
  constructor(
    private readonly queryBus: QueryBus,
    private readonly auth: Authenticator,
  ) {}

  @Get()
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Read the ledger from a position (auditors).',
    description:
      'Envelopes as stored, for the auditor only (they hold subject ids and agency codes). Numbering events carry keyed digests and sealed identifiers, never a plaintext individual number or resident record code (I4).',
  })
  @ApiOkResponse({ type: EventsPageResponse })
  @ApiProblems('VALIDATION_FAILED', 'UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL', 'SERVICE_UNAVAILABLE')
  async list(@Query() query: EventsQuery, @Req() request: Credentialed): Promise<EventsPageResponse> {
    await this.auth.requireAuditor(request);
    return toEventsPageResponse(await this.queryBus.execute(new GetEventsQuery(query.from, query.limit)));
  }
}
