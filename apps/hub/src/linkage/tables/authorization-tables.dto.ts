import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsObject } from 'class-validator';
import { AGENCY_KINDS } from '#linkage';
import { IsIntegerFrom, ToInteger } from '../../http/query.validators.js';
import { IsDisplayText } from '../../http/text.validators.js';

const TABLE_STATES = ['scheduled', 'in-force', 'superseded', 'withdrawn'] as const;
export const MAX_TABLE_VERSION = 2_147_483_647;

export class PublishAuthorizationTableRequest {
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description:
      'One version of the authorization table, as the files schemas/authorization/authorization-table.v*.json: version (greater than every published one), effectiveFrom (RFC 3339, not before now and not before the latest version\'s), items and rows. It must conform to schemas/authorization/authorization-table.schema.json (AUTHORIZATION_TABLE_SCHEMA_VIOLATION), name only agency kinds the hub knows and items its own catalogue defines (AUTHORIZATION_TABLE_UNKNOWN_CODE), and keep one row per requester kind, procedure and provider kind (INVALID_AUTHORIZATION_TABLE).',
  })
  @IsObject()
  table!: Record<string, unknown>;
}

export class WithdrawAuthorizationTableRequest {
  @ApiProperty({ example: 'the amending ordinance was postponed', description: 'Why (public: kept in clear in the log). Trimmed, 1–500 characters, something visible, no control characters.' })
  @IsDisplayText({ max: 500, surroundingSpace: 'refuse' })
  reason!: string;
}

export class TableVersionParam {
  @ApiProperty({ description: 'The table version, an integer ≥ 1.', example: 3 })
  @ToInteger()
  @IsIntegerFrom(1, MAX_TABLE_VERSION)
  version!: number;
}

export class DiffRowDto {
  @ApiProperty({ enum: AGENCY_KINDS }) requesterKind!: string;
  @ApiProperty({ description: 'Procedure code.' }) procedure!: string;
  @ApiProperty({ enum: AGENCY_KINDS }) providerKind!: string;
  @ApiProperty({ type: [String], description: 'Item codes of the row.' }) items!: string[];
  @ApiProperty({ type: [String], description: 'Item codes the row allows push for (format 2).' }) push!: string[];
}

export class RowChangeDto {
  @ApiProperty({ enum: AGENCY_KINDS }) requesterKind!: string;
  @ApiProperty() procedure!: string;
  @ApiProperty({ enum: AGENCY_KINDS }) providerKind!: string;
  @ApiProperty({ type: [String] }) itemsAdded!: string[];
  @ApiProperty({ type: [String] }) itemsRemoved!: string[];
  @ApiProperty({ type: [String] }) pushAdded!: string[];
  @ApiProperty({ type: [String], description: 'Push withdrawn: subscriptions to these items end when this version takes effect.' }) pushRemoved!: string[];
  @ApiProperty({ description: 'The procedure\'s name, English name or statute changed.' }) procedureChanged!: boolean;
}

export class TableDiffDto {
  @ApiPropertyOptional({ description: 'The version compared against: the one in force when the request was decided (absent when none is).' }) againstVersion?: number;
  @ApiProperty({ type: [DiffRowDto] }) rowsAdded!: DiffRowDto[];
  @ApiProperty({ type: [DiffRowDto], description: 'Rows removed: queries (and subscriptions) under them are refused once this version takes effect.' }) rowsRemoved!: DiffRowDto[];
  @ApiProperty({ type: [RowChangeDto] }) rowsChanged!: RowChangeDto[];
  @ApiProperty({ type: [String], description: 'Catalogue item codes added.' }) itemsAdded!: string[];
  @ApiProperty({ type: [String] }) itemsRemoved!: string[];
  @ApiProperty({ type: [String], description: 'Catalogue items whose names, description or replaced documents changed.' }) itemsChanged!: string[];
}

export class PublishedTableResponse {
  @ApiProperty() version!: number;
  @ApiProperty() effectiveFrom!: string;
  @ApiProperty({ description: 'SHA-256 (hex) of the table\'s RFC 8785 canonical JSON.' }) digest!: string;
  @ApiProperty({ enum: ['scheduled', 'in-force'] }) state!: string;
  @ApiPropertyOptional({ description: '処理通番 of the AuthorizationTablePublished event; absent for a validation.' }) serial?: string;
  @ApiProperty({ type: TableDiffDto }) diff!: TableDiffDto;
}

export class WithdrawnTableResponse {
  @ApiProperty() version!: number;
  @ApiProperty({ description: '処理通番 of the AuthorizationTableWithdrawn event.' }) serial!: string;
  @ApiProperty() withdrawnAt!: string;
}

export class TableVersionDto {
  @ApiProperty() version!: number;
  @ApiProperty() effectiveFrom!: string;
  @ApiProperty() digest!: string;
  @ApiProperty() publishedAt!: string;
  @ApiProperty({ enum: TABLE_STATES, description: 'scheduled (effectiveFrom not reached), in-force, superseded (a later version took effect), withdrawn (before it took effect; never in force).' }) state!: string;
  @ApiPropertyOptional() title?: string;
  @ApiPropertyOptional() withdrawnAt?: string;
  @ApiPropertyOptional() withdrawalReason?: string;
}

export class TableVersionsResponse {
  @ApiProperty({ type: [TableVersionDto], description: 'Every published version, oldest first.' }) versions!: TableVersionDto[];
  @ApiPropertyOptional({ description: 'The version in force now (absent when none is).' }) inForce?: number;
}
