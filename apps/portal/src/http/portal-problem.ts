import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';

/** A problem the portal answers (RFC 9457); `code` is what the frontend turns into a sentence. */
export class PortalProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(detail);
  }
}

/** Every error as application/problem+json; nothing internal (stacks, hub URLs) reaches the browser. */
@Catch()
export class PortalProblemFilter implements ExceptionFilter {
  readonly #log = new Logger('Portal');

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    let problem: PortalProblem;
    if (exception instanceof PortalProblem) problem = exception;
    else if (exception instanceof HttpException) {
      const status = exception.getStatus();
      problem = new PortalProblem(status, status === 404 ? 'NOT_FOUND' : status === 413 ? 'PAYLOAD_TOO_LARGE' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL', exception.message);
    } else if (typeof (exception as { statusCode?: unknown })?.statusCode === 'number' && (exception as { statusCode: number }).statusCode < 500) {
      const status = (exception as { statusCode: number }).statusCode;
      problem = new PortalProblem(status, status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST', (exception as Error).message);
    } else {
      this.#log.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
      problem = new PortalProblem(500, 'INTERNAL', 'the portal failed to answer');
    }
    void reply
      .status(problem.status)
      .header('content-type', 'application/problem+json; charset=utf-8')
      .header('cache-control', 'no-store')
      .send({ type: 'about:blank', title: problem.code, status: problem.status, code: problem.code, detail: problem.detail, ...problem.extra });
  }
}
