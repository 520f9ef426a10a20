import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Max, Min, ValidateBy } from 'class-validator';
import {
  CORPORATE_KINDS,
  CORPORATE_TEXT,
  MAX_CORPORATE_TEXT_LENGTH,
  isCalendarDay,
  type CorporateChange,
  type CorporateKind,
  type DesignatedCorporateNumber,
} from '#numbering';
import { CORPORATE_STATUSES, DEFAULT_CORPORATE_LIMIT, MAX_CORPORATE_LIMIT, type CorporateStatus } from '#projections';
import type { ChangedCorporateNumber, ClosedCorporateNumber } from '../commands/corporate-number-record.command.js';
import { HasCorporateNumberForm, IsCorporateNumberBase } from '../../http/identifier.validators.js';
import { IsDisplayText } from '../../http/text.validators.js';

export class DesignateCorporateNumberRequest {
  @ApiProperty({ description: 'Trade name (商号又は名称), trimmed.', maxLength: MAX_CORPORATE_TEXT_LENGTH, example: '株式会社室蘭製作所' })
  @IsDisplayText(CORPORATE_TEXT)
  name!: string;

  @ApiProperty({ description: 'Location of the head office (本店又は主たる事務所の所在地), trimmed.', maxLength: MAX_CORPORATE_TEXT_LENGTH, example: '北海道室蘭市幸町1番2号' })
  @IsDisplayText(CORPORATE_TEXT)
  location!: string;

  @ApiProperty({ enum: CORPORATE_KINDS, example: 'stock-company' })
  @IsIn(CORPORATE_KINDS, { message: `must be one of ${CORPORATE_KINDS.join(', ')}` })
  kind!: CorporateKind;

  @ApiPropertyOptional({
    description: 'The 12-digit base (e.g. the commercial registry number, 会社法人等番号) the corporate number is derived from; drawn at random when absent.',
    pattern: '^[0-9]{12}$',
    example: '430001012345',
  })
  @IsOptional()
  @IsCorporateNumberBase()
  registryNumber?: string;
}

export class DesignatedCorporateNumberResponse {
  @ApiProperty({ example: '20260401010000000003' })
  serial!: string;

  @ApiProperty({ description: '法人番号: 13 digits, the first is the check digit.', example: '3430001012345' })
  corporateNumber!: string;

  @ApiProperty({ format: 'date-time', example: '2026-04-01T00:00:00.000Z' })
  designatedAt!: string;
}

export class CorporateNumberParams {
  @ApiProperty({ description: '法人番号: 13 ASCII digits.', example: '3430001012345' })
  @HasCorporateNumberForm()
  number!: string;
}

/** A calendar day YYYY-MM-DD (no 2026-02-30), the rule the decider applies. */
function IsCalendarDay(): PropertyDecorator {
  return ValidateBy({ name: 'isCalendarDay', validator: { validate: (v: unknown) => typeof v === 'string' && isCalendarDay(v), defaultMessage: () => 'must be a calendar day YYYY-MM-DD' } });
}

export class ChangeCorporateNumberRequest {
  @ApiPropertyOptional({ description: 'The new trade name (商号又は名称), trimmed. Give it, the new location, or both.', maxLength: MAX_CORPORATE_TEXT_LENGTH, example: '株式会社むろらん' })
  @IsOptional()
  @IsDisplayText(CORPORATE_TEXT)
  name?: string;

  @ApiPropertyOptional({ description: 'The new location of the head office (本店又は主たる事務所の所在地), trimmed.', maxLength: MAX_CORPORATE_TEXT_LENGTH, example: '北海道札幌市中央区北1条西2丁目' })
  @IsOptional()
  @IsDisplayText(CORPORATE_TEXT)
  location?: string;

  @ApiProperty({ description: 'Why (変更事由), free text, one line, trimmed.', maxLength: MAX_CORPORATE_TEXT_LENGTH, example: '商号変更' })
  @IsDisplayText(CORPORATE_TEXT)
  reason!: string;

