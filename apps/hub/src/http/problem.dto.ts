import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiProperty, ApiPropertyOptional, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { PROBLEM_CATALOG, PROBLEM_TYPE_BASE, type ProblemCode } from './problem-catalog.js';
import { PROBLEM_CONTENT_TYPE } from './problem-details.filter.js';

export class FieldErrorDto {
  @ApiProperty({ example: 'residentRecordCode', description: 'Body field, query or path parameter, or header.' })
  field!: string;

  @ApiProperty({ example: 'resident record code must be 11 ASCII digits (0-9); got 10' })
  message!: string;
}

/** RFC 9457 problem details as the hub sends them (content type application/problem+json). */
export class ProblemDto {
  @ApiProperty({ example: `${PROBLEM_TYPE_BASE}check-digit-mismatch`, description: 'Stable URI of the problem type.' })
  type!: string;

  @ApiProperty({ example: 'The check digit does not match' })
  title!: string;

  @ApiProperty({ example: 422 })
  status!: number;

  @ApiProperty({ example: 'corporate number 1234567890123: check digit (the first digit) is 1, expected 9' })
  detail!: string;

  @ApiProperty({ example: 'CHECK_DIGIT_MISMATCH', description: `Stable machine-readable code: ${Object.keys(PROBLEM_CATALOG).join(', ')}.` })
  code!: string;

  @ApiProperty({ example: '/v1/corporate-numbers/1234567890123', description: 'The request path.' })
  instance!: string;

  @ApiProperty({ example: '0f8b3c52-8a0e-4d47-9a3e-1d5c0e0b6f11' })
  correlationId!: string;

  @ApiPropertyOptional({ example: 9, description: 'CHECK_DIGIT_MISMATCH: the check digit the rule computes.' })
  expected?: number;

  @ApiPropertyOptional({ example: 1, description: 'CHECK_DIGIT_MISMATCH: the check digit the input carried.' })
  actual?: number;

  @ApiPropertyOptional({ type: [FieldErrorDto], description: 'VALIDATION_FAILED, CHECK_DIGIT_MISMATCH and FORBIDDEN_KEY: one entry per wrong field (body field, query or path parameter, or header).' })
  errors?: FieldErrorDto[];
}

/** Documents the problem answers of a route, grouped by status. */
export function ApiProblems(...codes: ProblemCode[]): MethodDecorator & ClassDecorator {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of codes) {
    const status = PROBLEM_CATALOG[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return applyDecorators(
    ApiExtraModels(ProblemDto, FieldErrorDto),
    ...[...byStatus].map(([status, list]) =>
      ApiResponse({
        status,
        description: list.map((c) => `${c}: ${PROBLEM_CATALOG[c].title}`).join('; '),
        content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath(ProblemDto) } } },
      }),
    ),
  );
}

/**
 * Problems any route can answer with. NOT_LEADER: on KurrentDB a standby hub refuses anything that would
 * append to the log (commands, and reads that record themselves), naming the leader.
 */
export const COMMON_PROBLEMS: ProblemCode[] = ['INTERNAL', 'SERVICE_UNAVAILABLE', 'NOT_LEADER'];
/** Problems of any route that takes a JSON body. */
export const BODY_PROBLEMS: ProblemCode[] = ['VALIDATION_FAILED', 'MALFORMED_JSON', 'FORBIDDEN_KEY', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'REQUEST_TIMEOUT'];
