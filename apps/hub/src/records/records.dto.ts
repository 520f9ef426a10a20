import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';
import { DEFAULT_AGENCY_LIMIT, MAX_AGENCY_LIMIT } from '#projections';
import { IsInstant, IsIntegerFrom, ToInteger } from '../http/query.validators.js';

const ROLES = ['requester', 'provider'] as const;

export class AgencyRecordsQuery {
  @ApiPropertyOptional({ enum: ROLES, description: 'Only the queries the agency made (requester) or answered (provider).' })
  @IsOptional()
  @IsIn(ROLES, { message: 'must be requester or provider' })
  role?: (typeof ROLES)[number];

  @ApiPropertyOptional({ description: 'RFC 3339, inclusive.', example: '2026-04-01T00:00:00+09:00' })
  @IsOptional()
  @IsInstant()
  from?: string;

  @ApiPropertyOptional({ description: 'RFC 3339, exclusive.', example: '2026-05-01T00:00:00+09:00' })
  @IsOptional()
  @IsInstant()
  to?: string;

  @ApiPropertyOptional({ description: `Records per page, 1–${MAX_AGENCY_LIMIT}.`, default: DEFAULT_AGENCY_LIMIT })
  @IsOptional()
  @ToInteger()
  @IsIntegerFrom(1, MAX_AGENCY_LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page.' })
  @IsOptional()
  // The projection's page cursor: the last record's time (epoch ms) and serial.
  @Matches(/^-?\d{1,16}\.\d{20}$/, { message: 'must be the `next` value of the previous page, unchanged' })
  after?: string;
}

export class StatisticsQuery {
  @ApiPropertyOptional({ description: 'YYYY-MM (Japan time); all months when absent.', example: '2026-04' })
  @IsOptional()
  @Matches(/^\d{4}-(0[1-9]|1[0-2])$/, { message: 'must be a month as YYYY-MM, e.g. 2026-04' })
  month?: string;
}
