import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { toProblem, type Problem } from '../http/problem.js';

/** Trailing metadata of every error: the stable problem code, and the whole RFC 9457 body as JSON bytes. */
export const PROBLEM_CODE_TRAILER = 'problem-code';
export const PROBLEM_BODY_TRAILER = 'problem-bin';
export const CORRELATION_METADATA = 'x-correlation-id';
/** The hub's own id of a call (the correlation id of its events and log lines). */
export const REQUEST_ID_METADATA = 'x-request-id';

/**
 * Codes whose HTTP status alone does not pick the right gRPC status. Everything else follows the status
 * of its entry in the problem catalog, so a new code needs no entry here.
 */
const BY_CODE: Readonly<Record<string, GrpcStatus>> = {
  // Retry the whole request (read-modify-write lost a race), as gRPC defines ABORTED.
  CONCURRENT_MODIFICATION: GrpcStatus.ABORTED,
  // The log has not grown to this size yet: the same request can succeed later.
  TREE_SIZE_NOT_REACHED: GrpcStatus.OUT_OF_RANGE,
};

const BY_HTTP_STATUS: Readonly<Record<number, GrpcStatus>> = {
  400: GrpcStatus.INVALID_ARGUMENT,
  401: GrpcStatus.UNAUTHENTICATED,
  403: GrpcStatus.PERMISSION_DENIED,
  404: GrpcStatus.NOT_FOUND,
  405: GrpcStatus.UNIMPLEMENTED,
  408: GrpcStatus.DEADLINE_EXCEEDED,
  409: GrpcStatus.FAILED_PRECONDITION,
  413: GrpcStatus.RESOURCE_EXHAUSTED,
  415: GrpcStatus.INVALID_ARGUMENT,
  422: GrpcStatus.INVALID_ARGUMENT,
  429: GrpcStatus.RESOURCE_EXHAUSTED,
  501: GrpcStatus.UNIMPLEMENTED,
  502: GrpcStatus.UNAVAILABLE,
  503: GrpcStatus.UNAVAILABLE,
  504: GrpcStatus.DEADLINE_EXCEEDED,
};

/** The gRPC status of a problem: by code where the catalog's HTTP status is ambiguous, else by status. */
export function grpcStatusOf(problem: Pick<Problem, 'code' | 'status'>): GrpcStatus {
  const byCode = BY_CODE[problem.code];
  if (byCode !== undefined) return byCode;
  // 409s named "…_ALREADY_…" (RESIDENT_ALREADY_NUMBERED, CORPORATE_NUMBER_ALREADY_DESIGNATED, …) say that
  // what the caller wants to create exists; other 409s are preconditions (RESIDENT_NOT_NUMBERED, key reuse).
  if (problem.status === 409 && problem.code.includes('ALREADY_')) return GrpcStatus.ALREADY_EXISTS;
  const byStatus = BY_HTTP_STATUS[problem.status];
  if (byStatus !== undefined) return byStatus;
  if (problem.status >= 500) return GrpcStatus.INTERNAL;
  return problem.status >= 400 ? GrpcStatus.FAILED_PRECONDITION : GrpcStatus.UNKNOWN;
}

export interface GrpcProblem {
  readonly error: ServiceError;
  readonly problem: Problem;
  /** Not foreseen: log it with the correlation id; its details stay out of the answer. */
  readonly unexpected: boolean;
}

/**
 * Any error → the gRPC error the client gets: the problem the HTTP edge would answer (the same code,
 * title, detail and extensions, through the same mapper), its gRPC status, and trailers with the problem
 * code, the problem body and the correlation id. `instance` is the full method path.
 */
export function toGrpcProblem(error: unknown, context: { readonly method: string; readonly correlationId: string; readonly callerCorrelationId?: string }): GrpcProblem {
  const { problem, unexpected } = toProblem(error, { instance: context.method, correlationId: context.correlationId });
  const metadata = new Metadata();
  metadata.set(PROBLEM_CODE_TRAILER, problem.code);
  metadata.set(PROBLEM_BODY_TRAILER, Buffer.from(JSON.stringify(problem), 'utf8'));
  metadata.set(CORRELATION_METADATA, context.callerCorrelationId ?? context.correlationId);
  metadata.set(REQUEST_ID_METADATA, context.correlationId);
  const code = grpcStatusOf(problem);
  const serviceError = Object.assign(new Error(problem.detail), { code, details: problem.detail, metadata });
  return { error: serviceError, problem, unexpected };
}
