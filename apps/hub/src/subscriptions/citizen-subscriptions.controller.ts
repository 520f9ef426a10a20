import { Controller, Get, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiProblems, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Authenticator } from '../linkage/authenticator.js';
import { CitizenSubscriptionsResponse, SubscriptionsQuery } from './subscriptions.dto.js';
import { SubscriptionsService } from './subscriptions.service.js';

@ApiTags('subscriptions')
@Controller('v1/citizens/me/subscriptions')
export class CitizenSubscriptionsController {
  constructor(
    private readonly auth: Authenticator,
    private readonly subscriptions: SubscriptionsService,
  ) {}

  @Get()
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Who subscribes to the calling citizen\'s information (プッシュ型の情報提供), in the order the subscriptions were made, paged with `after`.',
    description: 'Authenticated as the citizen. Each subscription: the agency told of updates, the agency whose copy is watched, the procedure and items (with their names in the table in force), its status and times. No agency\'s code is shown.',
  })
  @ApiOkResponse({ type: CitizenSubscriptionsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async list(@Req() request: FastifyRequest, @Query() query: SubscriptionsQuery): Promise<CitizenSubscriptionsResponse> {
    const subjectId = await this.auth.citizen(request);
    const page = await this.subscriptions.ofCitizen(subjectId, { ...(query.limit === undefined ? {} : { limit: query.limit }), ...(query.after === undefined ? {} : { after: query.after }) });
    return { subscriptions: page.subscriptions.map((s) => ({ ...s, items: [...s.items] })), ...(page.next === undefined ? {} : { next: page.next }) };
  }
}
