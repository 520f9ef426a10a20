import { Body, Controller, Get, HttpCode, HttpStatus, Param, Post, Query, Req, Res } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiCommandHeaders, markReplayed } from '../http/api-headers.js';
import { HubProblem } from '../http/hub-problem.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator } from '../linkage/authenticator.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';
import { NoticeBatchProgress } from './notice-batch-runner.service.js';
import { DEFAULT_NOTICE_BATCH_LIMIT, type NoticeBatchRow } from './notice-batch.store.js';
import { NoticeBatchIdParam, NoticeBatchResponse, NoticeBatchesQuery, NoticeBatchesResponse, StartNoticeBatchRequest, StartedNoticeBatchResponse } from './notice-batches.dto.js';
import { StartNoticeBatchCommand, type StartedNoticeBatch } from './start-notice-batch.handler.js';
import type { Outcome } from '../ledger/idempotency.js';

/** A batch's progress as answered (HTTP and gRPC). */
export function noticeBatchView(row: NoticeBatchRow): NoticeBatchResponse {
  return {
    batchId: row.batchId,
    status: row.completedAt === null ? 'running' : 'completed',
    audience: row.audience,
    total: row.total,
    delivered: row.delivered,
    pending: row.total - row.delivered - row.failed,
    failed: row.failed,
    serial: row.serial,
    startedAt: row.startedAt,
    ...(row.completedAt === null ? {} : { completedAt: row.completedAt }),
  };
}

@ApiTags('notices')
@Controller()
export class NoticeBatchesController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly auth: Authenticator,
    private readonly progress: NoticeBatchProgress,
  ) {}

  @Post('v1/notice-batches')
  @RecordsRefusals('StartNoticeBatch')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Send one notice (お知らせ) to many people: a list of the agency\'s codes (≤ 10,000) or everyone holding a code of the agency.',
    description:
      'Give `audience: "all"` or `codes`. Accepted at once (NoticeBatchStarted, its own serial, the text sealed); the leader then records one sealed NoticeSent per recipient ' +
      '(each its own serial, in the person\'s inbox like any notice) in the background, resumable after a crash, and NoticeBatchCompleted at the end. ' +
      'A code that names nobody at the agency counts as failed (NoticeUndelivered UNKNOWN_CODE). Follow it with GET /v1/notice-batches/{batchId}.',
  })
  @ApiAcceptedResponse({ type: StartedNoticeBatchResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'IDEMPOTENCY_KEY_REUSED', ...COMMON_PROBLEMS)
  async start(@Req() request: FastifyRequest, @Body() body: StartNoticeBatchRequest, @Meta() meta: RequestMeta, @Res({ passthrough: true }) reply: FastifyReply): Promise<StartedNoticeBatchResponse> {
    const { agencyId } = await this.auth.agency(request);
    const outcome = await this.commandBus.execute<StartNoticeBatchCommand, Outcome<StartedNoticeBatch>>(
      new StartNoticeBatchCommand(agencyId, body.title, body.body, body.audience, body.codes, { actor: `agency:${agencyId}`, ...meta }),
    );
    markReplayed(reply, outcome.replayed);
    return outcome.value;
  }

  @Get('v1/notice-batches')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The calling agency\'s notice batches, newest first, with their progress; paged with `after`.' })
  @ApiOkResponse({ type: NoticeBatchesResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async list(@Req() request: FastifyRequest, @Query() query: NoticeBatchesQuery): Promise<NoticeBatchesResponse> {
    const { agencyId } = await this.auth.agency(request);
    const page = (await this.progress.current()).page(agencyId, { limit: query.limit ?? DEFAULT_NOTICE_BATCH_LIMIT, ...(query.after === undefined ? {} : { before: Number(query.after) }) });
    return { batches: page.batches.map(noticeBatchView), ...(page.next === undefined ? {} : { next: page.next }) };
  }

  @Get('v1/notice-batches/:batchId')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'One of the calling agency\'s notice batches: delivered / pending / failed.', description: 'Another agency\'s batch is answered 404 UNKNOWN_NOTICE_BATCH, as one that does not exist.' })
  @ApiOkResponse({ type: NoticeBatchResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', 'UNKNOWN_NOTICE_BATCH', ...COMMON_PROBLEMS)
  async one(@Req() request: FastifyRequest, @Param() params: NoticeBatchIdParam): Promise<NoticeBatchResponse> {
    const { agencyId } = await this.auth.agency(request);
    const row = (await this.progress.current()).batch(params.batchId);
    if (row === undefined || row.agencyId !== agencyId) throw new HubProblem('UNKNOWN_NOTICE_BATCH', `your agency sent no notice batch ${params.batchId}; use the batchId POST /v1/notice-batches answered`);
    return noticeBatchView(row);
  }
}
