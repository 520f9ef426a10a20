import { Controller, Get } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../http/problem.dto.js';
import { GetReadinessQuery } from './get-readiness.query.js';
import { LivenessResponse, ReadinessResponse, toReadinessResponse } from './health.dto.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly queryBus: QueryBus) {}

  @Get('live')
  @ApiOperation({ summary: 'The process answers HTTP.' })
  @ApiOkResponse({ type: LivenessResponse })
  live(): LivenessResponse {
    return { status: 'live' };
  }

  @Get('ready')
  @ApiOperation({ summary: 'The ledger is open, start-up recovery (voiding serials left open) is done, and the self-check found the stored log as it was written.' })
  @ApiOkResponse({ type: ReadinessResponse })
  @ApiProblems('NOT_READY', 'INTERNAL')
  async ready(): Promise<ReadinessResponse> {
    return toReadinessResponse(await this.queryBus.execute(new GetReadinessQuery()));
  }
}
