import { ApiProperty } from '@nestjs/swagger';
import { IsIn } from 'class-validator';
import { CHANGE_REASONS, type ChangeReason } from '#numbering';
import { IsLocalGovernmentCode, IsResidentRecordCode } from '../../http/identifier.validators.js';

export class IssueIndividualNumberRequest {
  @ApiProperty({ description: '住民票コード: 11 ASCII digits.', example: '12345678901', pattern: '^[0-9]{11}$' })
  @IsResidentRecordCode()
  residentRecordCode!: string;

  @ApiProperty({
    description: '全国地方公共団体コード of the issuing municipality: 6 ASCII digits with its check digit, in the municipality list in force.',
    example: '012050',
    pattern: '^[0-9]{6}$',
  })
  @IsLocalGovernmentCode()
  municipalityCode!: string;
}

export class ChangeIndividualNumberRequest extends IssueIndividualNumberRequest {
  @ApiProperty({ enum: CHANGE_REASONS, description: 'Why the number is changed (番号変更): it leaked, the person asked, or another lawful reason.' })
  @IsIn(CHANGE_REASONS, { message: `must be one of ${CHANGE_REASONS.join(', ')}` })
  reason!: ChangeReason;
}

export class IssuedIndividualNumberResponse {
  @ApiProperty({ description: '処理通番 of the issuance: YYYYMMDD (JST) + node + daily sequence.', example: '20260401010000000001' })
  serial!: string;

  @ApiProperty({ description: 'The new 個人番号 (12 digits). Shown to the municipality once; the hub keeps it only encrypted.', example: '123456789018' })
  individualNumber!: string;

  @ApiProperty({
    description: 'The citizen\'s secret for reading their provision records (情報提供等記録): handed to the person with the number. The hub keeps only its SHA-256 and a sealed copy.',
    required: false,
  })
  citizenSecret?: string;

  @ApiProperty({ format: 'date-time', example: '2026-04-01T00:00:00.000Z' })
  issuedAt!: string;
}

export class ChangedIndividualNumberResponse {
  @ApiProperty({ example: '20260401010000000002' })
  serial!: string;

  @ApiProperty({ description: 'The replacement 個人番号.', example: '987654321093' })
  individualNumber!: string;

  @ApiProperty({ description: 'Always true: the previous number is revoked and never issued again.', enum: [true] })
  previousNumberRevoked!: true;

  @ApiProperty({ format: 'date-time', example: '2026-04-01T00:00:00.000Z' })
  changedAt!: string;
}

export function toIssuedIndividualNumberResponse(r: { serial: string; individualNumber: string; citizenSecret?: string; issuedAt: string }): IssuedIndividualNumberResponse {
  return { serial: r.serial, individualNumber: r.individualNumber, ...(r.citizenSecret === undefined ? {} : { citizenSecret: r.citizenSecret }), issuedAt: r.issuedAt };
}

export function toChangedIndividualNumberResponse(r: { serial: string; individualNumber: string; changedAt: string }): ChangedIndividualNumberResponse {
  return { serial: r.serial, individualNumber: r.individualNumber, previousNumberRevoked: true, changedAt: r.changedAt };
}
