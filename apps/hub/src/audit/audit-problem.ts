import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CORRELATION_HEADER, correlationIdOf } from '../http/correlation.js';
import { PROBLEM_CONTENT_TYPE } from '../http/problem-details.filter.js';
import { problemType } from '../http/problem-catalog.js';

/**
 * The audit endpoints' own problem codes. They belong in http/problem-catalog.ts; until they are
 * moved there, AuditProblemFilter answers them in exactly the hub's problem+json shape.
 */
export const AUDIT_PROBLEMS = {
  SIZE_OUT_OF_RANGE: { status: 400, title: 'The tree size or position is out of range' },
  SERIAL_UNKNOWN: { status: 404, title: 'No event carries this processing serial number' },
  TREE_SIZE_NOT_REACHED: { status: 404, title: 'The tree has not reached this size yet' },
  CHECKPOINT_NOT_FOUND: { status: 404, title: 'No checkpoint was signed for this size' },
} as const;

export type AuditProblemCode = keyof typeof AUDIT_PROBLEMS;

export class AuditProblem extends Error {
  readonly status: number;
  constructor(
    readonly code: AuditProblemCode,
    detail: string,
    readonly extensions: Readonly<Record<string, unknown>> = {},
  ) {
    super(detail);
    this.name = 'AuditProblem';
    this.status = AUDIT_PROBLEMS[code].status;
  }
}

/** Answers AuditProblem as RFC 9457 problem+json; every other error goes on to the hub's one filter. */
@Catch(AuditProblem)
export class AuditProblemFilter implements ExceptionFilter<AuditProblem> {
  catch(problem: AuditProblem, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest | undefined>();
    const reply = http.getResponse<FastifyReply>();
    const correlationId = correlationIdOf(request);
    const body = {
      ...problem.extensions,
      type: problemType(problem.code),
      title: AUDIT_PROBLEMS[problem.code].title,
      status: problem.status,
      detail: problem.message,
      code: problem.code,
      instance: (request?.url ?? '/').split('?')[0],
      correlationId,
    };
    void reply.status(problem.status).header(CORRELATION_HEADER, correlationId).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
  }
}
