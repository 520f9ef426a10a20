import { HttpException } from '@nestjs/common';
import { LedgerError } from '#ledger';
import { LinkageError } from '#linkage';
import { NumberingError } from '#numbering';
import { ProjectionError } from '#projections';
import { HubProblem } from './hub-problem.js';
import { PROBLEM_CATALOG, isProblemCode, problemType, type ProblemCode } from './problem-catalog.js';

/** RFC 9457 problem details, with the hub's extension members. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly instance: string;
  readonly correlationId: string;
  readonly [extension: string]: unknown;
}

export interface ProblemContext {
  /** The request path (without the query string). */
  readonly instance: string;
  readonly correlationId: string;
  readonly method?: string;
  readonly contentType?: string;
  readonly bodyLimitBytes?: number;
  readonly bodyTimeoutMs?: number;
}

export interface MappedProblem {
  readonly problem: Problem;
  /** True when the error was not foreseen: log it with the correlation id; its details stay out of the answer. */
  readonly unexpected: boolean;
}

/**
 * Library messages that would reveal what MUST NOT leave the hub (the subject id) are replaced by the
 * hub's own wording; the code stays the library's.
 */
const DETAIL_OVERRIDES: Partial<Record<string, string>> = {
  RESIDENT_ALREADY_NUMBERED:
    'this resident already holds an individual number; to replace it, use POST /v1/individual-numbers/changes',
  NUMBER_UNCHANGED: 'the new number was held before by this resident; a number is never issued twice',
  IDEMPOTENCY_KEY_REUSED: 'this Idempotency-Key was already used with a different request body; use a new key for a new request',
};

const FASTIFY_CODES: Readonly<Record<string, { code: ProblemCode; detail: (c: ProblemContext) => string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'PAYLOAD_TOO_LARGE',
    detail: (c) => `the request body exceeds the limit of ${c.bodyLimitBytes ?? 'the configured number of'} bytes`,
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    detail: (c) => `content type ${JSON.stringify(c.contentType ?? '')} is not supported; send the body as application/json`,
  },
  FST_ERR_CTP_INVALID_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', detail: () => 'the content-type header is not valid; send application/json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'MALFORMED_JSON', detail: () => 'the body is empty, but its content type says application/json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'MALFORMED_JSON', detail: () => 'the body is not well-formed JSON (RFC 8259)' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'BAD_REQUEST', detail: () => 'the content-length header does not match the body' },
  FST_ERR_BAD_URL: {
    code: 'MALFORMED_URL',
    detail: () => 'the path is not a valid URL path: every "%" must be followed by two hexadecimal digits of UTF-8 (RFC 3986 percent-encoding)',
  },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'URI_TOO_LONG', detail: () => `a path segment is longer than ${MAX_PATH_PARAMETER_LENGTH} characters; no identifier of this API is that long` },
};

/** Fastify's router refuses a longer path parameter (its `maxParamLength`, left at Fastify's default). */
export const MAX_PATH_PARAMETER_LENGTH = 100;

/** Node's HTTP parser and server, for what never became a request (answered on the raw socket). */
const CLIENT_ERROR_CODES: Readonly<Record<string, { code: ProblemCode; detail: (c: ProblemContext) => string }>> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    code: 'REQUEST_TIMEOUT',
    detail: (c) =>
      `the request did not arrive within ${c.bodyTimeoutMs ?? 'the configured number of'} ms; send the headers and the whole body (as many bytes as its content-length says) at once`,
  },
  HPE_HEADER_OVERFLOW: { code: 'HEADERS_TOO_LARGE', detail: () => 'the request line and headers exceed 16 KiB; shorten the URL or the headers' },
};

const STATUS_CODES: Readonly<Record<number, ProblemCode>> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
  503: 'SERVICE_UNAVAILABLE',
};

