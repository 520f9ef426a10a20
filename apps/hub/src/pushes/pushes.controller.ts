import { Body, Controller, Get, HttpCode, HttpStatus, Post, Query, Req, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AgencyId } from '#linkage';
import { ApiCommandHeaders, markReplayed } from '../http/api-headers.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator } from '../linkage/authenticator.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';
import { PushFanOut } from './push-fan-out.js';
import { PushRecords } from './push-records.js';
import { PushesQuery, PushRecordsResponse, ReportedUpdateResponse, ReportUpdateRequest } from './pushes.dto.js';

@ApiTags('updates and pushes')
@Controller()
export class PushesController {
  constructor(
    private readonly auth: Authenticator,
    private readonly fanOut: PushFanOut,
    private readonly records: PushRecords,
  ) {}

  @Post('v1/updates')
  @RecordsRefusals('ReportUpdate')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Report that the calling (providing) agency\'s copy (副本) of items about a person changed, by its own code, without the data.',
    description:
      'Recorded as CopyUpdated (its own serial, the person sealed); then one push per active subscription to a reported item is issued (PushIssued, each its own serial) ' +
      'and delivered to the subscriber\'s intermediate server (`POST {endpoint}/v1/pushes`, signed with `hub-signature`) at least once, with retries, until HUB_PUSH_DEADLINE_MS. ' +
      'A push carries no value: the subscriber obtains it by an ordinary lawful query. Refusals (an item the caller\'s kind does not provide, an unknown code) are recorded (I6).',
  })
  @ApiAcceptedResponse({ type: ReportedUpdateResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'UNKNOWN_CODE', 'UPDATE_ITEM_NOT_PROVIDED', 'TABLE_VERSION_NOT_IN_FORCE', 'IDEMPOTENCY_KEY_REUSED', ...COMMON_PROBLEMS)
  async report(
    @Req() request: FastifyRequest,
    @Body() body: ReportUpdateRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ReportedUpdateResponse> {
    const { agencyId } = await this.auth.agency(request);
    const outcome = await this.fanOut.report(agencyId as AgencyId, body, { actor: `agency:${agencyId}`, ...meta });
    markReplayed(reply, outcome.replayed);
    return outcome.value;
  }

  @Get('v1/pushes')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The calling agency\'s pushes: those it received as subscriber and those its reports caused as provider, newest first, paged with `after`.',
    description: 'Each with its delivery status (pending, delivered, abandoned), serials and times; never a code.',
  })
  @ApiOkResponse({ type: PushRecordsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async list(@Req() request: FastifyRequest, @Query() query: PushesQuery): Promise<PushRecordsResponse> {
    const { agencyId } = await this.auth.agency(request);
    return this.records.agency(agencyId, query);
  }
}
