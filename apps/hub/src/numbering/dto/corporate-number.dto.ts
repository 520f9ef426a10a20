import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { CORPORATE_KINDS, CORPORATE_TEXT, MAX_CORPORATE_TEXT_LENGTH, type CorporateKind, type DesignatedCorporateNumber } from '#numbering';
import { DEFAULT_CORPORATE_LIMIT, MAX_CORPORATE_LIMIT } from '#projections';
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

export class CorporateNumberResponse {
  @ApiProperty({ example: '3430001012345' })
  corporateNumber!: string;

  @ApiProperty({ example: '株式会社室蘭製作所' })
  name!: string;

  @ApiProperty({ example: '北海道室蘭市幸町1番2号' })
  location!: string;

  @ApiProperty({ enum: CORPORATE_KINDS, example: 'stock-company' })
  kind!: CorporateKind;

  @ApiProperty({ format: 'date-time', example: '2026-04-01T00:00:00.000Z' })
  designatedAt!: string;
}

export function toDesignatedCorporateNumberResponse(r: { serial: string; corporateNumber: string; designatedAt: string }): DesignatedCorporateNumberResponse {
  return { serial: r.serial, corporateNumber: r.corporateNumber, designatedAt: r.designatedAt };
}

export function toCorporateNumberResponse(s: DesignatedCorporateNumber): CorporateNumberResponse {
  return { corporateNumber: s.corporateNumber, name: s.name, location: s.location, kind: s.kind, designatedAt: s.designatedAt };
}

const toInteger = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value);
const LIMIT = { message: `must be an integer from 1 to ${MAX_CORPORATE_LIMIT}` };

/** Criteria of the public registry: every one given must match. */
export class CorporateCriteriaQuery {
  @ApiPropertyOptional({ description: 'Part of the name; full-width and half-width forms, case and spaces do not matter (ｶﾌﾞｼｷ finds カブシキ).', example: '室蘭製作所' })
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
