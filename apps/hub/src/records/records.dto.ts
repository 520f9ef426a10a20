import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';
import { AGENCY_KINDS } from '#linkage';
import { DEFAULT_AGENCY_LIMIT, DEFAULT_CITIZEN_LIMIT, MAX_AGENCY_LIMIT, MAX_CITIZEN_LIMIT } from '#projections';
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

const AGENCY_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$/;
/** delivered and abandoned end a push (kind 'push'); the others end a query or a self-information request. */
const OUTCOMES = ['pending', 'answered', 'refused-by-provider', 'denied', 'failed', 'voided', 'delivered', 'abandoned'] as const;
const KINDS = ['query', 'self-information', 'push'] as const;

/** The filters of a citizen's provision records (the list, the CSV and the statistics share from and to). */
export class CitizenPeriodQuery {
  @ApiPropertyOptional({ description: 'RFC 3339, inclusive. Never before the 7 years the records are shown for.', example: '2026-04-01T00:00:00+09:00' })
  @IsOptional()
  @IsInstant()
  from?: string;

  @ApiPropertyOptional({ description: 'RFC 3339, exclusive, after `from`. Never after now.', example: '2026-05-01T00:00:00+09:00' })
  @IsOptional()
  @IsInstant()
  to?: string;
}

export class CitizenRecordsCsvQuery extends CitizenPeriodQuery {
  @ApiPropertyOptional({ description: 'Only the exchanges in which this agency asked or provided (its registry id).', example: 'muroran-city' })
  @IsOptional()
  @Matches(AGENCY_ID, { message: 'must be an agency id: 1-64 lowercase letters, digits and inner hyphens, e.g. muroran-city' })
  agencyId?: string;
}

export class CitizenRecordsQuery extends CitizenRecordsCsvQuery {
  @ApiPropertyOptional({ description: `Records per page, 1–${MAX_CITIZEN_LIMIT}.`, default: DEFAULT_CITIZEN_LIMIT })
  @IsOptional()
  @ToInteger()
  @IsIntegerFrom(1, MAX_CITIZEN_LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page (same filters).' })
  @IsOptional()
  @Matches(/^-?\d{1,16}\.\d{20}$/, { message: 'must be the `next` value of the previous page, unchanged' })
  after?: string;
}

export class CitizenAgencyResponse {
  @ApiProperty({ example: 'muroran-city' }) agencyId!: string;
  @ApiProperty({ type: String, nullable: true, example: '室蘭市', description: 'Its registered name at the time; null when it was not registered.' }) name!: string | null;
}

export class NamedCodeResponse {
  @ApiProperty({ example: 'local-tax' }) code!: string;
  @ApiProperty({ type: String, nullable: true, example: '地方税関係情報', description: 'Its name in the table of the time; null when that table does not name it.' }) name!: string | null;
}

export class CitizenRecordResponse {
  @ApiProperty({ description: '処理通番', example: '20260401010000000007' }) serial!: string;
  @ApiProperty({ format: 'date-time', description: 'When the exchange was asked for (UTC).' }) at!: string;
  @ApiProperty({ example: '2026-04-01', description: 'Its date in Japan time.' }) date!: string;
  @ApiProperty({ example: '09:00:00', description: 'Its time of day in Japan time.' }) time!: string;
  @ApiProperty({
    enum: KINDS,
    description: 'An agency\'s query, the person\'s own self-information request (自己情報表示), or a push (更新のお知らせ: the hub told a subscribing agency that the provider\'s copy of an item changed; no data).',
  })
  kind!: (typeof KINDS)[number];
  @ApiProperty({ type: CitizenAgencyResponse, nullable: true, description: 'Who asked (for a push: the subscriber told); null for the person\'s own self-information request.' }) requester!: CitizenAgencyResponse | null;
  @ApiProperty({ type: CitizenAgencyResponse, description: 'From whom (for a push: the agency whose copy changed).' }) provider!: CitizenAgencyResponse;
  @ApiProperty({ type: NamedCodeResponse, description: 'Why: the procedure (事務).' }) procedure!: NamedCodeResponse;
  @ApiProperty({ type: [NamedCodeResponse], description: 'What: the information items.' }) items!: NamedCodeResponse[];
  @ApiProperty({ enum: OUTCOMES }) outcome!: (typeof OUTCOMES)[number];
}

export class CitizenRecordsResponse {
  @ApiProperty({ type: [CitizenRecordResponse], description: 'Newest first.' }) records!: CitizenRecordResponse[];
  @ApiPropertyOptional({ description: 'Present when older records remain: pass it as `after` with the same filters.' }) next?: string;
}

export class CitizenMonthResponse {
  @ApiProperty({ example: '2026-04', description: 'YYYY-MM, Japan time.' }) month!: string;
  @ApiProperty({ example: 3 }) total!: number;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, example: { answered: 2, denied: 1 }, description: `Counts per outcome (${OUTCOMES.join(', ')}); outcomes with none omitted.` })
  byOutcome!: Record<string, number>;
}

