import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { IsListedOnce } from '../../http/array.validators.js';
import type { QueryAnswer, QueryResult } from './query-outcome.js';

const AGENCY_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$/;
const AGENCY_CODE = /^[A-Za-z0-9_-]{21}[AQgw]$/;
const TABLE_CODE = /^(?=.{1,64}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const X25519 = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
/** The largest table version a request may name: gRPC carries it as uint32. */
export const MAX_TABLE_VERSION = 4_294_967_295;
const TABLE_VERSION = { message: `must be an integer from 1 to ${MAX_TABLE_VERSION}: the version of the authorization table the query relies on` };
const CODE_MESSAGE = 'must be an agency code: 22 characters of unpadded base64url (the code the hub issued to the requesting agency)';

class QueryCommon {
  @ApiPropertyOptional({ description: 'The requesting agency. Defaults to the agency of the bearer token; when given and the token is not its credential, the query is refused (CREDENTIAL_MISMATCH) and the refusal recorded.', example: 'jpn-pension-service' })
  @IsOptional()
  @Matches(AGENCY_ID, { message: 'must be an agency id: 2–64 lowercase letters, digits or hyphens' })
  requesterAgencyId?: string;

  @ApiProperty({ example: 'muroran-city' })
  @Matches(AGENCY_ID, { message: 'must be an agency id: 2–64 lowercase letters, digits or hyphens' })
  providerAgencyId!: string;

  @ApiProperty({ description: 'The procedure (事務) the query serves, from the authorization table.', example: 'pension-award-claim' })
  @Matches(TABLE_CODE, { message: 'must be a procedure code of the authorization table, e.g. "pension-award-claim"' })
  procedureCode!: string;

  @ApiProperty({ description: 'Information items asked for, from the authorization table.', example: ['local-tax'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(32)
  @IsListedOnce()
  @Matches(TABLE_CODE, { each: true, message: 'each item must be an item code of the authorization table, e.g. "local-tax"' })
  itemCodes!: string[];

  @ApiPropertyOptional({ description: 'X25519 public key (base64url, 43 characters): the provider encrypts the answer to it (HPKE) and the hub relays ciphertext.' })
  @IsOptional()
  @Matches(X25519, { message: 'must be an X25519 public key: 32 bytes as unpadded base64url (43 characters)' })
  answerPublicKey?: string;

  @ApiPropertyOptional({ description: 'The authorization table version the requester relies on; refused when it is not the one in force.', minimum: 1, maximum: MAX_TABLE_VERSION })
  @IsOptional()
  @IsInt(TABLE_VERSION)
  @Min(1, TABLE_VERSION)
  @Max(MAX_TABLE_VERSION, TABLE_VERSION)
  tableVersion?: number;
}

export class SubmitQueryRequest extends QueryCommon {
  @ApiProperty({ description: 'The requesting agency\'s own code for the person (never a My Number).' })
  @Matches(AGENCY_CODE, { message: CODE_MESSAGE })
  code!: string;
}

export const MAX_BULK = 1000;

export class SubmitBulkQueryRequest extends QueryCommon {
  @ApiProperty({ description: `The requesting agency's codes, one per person (1–${MAX_BULK}), each once; each person gets their own serial.` })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_BULK)
  @IsListedOnce()
  @Matches(AGENCY_CODE, { each: true, message: `each code ${CODE_MESSAGE}` })
  codes!: string[];
}

export class QueryAnswerResponse {
  @ApiPropertyOptional({ description: 'The relayed answer bytes, base64url (absent in an idempotent replay: the hub keeps no answers).' }) data?: string;
  @ApiProperty() encrypted!: boolean;
  @ApiProperty({ description: 'Hex SHA-256 of the bytes, as recorded in the log.' }) digest!: string;
  @ApiProperty() size!: number;
}

export class QueryResponse {
  @ApiProperty({ description: '処理通番 of the query.' }) serial!: string;
  @ApiProperty() queryId!: string;
  @ApiProperty({ enum: ['answered', 'refused-by-provider', 'denied', 'failed'] }) outcome!: string;
  @ApiPropertyOptional() tableVersion?: number;
  @ApiPropertyOptional({ type: QueryAnswerResponse }) answer?: QueryAnswer;
  @ApiPropertyOptional({ description: 'The provider\'s refusal reason (NO_RECORD, NOT_HELD, AUTOMATIC_ANSWER_RESTRICTED), or in bulk results the denial or failure reason.' }) reason?: string;
  @ApiPropertyOptional({ description: 'Of a failed result in a bulk answer: why the hub refused to call the provider\'s intermediate server (its certificate revoked, another agency\'s, not recorded), in words. A single query says it in its problem\'s detail.' }) cause?: string;
  @ApiPropertyOptional({ description: 'Position in the bulk request (bulk results only).' }) index?: number;
}

export class BulkQueryResponse {
  @ApiProperty() batchId!: string;
  @ApiProperty({ type: [QueryResponse] }) results!: QueryResponse[];
}

export function toQueryResponse(r: QueryResult): QueryResponse {
  return {
    serial: r.serial,
    queryId: r.queryId,
    outcome: r.outcome,
    ...(r.tableVersion === undefined ? {} : { tableVersion: r.tableVersion }),
    ...(r.answer === undefined ? {} : { answer: r.answer }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    ...(r.cause === undefined ? {} : { cause: r.cause }),
    ...(r.batch === undefined ? {} : { index: r.batch.index }),
  };
}