  @ApiProperty({
    description: 'The day the change took effect (変更年月日), YYYY-MM-DD: not before the designation nor the latest change, not after today (Japan time).',
    format: 'date',
    example: '2026-06-01',
  })
  @IsCalendarDay()
  effectiveOn!: string;
}

export class ChangedCorporateNumberResponse {
  @ApiProperty({ example: '20260602010000000004' })
  serial!: string;

  @ApiProperty({ example: '3430001012345' })
  corporateNumber!: string;

  @ApiProperty({ description: 'The name from the change on.', example: '株式会社むろらん' })
  name!: string;

  @ApiProperty({ description: 'The location from the change on.', example: '北海道室蘭市幸町1番2号' })
  location!: string;

  @ApiProperty({ description: 'What changed.', type: [String], enum: ['name', 'location'], example: ['name'] })
  changed!: ('name' | 'location')[];

  @ApiProperty({ format: 'date', example: '2026-06-01' })
  effectiveOn!: string;

  @ApiProperty({ format: 'date-time', example: '2026-06-02T01:00:00.000Z' })
  changedAt!: string;
}

export class CloseCorporateNumberRequest {
  @ApiProperty({ description: 'Why the record is closed (登記記録の閉鎖等の事由: 清算の結了, 合併による解散, …), free text, one line, trimmed.', maxLength: MAX_CORPORATE_TEXT_LENGTH, example: '清算の結了' })
  @IsDisplayText(CORPORATE_TEXT)
  reason!: string;

  @ApiProperty({ description: 'The day of the closure (登記記録の閉鎖等年月日), YYYY-MM-DD: not before the designation nor the latest change, not after today (Japan time).', format: 'date', example: '2026-09-30' })
  @IsCalendarDay()
  closedOn!: string;
}

export class ClosedCorporateNumberResponse {
  @ApiProperty({ example: '20261001010000000005' })
  serial!: string;

  @ApiProperty({ example: '3430001012345' })
  corporateNumber!: string;

  @ApiProperty({ format: 'date', example: '2026-09-30' })
  closedOn!: string;

  @ApiProperty({ format: 'date-time', example: '2026-10-01T02:00:00.000Z' })
  closedAt!: string;
}

export class CorporateValueChangeResponse {
  @ApiProperty({ example: '株式会社室蘭製作所' })
  previous!: string;

  @ApiProperty({ example: '株式会社むろらん' })
  current!: string;
}

/** One change of name or location (商号・所在地の変更). */
export class CorporateChangeResponse {
  @ApiPropertyOptional({ type: CorporateValueChangeResponse, description: 'Present when the name changed.' })
  name?: CorporateValueChangeResponse;

  @ApiPropertyOptional({ type: CorporateValueChangeResponse, description: 'Present when the location changed.' })
  location?: CorporateValueChangeResponse;

  @ApiProperty({ example: '商号変更' })
  reason!: string;

  @ApiProperty({ format: 'date', example: '2026-06-01' })
  effectiveOn!: string;

  @ApiProperty({ format: 'date-time', description: 'When the hub recorded it.', example: '2026-06-02T01:00:00.000Z' })
  changedAt!: string;
}

export class CorporateNumberResponse {
  @ApiProperty({ example: '3430001012345' })
  corporateNumber!: string;

  @ApiProperty({ description: 'The current name.', example: '株式会社室蘭製作所' })
  name!: string;

  @ApiProperty({ description: 'The current location.', example: '北海道室蘭市幸町1番2号' })
  location!: string;

  @ApiProperty({ enum: CORPORATE_KINDS, example: 'stock-company' })
  kind!: CorporateKind;

  @ApiProperty({ format: 'date-time', example: '2026-04-01T00:00:00.000Z' })
  designatedAt!: string;

  @ApiProperty({ enum: CORPORATE_STATUSES, description: '`closed` once the record was closed (閉鎖); the number stays public.', example: 'active' })
  status!: CorporateStatus;

