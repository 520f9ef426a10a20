import { Body, Controller, Get, HttpCode, HttpStatus, Param, Post, Query, Req, Res, StreamableFile } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { CORPORATE_CSV_HEADER, corporateCsvLine, foldForSearch } from '#projections';
import { RequestValidationError } from '../http/hub-problem.js';
import { ApiCommandHeaders, markReplayed } from '../http/api-headers.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator } from '../linkage/authenticator.js';
import { ChangeCorporateNumberCommand, CloseCorporateNumberCommand } from './commands/corporate-number-record.command.js';
import { DesignateCorporateNumberCommand } from './commands/designate-corporate-number.command.js';
import { CorporateRegistry } from './corporate-registry.service.js';
import {
  ChangeCorporateNumberRequest,
  ChangedCorporateNumberResponse,
  CloseCorporateNumberRequest,
  ClosedCorporateNumberResponse,
  toChangedCorporateNumberResponse,
  toClosedCorporateNumberResponse,
  CorporateCriteriaQuery,
  CorporateNumberParams,
  CorporatePageResponse,
  CorporateSearchQuery,
  CorporateNumberResponse,
  DesignateCorporateNumberRequest,
  DesignatedCorporateNumberResponse,
  toCorporateNumberResponse,
  toDesignatedCorporateNumberResponse,
} from './dto/corporate-number.dto.js';
import { GetCorporateNumberQuery } from './queries/get-corporate-number.query.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';

/** Designations (made for the National Tax Agency, 国税庁) need the operator's token. */
export const DESIGNATING_OPERATOR = 'operator:nta';

