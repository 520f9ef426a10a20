import { Controller, Get, Inject, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { AgencyRecordsPage, CitizenRecord, MonthlyCount } from '#projections';
import { RequestValidationError } from '../http/hub-problem.js';
import { ApiProblems, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { CLOCK, type Clock } from '../ledger/tokens.js';
import { Authenticator } from '../linkage/authenticator.js';
import { ProvisionRecords } from './provision-records.service.js';

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2})$/;
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

@ApiTags('provision records')
@Controller()
export class RecordsController {
  constructor(
    private readonly auth: Authenticator,
    private readonly records: ProvisionRecords,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get('v1/citizens/me/provision-records')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The calling citizen\'s provision records (情報提供等記録): when, who asked, from whom, what and why, for 7 years.',
    description: 'Authenticated with the citizen secret issued with the individual number. Names agencies, procedures and items; never codes or ids.',
  })
  @ApiProblems('UNAUTHENTICATED', ...COMMON_PROBLEMS)
  async citizen(@Req() request: FastifyRequest): Promise<{ records: CitizenRecord[] }> {
    const subjectId = await this.auth.citizen(request);
    const store = await this.records.current();
    return { records: await store.citizenRecords(subjectId, { now: this.clock().toISOString() }) };
  }

  @Get('v1/agencies/me/provision-records')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The calling agency\'s queries and provisions, newest first, paged with `after`.' })
  @ApiQuery({ name: 'role', required: false, enum: ['requester', 'provider'] })
  @ApiQuery({ name: 'from', required: false, description: 'RFC 3339, inclusive' })
  @ApiQuery({ name: 'to', required: false, description: 'RFC 3339, exclusive' })
  @ApiQuery({ name: 'limit', required: false, description: '1–1000, default 100' })
  @ApiQuery({ name: 'after', required: false, description: 'the `next` of the previous page' })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async agency(
    @Req() request: FastifyRequest,
    @Query('role') role?: string,
    @Query('from') from?: string,
    @Query('to') to?: string,
    @Query('limit') limit?: string,
    @Query('after') after?: string,
  ): Promise<AgencyRecordsPage> {
    const { agencyId } = await this.auth.agency(request);
    const errors = [
      ...(role !== undefined && role !== 'requester' && role !== 'provider' ? [{ field: 'role', message: 'must be requester or provider' }] : []),
      ...(from !== undefined && !INSTANT.test(from) ? [{ field: 'from', message: 'must be an RFC 3339 instant' }] : []),
      ...(to !== undefined && !INSTANT.test(to) ? [{ field: 'to', message: 'must be an RFC 3339 instant' }] : []),
      ...(limit !== undefined && !(/^\d{1,4}$/.test(limit) && Number(limit) >= 1 && Number(limit) <= 1000) ? [{ field: 'limit', message: 'must be an integer from 1 to 1000' }] : []),
      ...(after !== undefined && !/^[\x21-\x7e]{1,200}$/.test(after) ? [{ field: 'after', message: 'must be the next value of the previous page' }] : []),
    ];
    if (errors.length > 0) throw new RequestValidationError(errors);
    const store = await this.records.current();
    return store.agencyRecords(agencyId, {
      ...(role === undefined ? {} : { role: role as 'requester' | 'provider' }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(limit === undefined ? {} : { limit: Number(limit) }),
      ...(after === undefined ? {} : { after }),
    });
  }

  @Get('v1/agencies/me/statistics')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The calling agency\'s monthly counts (Japan time) per procedure, role and outcome.' })
  @ApiQuery({ name: 'month', required: false, description: 'YYYY-MM; all months when absent' })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async statistics(@Req() request: FastifyRequest, @Query('month') month?: string): Promise<{ counts: MonthlyCount[] }> {
    const { agencyId } = await this.auth.agency(request);
    if (month !== undefined && !MONTH.test(month)) throw new RequestValidationError([{ field: 'month', message: 'must be YYYY-MM' }]);
    const store = await this.records.current();
    return { counts: await store.agencyMonthlyCounts(agencyId, month === undefined ? {} : { month }) };
  }
}
