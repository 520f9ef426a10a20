import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsOptional, Matches } from 'class-validator';
import { NOTICE_BATCH_MAX_CODES, NOTICE_BODY_MAX, NOTICE_BODY_TEXT, NOTICE_TITLE_MAX, NOTICE_TITLE_TEXT } from '#linkage';
import { IsIntegerFrom, ToInteger } from '../http/query.validators.js';
import { IsDisplayText } from '../http/text.validators.js';
import { DEFAULT_NOTICE_BATCH_LIMIT, MAX_NOTICE_BATCH_LIMIT } from './notice-batch.store.js';

const AGENCY_CODE = /^[A-Za-z0-9_-]{21}[AQgw]$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class StartNoticeBatchRequest {
  @ApiProperty({ description: `The title, one line, at most ${NOTICE_TITLE_MAX} characters.`, example: '定額減税補足給付金のお知らせ' })
  @IsDisplayText(NOTICE_TITLE_TEXT)
  title!: string;

  @ApiProperty({ description: `The text, line breaks allowed, at most ${NOTICE_BODY_MAX} characters.`, example: '対象の方には7月以降に通知書をお送りします。' })
  @IsDisplayText(NOTICE_BODY_TEXT)
  body!: string;

  @ApiPropertyOptional({ enum: ['all'], description: 'Everyone holding a code issued to the calling agency (when the batch is accepted). Give this or `codes`, not both.' })
  @IsOptional()
  @IsIn(['all'], { message: 'audience must be "all"; to name people, give codes instead' })
  audience?: 'all';

  @ApiPropertyOptional({
    type: [String],
    maxItems: NOTICE_BATCH_MAX_CODES,
    description: `The calling agency's own codes of the recipients, 1–${NOTICE_BATCH_MAX_CODES.toLocaleString('en')}, each once. A code that names nobody at the agency is counted failed (UNKNOWN_CODE), not refused. A list of 10,000 codes is ≈ 250 KB: the hub's HUB_BODY_LIMIT_BYTES must allow it (413 PAYLOAD_TOO_LARGE otherwise).`,
  })
  @IsOptional()
  @IsArray({ message: 'codes must be an array of agency codes' })
  @ArrayMinSize(1, { message: 'codes must list at least one code' })
  @ArrayMaxSize(NOTICE_BATCH_MAX_CODES, { message: `codes lists more than ${NOTICE_BATCH_MAX_CODES} codes; at most ${NOTICE_BATCH_MAX_CODES} per request (send several batches, or audience "all")` })
  @Matches(AGENCY_CODE, { each: true, message: 'each code must be an agency code: 22 characters of unpadded base64url (the code the hub issued to the sending agency)' })
  codes?: string[];
}

export class StartedNoticeBatchResponse {
  @ApiProperty({ format: 'uuid' }) batchId!: string;
  @ApiProperty({ description: '処理通番 of NoticeBatchStarted.', example: '20260401010000000007' }) serial!: string;
  @ApiProperty({ description: 'Recipients in the batch.', example: 1000000 }) total!: number;
}

export class NoticeBatchResponse {
  @ApiProperty({ format: 'uuid' }) batchId!: string;
  @ApiProperty({ enum: ['running', 'completed'] }) status!: 'running' | 'completed';
  @ApiProperty({ enum: ['all', 'codes'] }) audience!: 'all' | 'codes';
  @ApiProperty({ description: 'Recipients in the batch.' }) total!: number;
  @ApiProperty({ description: 'Recipients whose notice is recorded (NoticeSent).' }) delivered!: number;
  @ApiProperty({ description: 'Recipients not handled yet: total − delivered − failed.' }) pending!: number;
  @ApiProperty({ description: 'Recipients who got no notice (NoticeUndelivered: an unknown code, a person erased since).' }) failed!: number;
  @ApiProperty({ description: '処理通番 of NoticeBatchStarted.' }) serial!: string;
  @ApiProperty({ format: 'date-time' }) startedAt!: string;
  @ApiPropertyOptional({ format: 'date-time' }) completedAt?: string;
}

export class NoticeBatchesResponse {
  @ApiProperty({ type: [NoticeBatchResponse] }) batches!: NoticeBatchResponse[];
  @ApiPropertyOptional({ description: 'Present when older batches remain: pass it as `after`.' }) next?: string;
}

export class NoticeBatchIdParam {
  @ApiProperty({ format: 'uuid', description: 'The batchId POST /v1/notice-batches answered.' })
  @Matches(UUID, { message: 'must be a batch id: a UUID in lowercase hex, as POST /v1/notice-batches answers it' })
  batchId!: string;
}

export class NoticeBatchesQuery {
  @ApiPropertyOptional({ description: `Batches per page, 1–${MAX_NOTICE_BATCH_LIMIT}, newest first.`, default: DEFAULT_NOTICE_BATCH_LIMIT })
  @IsOptional()
  @ToInteger()
  @IsIntegerFrom(1, MAX_NOTICE_BATCH_LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page.' })
  @IsOptional()
  @Matches(/^\d{1,15}$/, { message: 'must be the `next` value of the previous page, unchanged' })
  after?: string;
}
