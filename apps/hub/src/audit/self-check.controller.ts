import { Controller, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { HubProblem } from '../http/hub-problem.js';
import { ApiProblems } from '../http/problem.dto.js';
import { Authenticator, type Credentialed } from '../linkage/authenticator.js';
import { SelfCheckListResponse, SelfCheckRunResponse, selfCheckRunResponse } from './self-check.dto.js';
import { SelfCheckService } from './self-check.service.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';

/** The operator's command to re-check the whole stored log (self-check.service.ts), and its status. */
@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/audit/self-checks')
export class SelfCheckController {
  constructor(
    private readonly selfCheck: SelfCheckService,
    private readonly auth: Authenticator,
  ) {}

  @Post()
  @RecordsRefusals('RequestSelfCheck')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Re-check every stored event against the stored tree and the signed checkpoints, beside live traffic at low priority (operator).',
    description: 'Answers at once with the run and its status URL; a requested run in progress is answered instead of a second one.',
  })
  @ApiAcceptedResponse({ type: SelfCheckRunResponse })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL')
  request(@Req() request: Credentialed, @Res({ passthrough: true }) reply: FastifyReply): SelfCheckRunResponse {
    this.auth.operator(request);
    const run = selfCheckRunResponse(this.selfCheck.request());
    void reply.header('location', run.statusUrl);
    return run;
  }

  @Get()
  @ApiOperation({ summary: "The hub's verdict on its own log and the last runs of the self-check (operator)." })
  @ApiOkResponse({ type: SelfCheckListResponse })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL')
  list(@Req() request: Credentialed): SelfCheckListResponse {
    this.auth.operator(request);
    return { selfCheck: this.selfCheck.view(), runs: this.selfCheck.list().map(selfCheckRunResponse) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One run of the self-check: progress, then its outcome and findings (operator).' })
  @ApiOkResponse({ type: SelfCheckRunResponse })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'INTERNAL')
  status(@Param('id') id: string, @Req() request: Credentialed): SelfCheckRunResponse {
    this.auth.operator(request);
    const run = this.selfCheck.run(id);
    if (run === undefined) throw new HubProblem('NOT_FOUND', `no self-check run ${JSON.stringify(id)} (the last 20 are kept)`);
    return selfCheckRunResponse(run);
  }
}
