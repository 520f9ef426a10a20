import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
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
  request.correlationId = valid ?? randomUUID();
  RAW_IDS.set(request.raw, request.correlationId);
  reply.header(CORRELATION_HEADER, request.correlationId);
  if (given !== undefined && valid === undefined) {
    done(new RequestValidationError([{ field: 'X-Correlation-Id', message: 'must be 1-200 visible ASCII characters (no spaces), sent once' }]));
    return;
  }
  done();
}

/** The request's correlation id (the hook sets one; a request refused before the hooks ran takes the caller's or a fresh one). */
export function correlationIdOf(request: FastifyRequest | undefined): string {
  if (request === undefined) return randomUUID();
  request.correlationId ??= givenId(request) ?? randomUUID();
  return request.correlationId;
}

/** The correlation id the hook gave a raw request, if it ran. */
export function correlationIdOfRaw(raw: IncomingMessage): string | undefined {
  return RAW_IDS.get(raw);
}