export class CitizenStatisticsResponse {
  @ApiProperty({ type: [CitizenMonthResponse], description: 'Oldest month first; months with no exchange omitted.' }) months!: CitizenMonthResponse[];
}

export class AgencyRefResponse {
  @ApiProperty({ example: 'muroran-city' }) id!: string;
  @ApiProperty({ type: String, enum: AGENCY_KINDS, nullable: true, example: 'municipality', description: 'Its kind as registered at the time; null when it was not registered.' }) kind!: string | null;
  @ApiProperty({ type: String, nullable: true, example: '室蘭市', description: 'Its registered name at the time; null when it was not registered.' }) name!: string | null;
}

export class QueryBatchResponse {
  @ApiProperty() batchId!: string;
  @ApiProperty({ description: '0-based position of this person in the bulk request.' }) index!: number;
  @ApiProperty() size!: number;
}

export class AgencyRecordResponse {
  @ApiProperty({ description: '処理通番', example: '20260401010000000007' }) serial!: string;
  @ApiProperty() queryId!: string;
  @ApiProperty({ enum: KINDS, description: 'For a push, requester is the subscriber told and provider the agency whose copy changed; queryId is the pushId.' }) kind!: (typeof KINDS)[number];
  @ApiProperty({ enum: ROLES, description: 'Whether the calling agency asked (requester) or answered (provider).' }) role!: (typeof ROLES)[number];
  @ApiProperty({ type: AgencyRefResponse, nullable: true, description: 'Who asked; null for a person\'s own self-information request.' }) requester!: AgencyRefResponse | null;
  @ApiProperty({ type: AgencyRefResponse }) provider!: AgencyRefResponse;
  @ApiProperty({ type: NamedCodeResponse, description: 'The procedure (事務).' }) procedure!: NamedCodeResponse;
  @ApiProperty({ type: [NamedCodeResponse], description: 'The information items.' }) items!: NamedCodeResponse[];
  @ApiProperty({ type: Number, nullable: true, description: 'The authorization table version the names come from.' }) tableVersion!: number | null;
  @ApiProperty({ type: QueryBatchResponse, nullable: true, description: 'Its place in a bulk query; null for a single query.' }) batch!: QueryBatchResponse | null;
  @ApiProperty({ enum: OUTCOMES }) status!: (typeof OUTCOMES)[number];
  @ApiProperty({ type: String, nullable: true, description: 'The denial, refusal, failure or void reason.' }) reason!: string | null;
  @ApiProperty({ format: 'date-time' }) requestedAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) endedAt!: string | null;
}

export class AgencyRecordsResponse {
  @ApiProperty({ type: [AgencyRecordResponse], description: 'Newest first.' }) records!: AgencyRecordResponse[];
  @ApiPropertyOptional({ description: 'Present when older records remain: pass it as `after` with the same filters.' }) next?: string;
}

export class MonthlyCountResponse {
  @ApiProperty({ example: '2026-04', description: 'YYYY-MM, Japan time.' }) month!: string;
  @ApiProperty({ type: NamedCodeResponse }) procedure!: NamedCodeResponse;
  @ApiProperty({ enum: ROLES }) role!: (typeof ROLES)[number];
  @ApiProperty({ enum: OUTCOMES }) status!: (typeof OUTCOMES)[number];
  @ApiProperty({ example: 3 }) count!: number;
}

export class AgencyStatisticsResponse {
  @ApiProperty({ type: [MonthlyCountResponse] }) counts!: MonthlyCountResponse[];
}
