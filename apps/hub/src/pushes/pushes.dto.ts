import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsOptional, Matches } from 'class-validator';
import { MAX_UPDATE_ITEMS } from '#linkage';
import { IsListedOnce } from '../http/array.validators.js';
import { IsInstant, IsIntegerFrom, ToInteger } from '../http/query.validators.js';
import { DEFAULT_PUSH_LIMIT, MAX_PUSH_LIMIT, PUSH_STATUSES, type PushStatus } from './push-store.js';

const AGENCY_CODE = /^[A-Za-z0-9_-]{21}[AQgw]$/;
const TABLE_CODE = /^(?=.{1,64}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const CURSOR = /^\d{1,16}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ROLES = ['subscriber', 'provider'] as const;

export class ReportUpdateRequest {
  @ApiProperty({ description: 'The REPORTING (providing) agency\'s own code for the person (never a My Number).' })
  @Matches(AGENCY_CODE, { message: 'must be an agency code: 22 characters of unpadded base64url (the code the hub issued to the reporting agency)' })
  code!: string;

  @ApiProperty({ description: `The items whose copy (副本) changed (1–${MAX_UPDATE_ITEMS}, each once): items the reporting agency's kind provides in the table in force. No value: subscribers fetch it by an ordinary query.`, example: ['local-tax'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_UPDATE_ITEMS)
  @IsListedOnce()
  @Matches(TABLE_CODE, { each: true, message: 'each item must be an item code of the authorization table, e.g. "local-tax"' })
  itemCodes!: string[];

  @ApiPropertyOptional({ description: 'When the copy changed (RFC 3339); the report\'s time when absent.', example: '2026-06-01T09:00:00+09:00' })
  @IsOptional()
  @IsInstant()
  updatedAt?: string;
}

export class ReportedUpdateResponse {
  @ApiProperty({ format: 'uuid' }) updateId!: string;
  @ApiProperty({ description: '処理通番 of the CopyUpdated event.', example: '20260601010000000007' }) serial!: string;
  @ApiProperty({ description: 'Pushes issued: one per active subscription to an item reported (each a PushIssued with its own serial).', example: 1 }) subscribers!: number;
  @ApiProperty({ format: 'date-time' }) reportedAt!: string;
}

export class PushesQuery {
  @ApiPropertyOptional({ enum: ROLES, description: 'Only the pushes the agency received (subscriber) or caused by its reports (provider); both when absent.' })
  @IsOptional()
  @IsIn(ROLES, { message: 'must be subscriber or provider' })
  role?: (typeof ROLES)[number];

  @ApiPropertyOptional({ description: `Pushes per page, 1–${MAX_PUSH_LIMIT}.`, default: DEFAULT_PUSH_LIMIT })
  @IsOptional()
  @ToInteger()
  @IsIntegerFrom(1, MAX_PUSH_LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page (same filters).' })
  @IsOptional()
  @Matches(CURSOR, { message: 'must be the `next` value of the previous page, unchanged' })
  after?: string;
}

export class CitizenPushesQuery {
  @ApiPropertyOptional({ description: `Pushes per page, 1–${MAX_PUSH_LIMIT}.`, default: DEFAULT_PUSH_LIMIT })
  @IsOptional()
  @ToInteger()
  @IsIntegerFrom(1, MAX_PUSH_LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page.' })
  @IsOptional()
  @Matches(CURSOR, { message: 'must be the `next` value of the previous page, unchanged' })
  after?: string;
}

export class PushAgencyResponse {
  @ApiProperty({ example: 'jpn-pension-service' }) agencyId!: string;
  @ApiProperty({ type: String, nullable: true, example: '日本年金機構', description: 'Its registered name; null when not registered.' }) name!: string | null;
}

export class PushRecordResponse {
  @ApiProperty({ format: 'uuid' }) pushId!: string;
  @ApiProperty({ description: '処理通番 of the PushIssued event.', example: '20260601010000000008' }) serial!: string;
  @ApiProperty({ format: 'uuid', description: 'The report (CopyUpdated) the push comes from.' }) updateId!: string;
  @ApiProperty({ type: PushAgencyResponse, description: 'Who was pushed (the subscriber).' }) subscriber!: PushAgencyResponse;
  @ApiProperty({ type: PushAgencyResponse, description: 'Whose copy changed (the provider).' }) provider!: PushAgencyResponse;
  @ApiProperty({ example: 'pension-award-claim' }) procedureCode!: string;
  @ApiProperty({ example: 'local-tax' }) itemCode!: string;
  @ApiProperty({ enum: PUSH_STATUSES, description: 'pending (being delivered), delivered (the subscriber\'s server answered 2xx: PushDelivered) or abandoned (the deadline passed: PushAbandoned).' }) status!: PushStatus;
  @ApiProperty({ description: 'Tries so far (recorded with the end).' }) attempts!: number;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ format: 'date-time' }) issuedAt!: string;
  @ApiProperty({ format: 'date-time', description: 'When an undelivered push is abandoned.' }) deliverBy!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) endedAt!: string | null;
  @ApiProperty({ type: String, nullable: true, description: '処理通番 of the PushDelivered or PushAbandoned event.' }) endSerial!: string | null;
}

export class PushRecordsResponse {
  @ApiProperty({ type: [PushRecordResponse], description: 'Newest first.' }) pushes!: PushRecordResponse[];
  @ApiPropertyOptional({ description: 'Present when older pushes remain: pass it as `after`.' }) next?: string;
}
