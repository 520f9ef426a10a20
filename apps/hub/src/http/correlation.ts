import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequestValidationError } from './hub-problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** From X-Correlation-Id, or fresh; echoed in the response header and stored in event metadata. */
    correlationId?: string;
  }
}

export const CORRELATION_HEADER = 'x-correlation-id';
const CORRELATION_ID = /^[\x21-\x7e]{1,200}$/;

/** Fastify onRequest hook: takes or makes the correlation id before anything else, so every answer carries it. */
export function correlationHook(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
  const given = request.headers[CORRELATION_HEADER];
  const valid = typeof given === 'string' && CORRELATION_ID.test(given);
  request.correlationId = valid ? given : randomUUID();
  reply.header(CORRELATION_HEADER, request.correlationId);
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
