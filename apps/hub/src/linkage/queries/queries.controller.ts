import { Body, Controller, HttpCode, HttpStatus, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiCommandHeaders, markReplayed } from '../../http/api-headers.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../../http/problem.dto.js';
import { Meta, type RequestMeta } from '../../http/request-meta.js';
import { DENIALS, FAILURES, QueryEdge } from './query-edge.js';
import { BulkQueryResponse, QueryResponse, SubmitBulkQueryRequest, SubmitQueryRequest, toQueryResponse } from './query.dto.js';
import { RecordsRefusals } from '../../refusals/refusal.guard.js';

@ApiTags('queries')
@Controller('v1/queries')
export class QueriesController {
  constructor(private readonly edge: QueryEdge) {}

  @Post()
  @RecordsRefusals('SubmitQuery')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Query another agency for a person\'s information (照会).',
    description:
      'The hub allocates a serial, checks the credential and the authorization table (a refusal is recorded and answered 403 with the reason as its code), translates the code, asks the provider\'s intermediate server and relays its answer (ciphertext when answerPublicKey is given). The hub keeps only the answer\'s digest and size.',
  })
  @ApiOkResponse({ type: QueryResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', ...DENIALS, ...FAILURES, 'IDEMPOTENCY_KEY_REUSED', 'QUERY_IN_PROGRESS', ...COMMON_PROBLEMS)
  async query(@Req() request: FastifyRequest, @Body() body: SubmitQueryRequest, @Meta() meta: RequestMeta, @Res({ passthrough: true }) reply: FastifyReply): Promise<QueryResponse> {
    const result = await this.edge.one(request, body, meta);
    markReplayed(reply, result.replayed);
    return toQueryResponse(result);
  }

  @Post('bulk')
  @RecordsRefusals('SubmitBulkQuery')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Query one provider about many people (一括照会).',
    description: 'Each person gets their own serial and their own outcome (answered, refused-by-provider, denied, failed); the provider is asked once for the batch.',
  })
  @ApiOkResponse({ type: BulkQueryResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'IDEMPOTENCY_KEY_REUSED', 'QUERY_IN_PROGRESS', ...COMMON_PROBLEMS)
  async bulk(@Req() request: FastifyRequest, @Body() body: SubmitBulkQueryRequest, @Meta() meta: RequestMeta, @Res({ passthrough: true }) reply: FastifyReply): Promise<BulkQueryResponse> {
    const results = await this.edge.bulk(request, body, meta);
    markReplayed(reply, results.every((r) => r.replayed));
    return { batchId: results[0]?.batch?.batchId ?? '', results: results.map(toQueryResponse) };
  }


}

