import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { correlationIdOf } from './correlation.js';
import { RequestValidationError } from './hub-problem.js';

export interface RequestMeta {
  readonly correlationId: string;
  /** The caller's Idempotency-Key header, if any (not yet scoped by actor). */
  readonly idempotencyKey?: string;
}

export const IDEMPOTENCY_HEADER = 'idempotency-key';
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,200}$/;

/** The caller's correlation id and checked Idempotency-Key. */
export const Meta = createParamDecorator((_data: unknown, context: ExecutionContext): RequestMeta => {
  const request = context.switchToHttp().getRequest<FastifyRequest>();
  const key = request.headers[IDEMPOTENCY_HEADER];
  if (key !== undefined && (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))) {
    throw new RequestValidationError([{ field: 'Idempotency-Key', message: 'must be 1-200 printable ASCII characters, sent once' }]);
  }
  return key === undefined ? { correlationId: correlationIdOf(request) } : { correlationId: correlationIdOf(request), idempotencyKey: key };
});
