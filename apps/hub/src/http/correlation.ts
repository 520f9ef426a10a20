import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
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

// The id of a request whose answer may have to be written on the raw socket (a request timeout).
const RAW_IDS = new WeakMap<IncomingMessage, string>();

/** The caller's X-Correlation-Id when it is valid, else undefined. */
function givenId(request: FastifyRequest): string | undefined {
  const given = request.headers[CORRELATION_HEADER];
  return typeof given === 'string' && CORRELATION_ID.test(given) ? given : undefined;
}

/** Fastify onRequest hook: takes or makes the correlation id before anything else, so every answer carries it. */
export function correlationHook(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
  const given = request.headers[CORRELATION_HEADER];
  const valid = givenId(request);
  // The hub's own id goes into events, logs and problems; the caller's is only echoed (I10).
  request.correlationId = randomUUID();
  RAW_IDS.set(request.raw, request.correlationId);
  reply.header(CORRELATION_HEADER, valid ?? request.correlationId);
  reply.header(REQUEST_ID_HEADER, request.correlationId);
  if (given !== undefined && valid === undefined) {
    done(new RequestValidationError([{ field: 'X-Correlation-Id', message: 'must be 1-200 visible ASCII characters (no spaces), sent once' }]));
    return;
  }
  done();
}

/** The request's own id (the hook sets one; a request refused before the hooks ran gets a fresh one). */
export function correlationIdOf(request: FastifyRequest | undefined): string {
  if (request === undefined) return randomUUID();
  request.correlationId ??= randomUUID();
  return request.correlationId;
}

/** The correlation id the hook gave a raw request, if it ran. */
export function correlationIdOfRaw(raw: IncomingMessage): string | undefined {
  return RAW_IDS.get(raw);
}