/** Maps any error to the problem the client gets. Pure: no logging, no I/O. */
export function toProblem(error: unknown, context: ProblemContext): MappedProblem {
  if (error instanceof HubProblem) return known(error.code, error.message, context, error.extensions);
  if (error instanceof NumberingError) return fromNumbering(error, context);
  if (error instanceof LedgerError) return fromLedger(error, context);
  if (error instanceof LinkageError) return isProblemCode(error.code) ? known(error.code, error.message, context, error.details) : internal(context);
  // The edge validates every view parameter first; this keeps a parameter it missed a 400, not a 500.
  if (error instanceof ProjectionError && error.code === 'INVALID_ARGUMENT') return known('BAD_REQUEST', error.message, context);
  const fastify = fastifyCode(error);
  if (fastify !== undefined) {
    const mapped = FASTIFY_CODES[fastify];
    if (mapped) return known(mapped.code, mapped.detail(context), context);
  }
  const client = clientErrorCode(error);
  if (client !== undefined) {
    const mapped = CLIENT_ERROR_CODES[client];
    return mapped ? known(mapped.code, mapped.detail(context), context) : known('BAD_REQUEST', 'the request is not well-formed HTTP/1.1', context);
  }
  if (error instanceof HttpException) {
    const cause = error.cause;
    if (cause !== undefined && cause !== error && !(cause instanceof HttpException)) {
      const inner = toProblem(cause, context);
      if (!inner.unexpected) return inner;
    }
    return fromStatus(error.getStatus(), messageOf(error), context);
  }
  const status = clientStatus(error);
  if (status !== undefined) return fromStatus(status, (error as Error).message, context);
  return internal(context);
}

function fromNumbering(error: NumberingError, context: ProblemContext): MappedProblem {
  if (!isProblemCode(error.code)) return internal(context);
  const extensions: Record<string, unknown> = {};
  if (error.expected !== undefined) extensions['expected'] = error.expected;
  if (error.actual !== undefined) extensions['actual'] = error.actual;
  return known(error.code, DETAIL_OVERRIDES[error.code] ?? error.message, context, extensions);
}

function fromLedger(error: LedgerError, context: ProblemContext): MappedProblem {
  switch (error.code) {
    case 'IDEMPOTENCY_KEY_REUSED':
      return known('IDEMPOTENCY_KEY_REUSED', DETAIL_OVERRIDES['IDEMPOTENCY_KEY_REUSED']!, context);
    case 'WRONG_EXPECTED_REVISION':
      return known('CONCURRENT_MODIFICATION', 'the record was changed by a concurrent request; send the request again', context);
    case 'LEDGER_CLOSED':
      return known('SERVICE_UNAVAILABLE', 'the hub is shutting down; send the request again later', context);
    default:
      return internal(context);
  }
}

function fromStatus(status: number, message: string, context: ProblemContext): MappedProblem {
  if (status >= 500) return status === 503 ? known('SERVICE_UNAVAILABLE', message, context) : internal(context);
  const code = STATUS_CODES[status];
  if (code !== undefined) {
    const detail = code === 'NOT_FOUND' && context.method ? `no route for ${context.method} ${context.instance}` : message;
    return known(code, detail, context);
  }
  const title = 'Request refused';
  return {
    unexpected: false,
    problem: { type: problemType(`HTTP_${status}`), title, status, detail: message, code: `HTTP_${status}`, ...where(context) },
  };
}

function known(code: ProblemCode, detail: string, context: ProblemContext, extensions: Readonly<Record<string, unknown>> = {}): MappedProblem {
  const { status, title } = PROBLEM_CATALOG[code];
  return {
    unexpected: status >= 500 && code === 'INTERNAL',
    problem: { ...extensions, type: problemType(code), title, status, detail, code, ...where(context) },
  };
}

function internal(context: ProblemContext): MappedProblem {
  return {
    unexpected: true,
    problem: {
      type: problemType('INTERNAL'),
      title: PROBLEM_CATALOG.INTERNAL.title,
      status: 500,
      detail: `an internal error occurred; quote correlation id ${context.correlationId} when reporting it`,
      code: 'INTERNAL',
      ...where(context),
    },
  };
}

function where(context: ProblemContext): { instance: string; correlationId: string } {
  return { instance: context.instance, correlationId: context.correlationId };
}

function fastifyCode(error: unknown): string | undefined {
  if (error instanceof Error && typeof (error as { code?: unknown }).code === 'string') {
    const code = (error as unknown as { code: string }).code;
    if (code.startsWith('FST_')) return code;
  }
  return undefined;
}

/** The code of an error of Node's HTTP parser (`HPE_…`) or server (`ERR_HTTP_REQUEST_TIMEOUT`), or undefined. */
function clientErrorCode(error: unknown): string | undefined {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('HPE_') || code === 'ERR_HTTP_REQUEST_TIMEOUT') ? code : undefined;
}

/** A 4xx status carried by a framework error (e.g. fastify's), or undefined. */
function clientStatus(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

function messageOf(error: HttpException): string {
  const response = error.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (typeof message === 'string') return message;
  if (Array.isArray(message)) return message.join('; ');
  return error.message;
}
