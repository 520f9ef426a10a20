import { Body, Controller, Get, HttpCode, HttpStatus, Param, Post, Req, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiCommandHeaders, markReplayed } from '../http/api-headers.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator } from '../linkage/authenticator.js';
import { DesignateCorporateNumberCommand } from './commands/designate-corporate-number.command.js';
import {
  CorporateNumberParams,
  CorporateNumberResponse,
  DesignateCorporateNumberRequest,
  DesignatedCorporateNumberResponse,
  toCorporateNumberResponse,
  toDesignatedCorporateNumberResponse,
} from './dto/corporate-number.dto.js';
import { GetCorporateNumberQuery } from './queries/get-corporate-number.query.js';

/** Designations (made for the National Tax Agency, 国税庁) need the operator's token. */
export const DESIGNATING_OPERATOR = 'operator:nta';

@ApiTags('corporate numbers')
@Controller('v1/corporate-numbers')
export class CorporateNumbersController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly auth: Authenticator,
  ) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({ summary: 'Designate a corporate number (法人番号の指定).', description: 'From the 12-digit registry number when given, else from a random base.' })
  @ApiCommandHeaders()
  @ApiBearerAuth()
  @ApiCreatedResponse({ type: DesignatedCorporateNumberResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', 'CORPORATE_NUMBER_ALREADY_DESIGNATED', 'IDEMPOTENCY_KEY_REUSED', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async designate(
    @Req() request: FastifyRequest,
    @Body() body: DesignateCorporateNumberRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<DesignatedCorporateNumberResponse> {
    this.auth.operator(request);
    const caller = { actor: DESIGNATING_OPERATOR, ...meta };
    const outcome = await this.commandBus.execute(new DesignateCorporateNumberCommand(body.name, body.location, body.kind, body.registryNumber, caller));
    markReplayed(reply, outcome.replayed);
    return toDesignatedCorporateNumberResponse(outcome.value);
  }

  @Get(':number')
  @ApiOperation({ summary: 'Look up a corporate number (public).' })
  @ApiParam({ name: 'number', description: '法人番号: 13 digits, the first is the check digit.', example: '7430001012345' })
  @ApiOkResponse({ type: CorporateNumberResponse })
  @ApiProblems('VALIDATION_FAILED', 'CORPORATE_NUMBER_NOT_FOUND', 'CHECK_DIGIT_MISMATCH', ...COMMON_PROBLEMS)
  async lookup(@Param() params: CorporateNumberParams): Promise<CorporateNumberResponse> {
    return toCorporateNumberResponse(await this.queryBus.execute(new GetCorporateNumberQuery(params.number)));
  }
}
