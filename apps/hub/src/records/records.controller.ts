import { Controller, Get, Inject, Query, Req, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { CITIZEN_CSV_COLUMNS, CITIZEN_CSV_HEADER, CSV_BOM, MAX_CITIZEN_LIMIT, citizenCsvLine, type AgencyRecordsPage, type CitizenMonth, type CitizenRecordsPage, type MonthlyCount } from '#projections';
import { RequestValidationError } from '../http/hub-problem.js';
import { ApiProblems, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { CLOCK, type Clock } from '../ledger/tokens.js';
import { Authenticator } from '../linkage/authenticator.js';
import { ProvisionRecords } from './provision-records.service.js';
import { PushRecords } from '../pushes/push-records.js';
import { CitizenPushesQuery, PushesQuery, PushRecordsResponse } from '../pushes/pushes.dto.js';
import {
  AgencyRecordsQuery,
  AgencyRecordsResponse,
  AgencyStatisticsResponse,
  CitizenPeriodQuery,
  CitizenRecordsCsvQuery,
  CitizenRecordsQuery,
  CitizenRecordsResponse,
  CitizenStatisticsResponse,
  StatisticsQuery,
} from './records.dto.js';

@ApiTags('provision records')
@Controller()
export class RecordsController {
  constructor(
    private readonly auth: Authenticator,
    private readonly records: ProvisionRecords,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly pushes: PushRecords,
  ) {}

  @Get('v1/citizens/me/push-records')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The calling citizen\'s pushes (プッシュ型の情報提供): each time an agency\'s copy of an item about them changed and a subscribing agency was told, newest first.',
    description:
      'Authenticated as the citizen. Each record names the subscriber, the provider, the procedure and item, the push\'s serial and its delivery (pending, delivered, abandoned); ' +
      'never a code. The value itself is not in a push: a subscriber that fetches it makes an ordinary query, shown in the provision records.',
  })
  @ApiOkResponse({ type: PushRecordsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async citizenPushes(@Req() request: FastifyRequest, @Query() query: CitizenPushesQuery): Promise<PushRecordsResponse> {
    const subjectId = await this.auth.citizen(request);
    return this.pushes.citizen(subjectId, query);
  }

  @Get('v1/agencies/me/push-records')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The calling agency\'s pushes, as subscriber (received) and as provider (caused by its reports), newest first, paged with `after`.' })
  @ApiOkResponse({ type: PushRecordsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async agencyPushes(@Req() request: FastifyRequest, @Query() query: PushesQuery): Promise<PushRecordsResponse> {
    const { agencyId } = await this.auth.agency(request);
    return this.pushes.agency(agencyId, query);
  }

  @Get('v1/citizens/me/provision-records')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The calling citizen\'s provision records (情報提供等記録): when, who asked, from whom, what and why, for 7 years; newest first, paged with `after`.',
    description:
      'Authenticated as the citizen (the secret issued with the individual number, or a session). Filters: `from` (inclusive) and `to` (exclusive) within the 7 years before now, ' +
      '`agencyId` (the agency asked or provided). Each record names agencies, procedure and items with their codes and names; never a person\'s code or id. ' +
      'A self-information request (自己情報表示) has `kind: self-information` and `requester: null`.',
  })
  @ApiOkResponse({ type: CitizenRecordsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async citizen(@Req() request: FastifyRequest, @Query() query: CitizenRecordsQuery): Promise<CitizenRecordsPage> {
    const period = checkedPeriod(query);
    const subjectId = await this.auth.citizen(request);
    const store = await this.records.current();
    return store.citizenRecords(subjectId, {
      now: this.clock(),
      ...period,
      ...(query.agencyId === undefined ? {} : { agencyId: query.agencyId }),
      ...(query.limit === undefined ? {} : { limit: query.limit }),
      ...(query.after === undefined ? {} : { after: query.after }),
    });
  }

  @Get('v1/citizens/me/provision-records.csv')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The calling citizen\'s provision records as CSV (UTF-8 with BOM, RFC 4180, CRLF, Japanese header row), newest first.',
    description: `The same filters as the list (no paging: the whole period, read page by page as it is sent). Columns: ${CITIZEN_CSV_COLUMNS.join(', ')}.`,
  })
  @ApiOkResponse({ description: 'A byte order mark, a header line, then one line per record.', content: { 'text/csv': { schema: { type: 'string' } } } })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async citizenCsv(@Req() request: FastifyRequest, @Query() query: CitizenRecordsCsvQuery): Promise<StreamableFile> {
    const period = checkedPeriod(query);
    const subjectId = await this.auth.citizen(request);
    const store = await this.records.current();
    // One instant for every page, so the window does not move while the file is sent.
    const base = { now: this.clock(), ...period, ...(query.agencyId === undefined ? {} : { agencyId: query.agencyId }), limit: MAX_CITIZEN_LIMIT };
    // The first page is read before answering, so an error is a problem response, not a cut download.
    const first = await store.citizenRecords(subjectId, base);
    async function* lines(): AsyncGenerator<string> {
      yield `${CSV_BOM}${CITIZEN_CSV_HEADER}`;
      let page = first;
      for (;;) {
        yield page.records.map(citizenCsvLine).join('');
        if (page.next === undefined) return;
        page = await store.citizenRecords(subjectId, { ...base, after: page.next });
      }
    }
    return new StreamableFile(Readable.from(lines()), { type: 'text/csv; charset=utf-8; header=present', disposition: 'attachment; filename="provision-records.csv"' });
  }

  @Get('v1/citizens/me/statistics')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The calling citizen\'s exchanges counted per month (Japan time) and outcome, for a chart.',
    description: 'The same period as the records (`from` inclusive, `to` exclusive, within the 7 years before now); oldest month first; months with none omitted.',
  })
  @ApiOkResponse({ type: CitizenStatisticsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async citizenStatistics(@Req() request: FastifyRequest, @Query() query: CitizenPeriodQuery): Promise<{ months: CitizenMonth[] }> {
    const period = checkedPeriod(query);
    const subjectId = await this.auth.citizen(request);
    const store = await this.records.current();
    return { months: await store.citizenMonths(subjectId, { now: this.clock(), ...period }) };
  }

  @Get('v1/agencies/me/provision-records')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The calling agency\'s queries and provisions, newest first, paged with `after`.' })
  @ApiOkResponse({ type: AgencyRecordsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async agency(@Req() request: FastifyRequest, @Query() query: AgencyRecordsQuery): Promise<AgencyRecordsPage> {
    const { agencyId } = await this.auth.agency(request);
    const store = await this.records.current();
    return store.agencyRecords(agencyId, {
      ...(query.role === undefined ? {} : { role: query.role }),
      ...(query.from === undefined ? {} : { from: query.from }),
      ...(query.to === undefined ? {} : { to: query.to }),
      ...(query.limit === undefined ? {} : { limit: query.limit }),
      ...(query.after === undefined ? {} : { after: query.after }),
    });
  }

  @Get('v1/agencies/me/statistics')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The calling agency\'s monthly counts (Japan time) per procedure, role and outcome.' })
  @ApiOkResponse({ type: AgencyStatisticsResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async statistics(@Req() request: FastifyRequest, @Query() query: StatisticsQuery): Promise<{ counts: MonthlyCount[] }> {
    const { agencyId } = await this.auth.agency(request);
    const store = await this.records.current();
    return { counts: await store.agencyMonthlyCounts(agencyId, query.month === undefined ? {} : { month: query.month }) };
  }
}

/** The period of a citizen view as given; `to` must come after `from` (400 naming `to` otherwise). */
function checkedPeriod(query: CitizenPeriodQuery): { from?: string; to?: string } {
  if (query.from !== undefined && query.to !== undefined && Date.parse(query.to) <= Date.parse(query.from)) {
    throw new RequestValidationError([{ field: 'to', message: `must be after from (${query.from}); the period is from (inclusive) to (exclusive)` }]);
  }
  return { ...(query.from === undefined ? {} : { from: query.from }), ...(query.to === undefined ? {} : { to: query.to }) };
}
