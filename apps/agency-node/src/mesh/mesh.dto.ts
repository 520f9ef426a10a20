import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsInt, IsOptional, Matches, Max, Min, ValidateBy } from 'class-validator';
import { isInstant } from '#linkage';
import { IsAgencyIdField, IsLocalId, IsTableCode } from '../requester/requester.dto.js';

/** POST /v1/subscriptions (staff): subscribe to a provider's items for one of the agency's people. */
export class SubscribeRequest {
  @IsLocalId()
  localId!: string;

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
  @ValidateBy({ name: 'isInstant', validator: { validate: isInstant, defaultMessage: () => 'must be an RFC 3339 date-time with a zone (e.g. 2027-12-05T00:00:00Z)' } })
  expiresAt?: string;
}

/** GET /v1/subscriptions (staff): a page of the agency's subscriptions, as the hub keeps them. */
export class SubscriptionsQuery {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;

  @IsOptional()
  @Matches(/^[\x21-\x7e]{1,200}$/, { message: 'must be the "next" of the previous page' })
  after?: string;
}

/** GET /v1/pushes (staff): the pushes received, newest first. */
export class PushesQuery {
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
}
