import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Matches, ValidateBy, type ValidationOptions } from 'class-validator';
import { NOTICE_BODY_MAX, NOTICE_TITLE_MAX } from '#linkage';

const AGENCY_CODE = /^[A-Za-z0-9_-]{21}[AQgw]$/;
// C0/C1 controls other than the line feed (and carriage return, in a body), and the line/paragraph separators.
const TITLE_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;
const BODY_CONTROL = /[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029]/u;

function textProblem(value: string, max: number, control: RegExp, what: string): string | undefined {
  if (value.trim().length === 0) return 'must not be empty or only white space';
  const length = [...value].length;
  if (length > max) return `is ${length} characters long; at most ${max} are allowed`;
  if (control.test(value)) return `must not contain control characters${what}`;
  return undefined;
}

function IsNoticeText(max: number, control: RegExp, what: string, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isNoticeText',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && textProblem(value, max, control, what) === undefined,
        defaultMessage: (args) => (typeof args?.value === 'string' ? (textProblem(args.value, max, control, what) ?? 'is not valid') : 'must be a string'),
      },
    },
    options,
  );
}

export class SendNoticeRequest {
  @ApiProperty({ description: 'The sending agency\'s own code for the person (never a My Number).' })
  @Matches(AGENCY_CODE, { message: 'must be an agency code: 22 characters of unpadded base64url (the code the hub issued to the sending agency)' })
  code!: string;

  @ApiProperty({ description: `The title, one line, at most ${NOTICE_TITLE_MAX} characters.`, example: '児童手当の現況届のご案内' })
  @IsNoticeText(NOTICE_TITLE_MAX, TITLE_CONTROL, ' or line breaks')
  title!: string;

  @ApiProperty({ description: `The text, line breaks allowed, at most ${NOTICE_BODY_MAX} characters.`, example: '6月30日までに現況届をご提出ください。' })
  @IsNoticeText(NOTICE_BODY_MAX, BODY_CONTROL, ' other than line breaks')
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
}

export class CitizenNoticesResponse {
  @ApiProperty({ type: [CitizenNoticeResponse] }) notices!: CitizenNoticeResponse[];
  @ApiPropertyOptional({ description: 'Present when older notices remain: pass it as `before`.' }) next?: string;
}