@ApiTags('corporate numbers')
@Controller('v1/corporate-numbers')
export class CorporateNumbersController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly auth: Authenticator,
    private readonly registry: CorporateRegistry,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Search the public corporate number registry (法人番号公表) by name, location and kind.',
    description: 'Public. Every criterion given must match; results come in corporate number order, a page at a time (`next` → `after`).',
  })
  @ApiOkResponse({ type: CorporatePageResponse })
  @ApiProblems('VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async search(@Query() query: CorporateSearchQuery): Promise<CorporatePageResponse> {
    const store = await this.registry.current();
    const page = await store.search(criteria(query));
    return { ...page, corporations: page.corporations.map((c) => ({ ...c, history: [...c.history] })) };
  }

  @Post()
  @RecordsRefusals('DesignateCorporateNumber')
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

  @Post(':number/changes')
  @RecordsRefusals('ChangeCorporateNumber')
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({
    summary: 'Record a change of name or location (商号・所在地の変更).',
    description: 'A new name, a new location or both, with the reason and the day it took effect; an event with a serial of its own. The registry then shows the current values and the change in the history; the former name still finds the corporation.',
  })
  @ApiParam({ name: 'number', description: '法人番号: 13 digits, the first is the check digit.', example: '3430001012345' })
  @ApiCommandHeaders()
  @ApiBearerAuth()
  @ApiCreatedResponse({ type: ChangedCorporateNumberResponse })
  @ApiProblems(
    ...BODY_PROBLEMS,
    'UNAUTHENTICATED',
    'FORBIDDEN',
    'MALFORMED',
    'CHECK_DIGIT_MISMATCH',
    'CORPORATE_NUMBER_NOT_FOUND',
    'CORPORATE_NUMBER_CLOSED',
    'NOTHING_TO_UPDATE',
    'INVALID_EFFECTIVE_DATE',
    'IDEMPOTENCY_KEY_REUSED',
    'CONCURRENT_MODIFICATION',
    ...COMMON_PROBLEMS,
  )
  async change(
    @Req() request: FastifyRequest,
    @Param() params: CorporateNumberParams,
    @Body() body: ChangeCorporateNumberRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ChangedCorporateNumberResponse> {
    this.auth.operator(request);
    const outcome = await this.commandBus.execute(
      new ChangeCorporateNumberCommand(params.number, body.name, body.location, body.reason, body.effectiveOn, { actor: DESIGNATING_OPERATOR, ...meta }),
    );
    markReplayed(reply, outcome.replayed);
    return toChangedCorporateNumberResponse(outcome.value);
  }

  @Post(':number/closures')
  @RecordsRefusals('CloseCorporateNumber')
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({
    summary: 'Record the closure of a corporation\'s record (閉鎖).',
    description: 'With the reason and the day; an event with a serial of its own. The number stays public (status `closed`) and takes no further change.',
  })
  @ApiParam({ name: 'number', description: '法人番号: 13 digits, the first is the check digit.', example: '3430001012345' })
  @ApiCommandHeaders()
  @ApiBearerAuth()
  @ApiCreatedResponse({ type: ClosedCorporateNumberResponse })
  @ApiProblems(
    ...BODY_PROBLEMS,
    'UNAUTHENTICATED',
    'FORBIDDEN',
    'MALFORMED',
    'CHECK_DIGIT_MISMATCH',
    'CORPORATE_NUMBER_NOT_FOUND',
    'CORPORATE_NUMBER_CLOSED',
    'INVALID_EFFECTIVE_DATE',
    'IDEMPOTENCY_KEY_REUSED',
    'CONCURRENT_MODIFICATION',
    ...COMMON_PROBLEMS,
  )
  async close(
    @Req() request: FastifyRequest,
    @Param() params: CorporateNumberParams,
    @Body() body: CloseCorporateNumberRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ClosedCorporateNumberResponse> {
    this.auth.operator(request);
    const outcome = await this.commandBus.execute(new CloseCorporateNumberCommand(params.number, body.reason, body.closedOn, { actor: DESIGNATING_OPERATOR, ...meta }));
    markReplayed(reply, outcome.replayed);
    return toClosedCorporateNumberResponse(outcome.value);
  }

  @Get(':number')
  @ApiOperation({ summary: 'Look up a corporate number (public): its current name and location, status, closure and change history.' })
  @ApiParam({ name: 'number', description: '法人番号: 13 digits, the first is the check digit.', example: '3430001012345' })
  @ApiOkResponse({ type: CorporateNumberResponse })
  @ApiProblems('VALIDATION_FAILED', 'CORPORATE_NUMBER_NOT_FOUND', 'CHECK_DIGIT_MISMATCH', ...COMMON_PROBLEMS)
  async lookup(@Param() params: CorporateNumberParams): Promise<CorporateNumberResponse> {
    return toCorporateNumberResponse(await this.queryBus.execute(new GetCorporateNumberQuery(params.number)));
  }
}

/** The criteria given, trimmed as designations are (surrounding white space never matches). */
function criteria(q: CorporateSearchQuery | CorporateCriteriaQuery): CorporateSearchQuery {
  const blank = (['name', 'location'] as const).filter((f) => q[f] !== undefined && foldForSearch(q[f]).length === 0);
  if (blank.length > 0) throw new RequestValidationError(blank.map((field) => ({ field, message: 'must contain something besides white space' })));
  return {
    ...(q.name === undefined ? {} : { name: q.name.trim() }),
    ...(q.location === undefined ? {} : { location: q.location.trim() }),
    ...(q.kind === undefined ? {} : { kind: q.kind }),
    ...('limit' in q && q.limit !== undefined ? { limit: q.limit } : {}),
    ...('after' in q && q.after !== undefined ? { after: q.after } : {}),
  };
}

@ApiTags('corporate numbers')
@Controller()
export class CorporateDownloadController {
  constructor(private readonly registry: CorporateRegistry) {}

  @Get('v1/corporate-numbers.csv')
  @ApiOperation({
    summary: 'Download the public corporate number registry as CSV (RFC 4180, UTF-8, CRLF).',
    description:
      'Public. The same criteria as the search, all optional; columns corporate_number, name, location, kind, kind_label, designated_at, status, closed_on, close_reason, latest_change_on, latest_change_reason (the last three empty when none).',
  })
  @ApiOkResponse({ description: 'A header line, then one line per corporation in corporate number order.', content: { 'text/csv': { schema: { type: 'string' } } } })
  @ApiProblems('VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async download(@Query() query: CorporateCriteriaQuery): Promise<StreamableFile> {
    const rows = this.registry.each(criteria(query));
    // The first page is read before answering, so an error is a problem response, not a cut download.
    const first = await rows.next();
    async function* lines(): AsyncGenerator<string> {
      yield CORPORATE_CSV_HEADER;
      if (first.done === true) return;
      yield corporateCsvLine(first.value);
      for await (const c of rows) yield corporateCsvLine(c);
    }
    return new StreamableFile(Readable.from(lines()), { type: 'text/csv; charset=utf-8; header=present', disposition: 'attachment; filename="corporate-numbers.csv"' });
  }
}
