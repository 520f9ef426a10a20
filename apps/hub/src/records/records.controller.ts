import { Controller, Get, Inject, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { AgencyRecordsPage, CitizenRecord, MonthlyCount } from '#projections';
import { ApiProblems, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { CLOCK, type Clock } from '../ledger/tokens.js';
import { Authenticator } from '../linkage/authenticator.js';
import { ProvisionRecords } from './provision-records.service.js';
import { AgencyRecordsQuery, StatisticsQuery } from './records.dto.js';

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
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async statistics(@Req() request: FastifyRequest, @Query() query: StatisticsQuery): Promise<{ counts: MonthlyCount[] }> {
    const { agencyId } = await this.auth.agency(request);
    const store = await this.records.current();
    return { counts: await store.agencyMonthlyCounts(agencyId, query.month === undefined ? {} : { month: query.month }) };
  }
}
