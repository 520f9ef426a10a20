import type { FastifyInstance } from 'fastify';
import type { ProblemDetailsFilter } from './problem-details.filter.js';

/**
 * A body that never completes (shorter than its content-length, or a stalled upload) is answered 408
 * REQUEST_TIMEOUT once `timeoutMs` have passed since the request arrived, and the connection is closed.
 * Node's request timeout (Fastify's `requestTimeout`) covers a request until its headers are complete,
 * not its body, so the body has this deadline of its own. A body already complete costs nothing.
 */
export function installBodyTimeout(fastify: FastifyInstance, filter: ProblemDetailsFilter, timeoutMs: number): void {
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    if (request.raw.complete) {
      done(null, payload);
      return;
    }
    const timer = setTimeout(() => {
      if (reply.sent || request.raw.complete) return;
      filter.send(Object.assign(new Error(`request body incomplete after ${timeoutMs} ms`), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), request, reply);
    }, timeoutMs);
    const clear = () => clearTimeout(timer);
    request.raw.once('end', clear);
    reply.raw.once('close', clear);
    done(null, payload);
  });
}
