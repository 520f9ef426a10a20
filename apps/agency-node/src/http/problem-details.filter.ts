import { randomUUID } from 'node:crypto';
import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AGENCY_PROBLEMS, AgencyProblem, problemType, type AgencyProblemCode } from './agency-problem.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const CORRELATION_HEADER = 'x-correlation-id';

const FASTIFY: Readonly<Record<string, AgencyProblemCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
};
const STATUS: Readonly<Record<number, AgencyProblemCode>> = { 400: 'BAD_REQUEST', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE' };

/** Maps any error to RFC 9457 fields. Unknown errors become INTERNAL and are logged with the correlation id. */
export function toProblem(error: unknown, instance: string, correlationId: string): { problem: Record<string, unknown> & { status: number }; unexpected: boolean } {
  const where = { instance, correlationId };
  if (error instanceof AgencyProblem) {
    return { unexpected: false, problem: { ...error.extensions, type: problemType(error.code), title: error.title, status: error.status, detail: error.message, code: error.code, ...where } };
  }
  const fst = typeof (error as { code?: unknown } | null)?.code === 'string' ? FASTIFY[(error as { code: string }).code] : undefined;
  const status = error instanceof HttpException ? error.getStatus() : (error as { statusCode?: unknown } | null)?.statusCode;
  const code = fst ?? (typeof status === 'number' ? STATUS[status] : undefined);
  if (code !== undefined) {
    const detail = code === 'NOT_FOUND' ? `no route for ${instance}` : error instanceof Error ? error.message : code;
    return { unexpected: false, problem: { type: problemType(code), title: AGENCY_PROBLEMS[code].title, status: AGENCY_PROBLEMS[code].status, detail, code, ...where } };
  }
  return {
    unexpected: true,
    problem: { type: problemType('INTERNAL'), title: 'Internal error', status: 500, detail: `an internal error occurred; quote correlation id ${correlationId} when reporting it`, code: 'INTERNAL', ...where },
  };
}

/** The one exception filter: every error leaves as problem+json with a stable code. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Problem');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest | undefined>();
    const reply = http.getResponse<FastifyReply>();
    const given = request?.headers[CORRELATION_HEADER];
    const correlationId = typeof given === 'string' && /^[\x21-\x7e]{1,200}$/.test(given) ? given : randomUUID();
    const { problem, unexpected } = toProblem(exception, (request?.url ?? '/').split('?')[0]!, correlationId);
    // Only the stack of an unforeseen error is logged, never a request body (it may carry an individual number).
    if (unexpected) this.logger.error(`[${correlationId}] ${request?.method ?? ''} ${String(problem['instance'])}: ${exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)}`);
    if (reply.sent) return;
    void reply.status(problem.status).header(CORRELATION_HEADER, correlationId).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
  }
}
