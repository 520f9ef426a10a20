import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequestValidationError } from './hub-problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The hub's own id of the request: stored in event metadata, quoted in logs and problems, sent as X-Request-Id. */
    correlationId?: string;
  }
}

/** The caller's correlation id: checked and echoed in the answer, never stored (I10: nothing a caller sends reaches the log as given). */
export const CORRELATION_HEADER = 'x-correlation-id';
export const REQUEST_ID_HEADER = 'x-request-id';
const CORRELATION_ID = /^[\x21-\x7e]{1,200}$/;

/** Fastify onRequest hook: takes or makes the correlation id before anything else, so every answer carries it. */
export function correlationHook(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
  const given = request.headers[CORRELATION_HEADER];
  const valid = typeof given === 'string' && CORRELATION_ID.test(given);
  request.correlationId = randomUUID();
  reply.header(CORRELATION_HEADER, valid ? given : request.correlationId);
  reply.header(REQUEST_ID_HEADER, request.correlationId);
  if (given !== undefined && !valid) {
    done(new RequestValidationError([{ field: 'X-Correlation-Id', message: 'must be 1-200 visible ASCII characters (no spaces), sent once' }]));
    return;
  }
  done();
}

/** The request's correlation id (the hook always sets one; the fallback covers requests it never saw). */
export function correlationIdOf(request: FastifyRequest | undefined): string {
  if (request && request.correlationId === undefined) request.correlationId = randomUUID();
  return request?.correlationId ?? randomUUID();
}
