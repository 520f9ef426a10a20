import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, ValidateBy } from 'class-validator';
import { isAgencyId, isTableCode } from '#linkage';
import { isLocalId } from '../store/agency-store.js';

const LOCAL_ID_MESSAGE = "must be this agency's own id for the person (1-64 letters, digits, '.', '_' or '-'; never an individual number)";

export function IsLocalId(each = false) {
  return ValidateBy({ name: 'isLocalId', validator: { validate: isLocalId, defaultMessage: () => LOCAL_ID_MESSAGE } }, { each });
}
export function IsAgencyIdField() {
  return ValidateBy({ name: 'isAgencyId', validator: { validate: isAgencyId, defaultMessage: () => 'must be an agency id (2-64 lowercase letters, digits or hyphens, e.g. muroran-city)' } });
}
export function IsTableCode(each = false) {
  return ValidateBy({ name: 'isTableCode', validator: { validate: isTableCode, defaultMessage: () => `must be ${each ? 'item codes' : 'a procedure code'} in kebab-case (e.g. ${each ? 'local-tax' : 'pension-award-claim'})` } }, { each });
}

class QueryFields {
  @IsAgencyIdField()
  providerAgencyId!: string;

  @IsTableCode()
  procedureCode!: string;

  @ArrayMinSize(1)
  @ArrayMaxSize(64)
  @ArrayUnique()
  @IsTableCode(true)
  itemCodes!: string[];

  @IsOptional()
  @IsBoolean()
  encrypt?: boolean;
}

export class QueryRequest extends QueryFields {
  @IsLocalId()
  localId!: string;
}

export class BulkQueryRequest extends QueryFields {
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsLocalId(true)
  localIds!: string[];
}

export class AcquireCodeRequest {
  @IsLocalId()
  localId!: string;

  @Matches(/^\d{12}$/, { message: 'must be the 12 digits of the individual number' })
  individualNumber!: string;

  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: 'must be 1-64 letters, digits, ".", "_" or "-" (the acquisition number of this agency\'s procedure)' })
  acquisitionNumber!: string;
}

/** A notice (お知らせ) for one of the agency's people; the hub checks title and body in full. */
export class NoticeRequest {
  @IsLocalId()
  localId!: string;

  @IsString()
  title!: string;

  @IsString()
  body!: string;
}

export class RecordsQuery {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  before?: number;

  @IsOptional()
  @IsIn(['provided', 'requested'])
  role?: 'provided' | 'requested';
}
