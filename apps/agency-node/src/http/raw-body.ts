import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AgencyProblem } from './agency-problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The exact body bytes: the hub's signature is over these, not over a re-serialisation. */
    rawBody?: Buffer;
  }
}

/** JSON only (anything else is 415); the raw bytes are kept beside the parsed body. */
export function installJsonParser(fastify: FastifyInstance, bodyLimit: number): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (request: FastifyRequest, body: Buffer | string, done: (err: Error | null, body?: unknown) => void) => {
    const raw = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    request.rawBody = raw;
    if (raw.length === 0) return done(new AgencyProblem('MALFORMED_JSON', 'the body is empty, but its content type says application/json'));
    try {
      done(null, JSON.parse(raw.toString('utf8')) as unknown);
    } catch {
      done(new AgencyProblem('MALFORMED_JSON', 'the body is not well-formed JSON (RFC 8259)'));
    }
  });
}
