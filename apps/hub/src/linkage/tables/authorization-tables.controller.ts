import { Body, Controller, Get, HttpCode, HttpStatus, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiCommandHeaders, markReplayed } from '../../http/api-headers.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../../http/problem.dto.js';
import { Meta, type RequestMeta } from '../../http/request-meta.js';
import { RecordsRefusals } from '../../refusals/refusal.guard.js';
import { Authenticator } from '../authenticator.js';
import { AuthorizationTableRollout, type PublishedVersion, type WithdrawnVersion } from './authorization-table-rollout.js';
import { PublishAuthorizationTableRequest, PublishedTableResponse, TableVersionParam, TableVersionsResponse, WithdrawAuthorizationTableRequest, WithdrawnTableResponse } from './authorization-tables.dto.js';

export const OPERATOR_ACTOR = 'operator:hub';
const TABLE_PROBLEMS = ['AUTHORIZATION_TABLE_SCHEMA_VIOLATION', 'AUTHORIZATION_TABLE_UNKNOWN_CODE', 'INVALID_AUTHORIZATION_TABLE', 'TABLE_VERSION_NOT_NEWER', 'TABLE_NOT_EFFECTIVE'] as const;

/**
 * Authorization table rollout without a restart (operator): publish a version with its effectiveFrom,
 * validate one (the same checks and diff, nothing appended), withdraw one before it takes effect, list
 * them. docs/authorization-table-rollout.md.
 */
@ApiTags('authorization tables')
@Controller()
export class AuthorizationTablesController {
  constructor(
    private readonly auth: Authenticator,
    private readonly rollout: AuthorizationTableRollout,
  ) {}

  @Post('v1/authorization-tables')
  @RecordsRefusals('PublishAuthorizationTable')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Publish an authorization table version (operator).',
    description:
      'Validated (JSON Schema, codes, rules, a version greater than every published one, effectiveFrom not in the past nor before the latest version\'s); answers the diff against the version in force. The version takes effect at its effectiveFrom without a restart: queries are decided under the version in force at their time. One AuthorizationTablePublished event, its own serial; a refusal is a RequestRefused event. Idempotency-Key: a retry answers the first outcome.',
  })
  @ApiCreatedResponse({ type: PublishedTableResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', ...TABLE_PROBLEMS, 'IDEMPOTENCY_KEY_REUSED', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async publish(@Req() request: FastifyRequest, @Body() body: PublishAuthorizationTableRequest, @Meta() meta: RequestMeta, @Res({ passthrough: true }) reply: FastifyReply): Promise<PublishedVersion> {
    this.auth.operator(request);
    const outcome = await this.rollout.publish(body.table, { actor: OPERATOR_ACTOR, ...meta });
    markReplayed(reply, outcome.replayed);
    return outcome.value;
  }

  @Post('v1/authorization-tables/validations')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Validate an authorization table version without publishing it (operator): the same checks and diff as publishing; nothing is appended.',
  })
  @ApiOkResponse({ type: PublishedTableResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', ...TABLE_PROBLEMS, ...COMMON_PROBLEMS)
  async validate(@Req() request: FastifyRequest, @Body() body: PublishAuthorizationTableRequest): Promise<PublishedVersion> {
    this.auth.operator(request);
    return this.rollout.validate(body.table);
  }

  @Post('v1/authorization-tables/:version/withdrawal')
  @RecordsRefusals('WithdrawAuthorizationTable')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Withdraw a published version before it takes effect (operator); refused once it has. One AuthorizationTableWithdrawn event, its own serial. A withdrawn version never comes into force and never ends a subscription.',
  })
  @ApiCreatedResponse({ type: WithdrawnTableResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', 'TABLE_VERSION_NOT_FOUND', 'TABLE_VERSION_WITHDRAWN', 'TABLE_VERSION_IN_FORCE', 'IDEMPOTENCY_KEY_REUSED', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async withdraw(
    @Req() request: FastifyRequest,
    @Param() params: TableVersionParam,
    @Body() body: WithdrawAuthorizationTableRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<WithdrawnVersion> {
    this.auth.operator(request);
    const outcome = await this.rollout.withdraw(params.version, body.reason, { actor: OPERATOR_ACTOR, ...meta });
    markReplayed(reply, outcome.replayed);
    return outcome.value;
  }

  @Get('v1/authorization-tables')
  @ApiOperation({ summary: 'Every published authorization table version, oldest first, with its state now: scheduled, in-force, superseded or withdrawn.' })
  @ApiOkResponse({ type: TableVersionsResponse })
  @ApiProblems(...COMMON_PROBLEMS)
  async list(): Promise<TableVersionsResponse> {
    return (await this.rollout.list()) as TableVersionsResponse;
  }
}
