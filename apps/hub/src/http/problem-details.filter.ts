import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER, correlationIdOf } from './correlation.js';
import { toProblem } from './problem.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The one exception filter of the HTTP edge: every error leaves as RFC 9457 problem+json. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Problem');

  constructor(private readonly bodyLimitBytes: number) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest | undefined>();
    const reply = http.getResponse<FastifyReply>();
    const correlationId = correlationIdOf(request);
    const url = request?.url ?? '/';
    const { problem, unexpected } = toProblem(exception, {
      instance: url.split('?')[0]!,
      correlationId,
      method: request?.method,
      contentType: request?.headers['content-type'],
      bodyLimitBytes: this.bodyLimitBytes,
    });
    if (unexpected) {
      const error = exception instanceof Error ? (exception.stack ?? exception.message) : String(exception);
      this.logger.error(`[${correlationId}] ${request?.method ?? ''} ${problem.instance}: ${error}`);
    }
    if (reply.sent) return;
    void reply
      .status(problem.status)
      .header(REQUEST_ID_HEADER, correlationId)
      .header('content-type', PROBLEM_CONTENT_TYPE)
      .send(JSON.stringify(problem));
  }
}
