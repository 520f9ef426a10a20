import { Body, Controller, Get, HttpCode, Post, Query, UseGuards } from '@nestjs/common';
import { StaffGuard } from '../http/staff.guard.js';
import { AgencyStore, type ProvisionRecord } from '../store/agency-store.js';
import { AcquireCodeRequest, BulkQueryRequest, NoticeRequest, QueryRequest, RecordsQuery } from './requester.dto.js';
import { RequesterService } from './requester.service.js';

/** The agency's staff: queries through the hub, code acquisition, notices, and the agency's own provision record. */
@Controller('v1')
@UseGuards(StaffGuard)
export class RequesterController {
  constructor(
    private readonly requester: RequesterService,
    private readonly store: AgencyStore,
  ) {}

  @Post('queries')
  @HttpCode(200)
  query(@Body() body: QueryRequest) {
    return this.requester.query({ ...body, encrypt: body.encrypt ?? true });
  }

  @Post('queries/bulk')
  @HttpCode(200)
  bulk(@Body() body: BulkQueryRequest) {
    return this.requester.bulk({ ...body, encrypt: body.encrypt ?? true });
  }

  @Post('agency-codes')
  @HttpCode(200)
  acquire(@Body() body: AcquireCodeRequest) {
    return this.requester.acquire(body);
  }

  @Post('notices')
  @HttpCode(201)
  notice(@Body() body: NoticeRequest) {
    return this.requester.notice(body);
  }

  @Get('provision-records')
  records(@Query() query: RecordsQuery): { records: ProvisionRecord[]; nextBefore: number | null } {
    const limit = query.limit ?? 50;
    const records = this.store.records({ limit, before: query.before, role: query.role });
    return { records, nextBefore: records.length === limit ? records[records.length - 1]!.id : null };
  }
}
