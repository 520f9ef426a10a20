import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, Matches } from 'class-validator';
import { NOTICE_BODY_MAX, NOTICE_BODY_TEXT, NOTICE_TITLE_MAX, NOTICE_TITLE_TEXT } from '#linkage';
import { DEFAULT_NOTICE_LIMIT, MAX_NOTICE_LIMIT } from '#projections';
import { IsIntegerFrom, ToInteger } from '../http/query.validators.js';
import { IsDisplayText } from '../http/text.validators.js';

const AGENCY_CODE = /^[A-Za-z0-9_-]{21}[AQgw]$/;

export class SendNoticeRequest {
  @ApiProperty({ description: 'The sending agency\'s own code for the person (never a My Number).' })
  @Matches(AGENCY_CODE, { message: 'must be an agency code: 22 characters of unpadded base64url (the code the hub issued to the sending agency)' })
  code!: string;

  @ApiProperty({ description: `The title, one line, at most ${NOTICE_TITLE_MAX} characters.`, example: '児童手当の現況届のご案内' })
  @IsDisplayText(NOTICE_TITLE_TEXT)
  title!: string;

  @ApiProperty({ description: `The text, line breaks allowed, at most ${NOTICE_BODY_MAX} characters.`, example: '6月30日までに現況届をご提出ください。' })
  @IsDisplayText(NOTICE_BODY_TEXT)
  body!: string;
}

export class SentNoticeResponse {
  @ApiProperty({ format: 'uuid' }) noticeId!: string;
  @ApiProperty({ description: '処理通番 of the NoticeSent event.', example: '20260401010000000007' }) serial!: string;
  @ApiProperty({ format: 'date-time' }) sentAt!: string;
}

export class NoticeSenderResponse {
  @ApiProperty({ example: 'muroran-city' }) agencyId!: string;
  @ApiProperty({ example: '室蘭市' }) name!: string;
}

export class CitizenNoticeResponse {
  @ApiProperty({ format: 'uuid' }) noticeId!: string;
  @ApiProperty({ example: '20260401010000000007' }) serial!: string;
  @ApiProperty({ type: NoticeSenderResponse }) from!: NoticeSenderResponse;
  @ApiProperty() title!: string;
  @ApiProperty() body!: string;
  @ApiProperty({ format: 'date-time' }) sentAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'The first time the person read it (POST …/read); null while unread.' }) readAt!: string | null;
}

export class CitizenNoticesResponse {
  @ApiProperty({ type: [CitizenNoticeResponse] }) notices!: CitizenNoticeResponse[];
  @ApiPropertyOptional({ description: 'Present when older notices remain: pass it as `before`.' }) next?: string;
  @ApiProperty({ example: 2, description: 'How many of all the person\'s notices (not only this page\'s) are unread.' }) unread!: number;
}

export class NoticeIdParam {
  @ApiProperty({ format: 'uuid', description: 'The noticeId of one of the caller\'s notices.' })
  @Matches(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, { message: 'must be a notice id: a UUID in lowercase hex, as GET /v1/citizens/me/notices gives it' })
  noticeId!: string;
}

export class NoticeReadResponse {
  @ApiProperty({ format: 'uuid' }) noticeId!: string;
  @ApiProperty({ format: 'date-time', description: 'The first time the person read it (kept when read again).' }) readAt!: string;
}

export class CitizenNoticesQuery {
  @ApiPropertyOptional({ description: `Notices per page, 1–${MAX_NOTICE_LIMIT}.`, default: DEFAULT_NOTICE_LIMIT })
  @IsOptional()
  @ToInteger()
  @IsIntegerFrom(1, MAX_NOTICE_LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page.' })
  @IsOptional()
  @Matches(/^\d{1,15}$/, { message: 'must be the `next` value of the previous page, unchanged' })
  before?: string;
}