  @ApiProperty({ type: String, format: 'date', nullable: true, description: 'The day of the closure, or null.', example: null })
  closedOn!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When the hub recorded the closure, or null.', example: null })
  closedAt!: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'Why the record was closed, or null.', example: null })
  closeReason!: string | null;

  @ApiProperty({ type: [CorporateChangeResponse], description: 'The changes of name or location, oldest first.' })
  history!: CorporateChangeResponse[];
}

export function toDesignatedCorporateNumberResponse(r: { serial: string; corporateNumber: string; designatedAt: string }): DesignatedCorporateNumberResponse {
  return { serial: r.serial, corporateNumber: r.corporateNumber, designatedAt: r.designatedAt };
}

export function toCorporateNumberResponse(s: DesignatedCorporateNumber): CorporateNumberResponse {
  return {
    corporateNumber: s.corporateNumber,
    name: s.name,
    location: s.location,
    kind: s.kind,
    designatedAt: s.designatedAt,
    status: s.closure === null ? 'active' : 'closed',
    closedOn: s.closure?.closedOn ?? null,
    closedAt: s.closure?.closedAt ?? null,
    closeReason: s.closure?.reason ?? null,
    history: s.history.map(toChangeResponse),
  };
}

function toChangeResponse(c: CorporateChange): CorporateChangeResponse {
  return {
    ...(c.name === undefined ? {} : { name: { ...c.name } }),
    ...(c.location === undefined ? {} : { location: { ...c.location } }),
    reason: c.reason,
    effectiveOn: c.effectiveOn,
    changedAt: c.changedAt,
  };
}

export function toChangedCorporateNumberResponse(r: ChangedCorporateNumber): ChangedCorporateNumberResponse {
  return { serial: r.serial, corporateNumber: r.corporateNumber, name: r.name, location: r.location, changed: [...r.changed], effectiveOn: r.effectiveOn, changedAt: r.changedAt };
}

export function toClosedCorporateNumberResponse(r: ClosedCorporateNumber): ClosedCorporateNumberResponse {
  return { serial: r.serial, corporateNumber: r.corporateNumber, closedOn: r.closedOn, closedAt: r.closedAt };
}

const toInteger = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value);
const LIMIT = { message: `must be an integer from 1 to ${MAX_CORPORATE_LIMIT}` };

/** Criteria of the public registry: every one given must match. */
export class CorporateCriteriaQuery {
  @ApiPropertyOptional({ description: 'Part of the current or a former name; full-width and half-width forms, case and spaces do not matter (ｶﾌﾞｼｷ finds カブシキ).', example: '室蘭製作所' })
  @IsOptional()
  @IsDisplayText(CORPORATE_TEXT)
  name?: string;

  @ApiPropertyOptional({ description: 'The beginning of the location, folded the same way.', example: '北海道室蘭市' })
  @IsOptional()
  @IsDisplayText(CORPORATE_TEXT)
  location?: string;

  @ApiPropertyOptional({ enum: CORPORATE_KINDS })
  @IsOptional()
  @IsIn(CORPORATE_KINDS, { message: `must be one of ${CORPORATE_KINDS.join(', ')}` })
  kind?: CorporateKind;
}

export class CorporateSearchQuery extends CorporateCriteriaQuery {
  @ApiPropertyOptional({ description: `Corporations per page, 1–${MAX_CORPORATE_LIMIT}.`, default: DEFAULT_CORPORATE_LIMIT })
  @IsOptional()
  @Transform(toInteger)
  @IsInt(LIMIT)
  @Min(1, LIMIT)
  @Max(MAX_CORPORATE_LIMIT, LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page (results come in corporate number order).', example: '3430001012345' })
  @IsOptional()
  @HasCorporateNumberForm()
  after?: string;
}

export class CorporationResponse extends CorporateNumberResponse {
  @ApiProperty({ example: '株式会社' })
  kindLabel!: string;
}

export class CorporatePageResponse {
  @ApiProperty({ type: [CorporationResponse] })
  corporations!: CorporationResponse[];

  @ApiPropertyOptional({ description: 'Present when more corporations match: pass it as `after`.', example: '3430001012345' })
  next?: string;
}
