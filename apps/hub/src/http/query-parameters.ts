import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequestValidationError, type FieldError } from './hub-problem.js';

/** Names that would reach an object's prototype rather than a parameter; refused in queries as in bodies. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Fastify onRequest hook, on every route: no route takes a query parameter twice (`?after=a&after=b`
 * would reach the handler as an array), and none is called `__proto__`, `constructor` or `prototype`
 * (the parsed query drops or keeps them silently). Either is a 400 VALIDATION_FAILED naming it.
 */
export function queryParametersHook(request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void {
  const errors: FieldError[] = [];
  const query = request.query as Readonly<Record<string, unknown>> | null | undefined;
  for (const [name, value] of query ? Object.entries(query) : []) {
    if (Array.isArray(value)) errors.push({ field: name, message: `must be given once; it was given ${value.length} times` });
  }
  const at = request.url.indexOf('?');
  if (at >= 0) {
    for (const name of new Set(request.url.slice(at + 1).split('&').map((part) => decoded(part.split('=', 1)[0]!)))) {
      if (FORBIDDEN_KEYS.has(name)) errors.push({ field: name, message: 'is not a parameter of any route; remove it' });
    }
  }
  done(errors.length > 0 ? new RequestValidationError(errors) : undefined);
}

function decoded(name: string): string {
  try {
    return decodeURIComponent(name.replaceAll('+', ' '));
  } catch {
    return name;
  }
}
