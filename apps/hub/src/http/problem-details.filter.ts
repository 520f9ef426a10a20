import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER, correlationIdOf, correlationIdOfRaw } from './correlation.js';
import { toProblem, type Problem } from './problem.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemLimits {
  readonly bodyLimitBytes: number;
  readonly bodyTimeoutMs?: number;
  /** The body limit of a route that has one of its own (`instance` is the request's path), else undefined. */
  readonly routeBodyLimitBytes?: (method: string | undefined, instance: string) => number | undefined;
}

/**
 * The one exception filter of the HTTP edge: every error leaves as RFC 9457 problem+json. Nest calls
 * `catch`; what Fastify refuses before Nest sees a request (a malformed URL, an over-long path segment)
 * comes through `send`, and what never became a request (a request that did not arrive in time, headers
 * too large, bytes that are not HTTP) through `answerClientError`, on the raw socket.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Problem');

  /** Records a command's refusal before it is answered (I6); set once the application's services exist. */
  #recorder: ((request: FastifyRequest | undefined, exception: unknown) => Promise<void> | undefined) | undefined;

  constructor(private readonly limits: ProblemLimits) {}

  recordRefusalsWith(recorder: (request: FastifyRequest | undefined, exception: unknown) => Promise<void> | undefined): void {
    this.#recorder = recorder;
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest | undefined>();
    const reply = http.getResponse<FastifyReply>();
    // The refusal event first, so that the problem can name its serial (the recorder never throws).
    const recording = this.#recorder?.(request, exception);
    if (recording === undefined) this.send(exception, request, reply);
    else void recording.then(() => this.send(exception, request, reply));
  }

  /** Answers `exception` on a Fastify reply (Fastify's `frameworkErrors` calls this too). */
  send(exception: unknown, request: FastifyRequest | undefined, reply: FastifyReply): void {
    const correlationId = correlationIdOf(request);
    const url = request?.url ?? '/';
    const problem = this.#problem(exception, {
      instance: url.split('?')[0]!,
      correlationId,
      method: request?.method,
      contentType: request?.headers['content-type'],
    });
    if (reply.sent) return;
    void reply.status(problem.status).header(REQUEST_ID_HEADER, correlationId).header('content-type', PROBLEM_CONTENT_TYPE);
    if (Array.isArray(problem['allow'])) void reply.header('allow', problem['allow'].join(', '));
    if (typeof problem['retryAfter'] === 'number') void reply.header('retry-after', String(problem['retryAfter']));
    // A body left unread (refused before it was parsed, or still arriving) would hold the connection: close it after the answer.
    if (request?.raw.complete === false) void reply.header('connection', 'close');
    void reply.send(JSON.stringify(problem));
  }

  /**
   * Fastify's `clientErrorHandler`: Node's HTTP server reports a request that did not arrive within the
   * request timeout (HUB_BODY_TIMEOUT_MS), headers over its limit, or bytes that are not HTTP. Answers
   * the problem as a raw response unless an answer was already started on the socket, then closes it.
   */
  answerClientError(error: Error & { code?: string }, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
    if (!socket.writable || response?.headersSent === true) {
      socket.destroy();
      return;
    }
    const raw = response?.req;
    const correlationId = (raw === undefined ? undefined : correlationIdOfRaw(raw)) ?? randomUUID();
    const problem = this.#problem(error, { instance: raw?.url?.split('?')[0] ?? '/', correlationId, method: raw?.method });
    const body = JSON.stringify(problem);
    const head = [
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}`,
      `content-type: ${PROBLEM_CONTENT_TYPE}`,
      `content-length: ${Buffer.byteLength(body)}`,
      `${REQUEST_ID_HEADER}: ${correlationId}`,
      'connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
  }

  #problem(exception: unknown, context: { instance: string; correlationId: string; method?: string | undefined; contentType?: string | undefined }): Problem {
    const { problem, unexpected } = toProblem(exception, { ...context, bodyLimitBytes: this.limits.routeBodyLimitBytes?.(context.method, context.instance) ?? this.limits.bodyLimitBytes, bodyTimeoutMs: this.limits.bodyTimeoutMs });
    if (unexpected) {
      const error = exception instanceof Error ? (exception.stack ?? exception.message) : String(exception);
      this.logger.error(`[${context.correlationId}] ${context.method ?? ''} ${problem.instance}: ${error}`);
    }
    return problem;
  }
}
