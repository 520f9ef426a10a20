import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { SUBSCRIPTION_MAX_ITEMS } from '#linkage';
import { IsListedOnce } from '../http/array.validators.js';
import { IsInstant, IsIntegerFrom, ToInteger } from '../http/query.validators.js';
import { MAX_TABLE_VERSION } from '../linkage/queries/query.dto.js';
import { DEFAULT_SUBSCRIPTION_LIMIT, MAX_SUBSCRIPTION_LIMIT } from './subscription-index.js';

const AGENCY_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$/;
const AGENCY_CODE = /^[A-Za-z0-9_-]{21}[AQgw]$/;
const TABLE_CODE = /^(?=.{1,64}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TABLE_VERSION = { message: `must be an integer from 1 to ${MAX_TABLE_VERSION}: the version of the authorization table the subscription relies on` };
const AGENCY_ID_MESSAGE = 'must be an agency id: 2–64 lowercase letters, digits or hyphens';

export class SubscribeRequestBody {
  @ApiProperty({ description: 'The subscribing agency\'s own code for the person (never a My Number).' })
  @Matches(AGENCY_CODE, { message: 'must be an agency code: 22 characters of unpadded base64url (the code the hub issued to the subscribing agency)' })
  code!: string;

  @ApiProperty({ description: 'The agency whose copies of the items are watched (the provider of the table row).', example: 'muroran-city' })
  @Matches(AGENCY_ID, { message: AGENCY_ID_MESSAGE })
  providerAgencyId!: string;

  @ApiProperty({ description: 'The procedure (事務) the subscription serves, from the authorization table.', example: 'pension-award-claim' })
  @Matches(TABLE_CODE, { message: 'must be a procedure code of the authorization table, e.g. "pension-award-claim"' })
  procedureCode!: string;

  @ApiProperty({ description: `Items subscribed to (1–${SUBSCRIPTION_MAX_ITEMS}), each in the row's \`push\` of the table in force.`, example: ['local-tax'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(SUBSCRIPTION_MAX_ITEMS)
  @IsListedOnce()
  @Matches(TABLE_CODE, { each: true, message: 'each item must be an item code of the authorization table, e.g. "local-tax"' })
  itemCodes!: string[];

  @ApiPropertyOptional({ format: 'date-time', description: 'When the subscription ends by itself (RFC 3339, later than now, at most five years ahead). Default: a year from now.' })
  @IsOptional()
  @IsInstant()
  expiresAt?: string;

  @ApiPropertyOptional({ description: 'The subscribing agency. Defaults to the agency of the bearer token; when given and the token is not its credential, the request is refused (CREDENTIAL_MISMATCH) and the refusal recorded.', example: 'jpn-pension-service' })
  @IsOptional()
  @Matches(AGENCY_ID, { message: AGENCY_ID_MESSAGE })
  requesterAgencyId?: string;

  @ApiPropertyOptional({ description: 'The authorization table version the subscriber relies on; refused when it is not the one in force.', minimum: 1, maximum: MAX_TABLE_VERSION })
  @IsOptional()
  @IsInt(TABLE_VERSION)
  @Min(1, TABLE_VERSION)
  @Max(MAX_TABLE_VERSION, TABLE_VERSION)
  tableVersion?: number;
}

export class SubscribedResponse {
  @ApiProperty({ format: 'uuid' }) subscriptionId!: string;
  @ApiProperty({ description: '処理通番 of the SubscriptionCreated event.', example: '20261205010000000007' }) serial!: string;
  @ApiProperty({ enum: ['active'] }) status!: 'active';
  @ApiProperty({ description: 'The authorization table version the subscription was allowed under.' }) tableVersion!: number;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
}

export class CancelledResponse {
  @ApiProperty({ format: 'uuid' }) subscriptionId!: string;
  @ApiProperty({ description: '処理通番 of the SubscriptionCancelled event.' }) serial!: string;
  @ApiProperty({ enum: ['cancelled'] }) status!: 'cancelled';
}

export class SubscriptionResponse {
  @ApiProperty({ format: 'uuid' }) subscriptionId!: string;
  @ApiProperty({ description: '処理通番 of the SubscriptionCreated event.' }) serial!: string;
  @ApiProperty({ description: 'The subscribing agency\'s own code for the person.' }) code!: string;
  @ApiProperty({ example: 'muroran-city' }) providerAgencyId!: string;
  @ApiProperty({ example: 'pension-award-claim' }) procedureCode!: string;
  @ApiProperty({ example: ['local-tax'] }) itemCodes!: string[];
  @ApiProperty() tableVersion!: number;
  @ApiProperty({ enum: ['active', 'cancelled', 'expired', 'ended'] }) status!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiPropertyOptional({ format: 'date-time', description: 'When it stopped being active.' }) endedAt?: string;
  @ApiPropertyOptional({ enum: ['CANCELLED', 'EXPIRED', 'TABLE_WITHDREW_PUSH'], description: 'Why it stopped being active.' }) endReason?: string;
}

export class SubscriptionsResponse {
  @ApiProperty({ type: [SubscriptionResponse] }) subscriptions!: SubscriptionResponse[];
  @ApiPropertyOptional({ description: 'Present when more remain: pass it as `after`.' }) next?: string;
}

export class NamedAgencyResponse {
  @ApiProperty({ example: 'jpn-pension-service' }) agencyId!: string;
  @ApiProperty({ type: String, nullable: true, example: '日本年金機構', description: 'Its registered name; null when it is not registered.' }) name!: string | null;
}

export class NamedTableCodeResponse {
  @ApiProperty({ example: 'local-tax' }) code!: string;
  @ApiProperty({ type: String, nullable: true, example: '地方税関係情報', description: 'Its name in the table in force; null when that table does not name it.' }) name!: string | null;
}

export class CitizenSubscriptionResponse {
  @ApiProperty({ format: 'uuid' }) subscriptionId!: string;
  @ApiProperty({ type: NamedAgencyResponse, description: 'The agency told when the information changes.' }) requester!: NamedAgencyResponse;
  @ApiProperty({ type: NamedAgencyResponse, description: 'The agency whose copy is watched.' }) provider!: NamedAgencyResponse;
  @ApiProperty({ type: NamedTableCodeResponse }) procedure!: NamedTableCodeResponse;
  @ApiProperty({ type: [NamedTableCodeResponse] }) items!: NamedTableCodeResponse[];
  @ApiProperty({ enum: ['active', 'cancelled', 'expired', 'ended'] }) status!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiPropertyOptional({ format: 'date-time' }) endedAt?: string;
  @ApiPropertyOptional({ enum: ['CANCELLED', 'EXPIRED', 'TABLE_WITHDREW_PUSH'] }) endReason?: string;
}

export class CitizenSubscriptionsResponse {
  @ApiProperty({ type: [CitizenSubscriptionResponse] }) subscriptions!: CitizenSubscriptionResponse[];
  @ApiPropertyOptional({ description: 'Present when more remain: pass it as `after`.' }) next?: string;
}

export class SubscriptionsQuery {
  @ApiPropertyOptional({ description: `Subscriptions per page, 1–${MAX_SUBSCRIPTION_LIMIT}.`, default: DEFAULT_SUBSCRIPTION_LIMIT })
  @IsOptional()
  @ToInteger()
  @IsIntegerFrom(1, MAX_SUBSCRIPTION_LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page.' })
  @IsOptional()
  @Matches(/^\d{1,15}$/, { message: 'must be the `next` value of the previous page, unchanged' })
  after?: string;
}

export class SubscriptionIdParam {
  @ApiProperty({ format: 'uuid', description: 'A subscriptionId of the calling agency, as POST /v1/subscriptions answered it.' })
  @Matches(UUID, { message: 'must be a subscription id: a UUID in lowercase hex, as POST /v1/subscriptions answered it' })
  subscriptionId!: string;
}
