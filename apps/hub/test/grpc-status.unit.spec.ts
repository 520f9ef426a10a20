import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { LedgerClosedError, WrongExpectedRevisionError } from '#ledger';
import { NumberingError } from '#numbering';
import { HubProblem } from '../src/http/hub-problem.js';
import { PROBLEM_CATALOG, type ProblemCode } from '../src/http/problem-catalog.js';
import { peerAddress } from '../src/grpc/grpc-call.js';
import { grpcStatusOf, toGrpcProblem, PROBLEM_BODY_TRAILER, PROBLEM_CODE_TRAILER } from '../src/grpc/grpc-problem.js';

const context = { method: '/linkage_ledger.v1.Numbering/IssueIndividualNumber', correlationId: 'corr-7' };
const of = (code: ProblemCode) => status[grpcStatusOf({ code, status: PROBLEM_CATALOG[code].status })];

describe('grpcStatusOf', () => {
  it('gives every code of the problem catalog a definite status, never OK or UNKNOWN', () => {
    for (const code of Object.keys(PROBLEM_CATALOG) as ProblemCode[]) {
      expect({ code, status: of(code) }).not.toMatchObject({ status: expect.stringMatching(/^(OK|UNKNOWN)$/) });
    }
  });

  it('maps the numbering and audit codes as the gRPC status definitions intend', () => {
    expect({
      VALIDATION_FAILED: of('VALIDATION_FAILED'),
      CHECK_DIGIT_MISMATCH: of('CHECK_DIGIT_MISMATCH'),
      UNKNOWN_MUNICIPALITY: of('UNKNOWN_MUNICIPALITY'),
      SIZE_OUT_OF_RANGE: of('SIZE_OUT_OF_RANGE'),
      CORPORATE_NUMBER_NOT_FOUND: of('CORPORATE_NUMBER_NOT_FOUND'),
      SERIAL_UNKNOWN: of('SERIAL_UNKNOWN'),
      TREE_SIZE_NOT_REACHED: of('TREE_SIZE_NOT_REACHED'),
      RESIDENT_ALREADY_NUMBERED: of('RESIDENT_ALREADY_NUMBERED'),
      CORPORATE_NUMBER_ALREADY_DESIGNATED: of('CORPORATE_NUMBER_ALREADY_DESIGNATED'),
      RESIDENT_NOT_NUMBERED: of('RESIDENT_NOT_NUMBERED'),
      IDEMPOTENCY_KEY_REUSED: of('IDEMPOTENCY_KEY_REUSED'),
      CONCURRENT_MODIFICATION: of('CONCURRENT_MODIFICATION'),
      PAYLOAD_TOO_LARGE: of('PAYLOAD_TOO_LARGE'),
      NOT_READY: of('NOT_READY'),
      INTERNAL: of('INTERNAL'),
    }).toEqual({
      VALIDATION_FAILED: 'INVALID_ARGUMENT',
      CHECK_DIGIT_MISMATCH: 'INVALID_ARGUMENT',
      UNKNOWN_MUNICIPALITY: 'INVALID_ARGUMENT',
      SIZE_OUT_OF_RANGE: 'INVALID_ARGUMENT',
      CORPORATE_NUMBER_NOT_FOUND: 'NOT_FOUND',
      SERIAL_UNKNOWN: 'NOT_FOUND',
      TREE_SIZE_NOT_REACHED: 'OUT_OF_RANGE',
      RESIDENT_ALREADY_NUMBERED: 'ALREADY_EXISTS',
      CORPORATE_NUMBER_ALREADY_DESIGNATED: 'ALREADY_EXISTS',
      RESIDENT_NOT_NUMBERED: 'FAILED_PRECONDITION',
      IDEMPOTENCY_KEY_REUSED: 'FAILED_PRECONDITION',
      CONCURRENT_MODIFICATION: 'ABORTED',
      PAYLOAD_TOO_LARGE: 'RESOURCE_EXHAUSTED',
      NOT_READY: 'UNAVAILABLE',
      INTERNAL: 'INTERNAL',
    });
  });

  it('follows the HTTP status for codes it has no entry for (credentials, authorization, upstream)', () => {
    expect([401, 403, 409, 429, 502, 504, 500, 418].map((s) => status[grpcStatusOf({ code: 'SOME_NEW_CODE', status: s })])).toEqual([
      'UNAUTHENTICATED',
      'PERMISSION_DENIED',
      'FAILED_PRECONDITION',
      'RESOURCE_EXHAUSTED',
      'UNAVAILABLE',
      'DEADLINE_EXCEEDED',
      'INTERNAL',
      'FAILED_PRECONDITION',
    ]);
    expect(status[grpcStatusOf({ code: 'AGENCY_ALREADY_REGISTERED', status: 409 })]).toBe('ALREADY_EXISTS');
  });
});

describe('toGrpcProblem', () => {
  function trailers(error: ReturnType<typeof toGrpcProblem>['error']) {
    const body = error.metadata.get(PROBLEM_BODY_TRAILER)[0] as Buffer;
    return { code: error.metadata.get(PROBLEM_CODE_TRAILER)[0], correlationId: error.metadata.get('x-correlation-id')[0], problem: JSON.parse(body.toString('utf8')) as Record<string, unknown> };
  }

  it('carries the same problem as the HTTP edge, with the method as instance, in the trailers', () => {
    const { error, unexpected } = toGrpcProblem(new NumberingError('CHECK_DIGIT_MISMATCH', 'corporate number check digit is 3, expected 7', { expected: 7, actual: 3 }), context);
    expect(unexpected).toBe(false);
    expect({ code: error.code, details: error.details }).toEqual({ code: status.INVALID_ARGUMENT, details: 'corporate number check digit is 3, expected 7' });
    expect(trailers(error)).toEqual({
      code: 'CHECK_DIGIT_MISMATCH',
      correlationId: 'corr-7',
      problem: {
        type: 'https://linkage-ledger.example/problems/check-digit-mismatch',
        title: PROBLEM_CATALOG.CHECK_DIGIT_MISMATCH.title,
        status: 422,
        detail: 'corporate number check digit is 3, expected 7',
        code: 'CHECK_DIGIT_MISMATCH',
        expected: 7,
        actual: 3,
        instance: context.method,
        correlationId: 'corr-7',
      },
    });
  });

  it('maps ledger errors as HTTP does: a lost race is ABORTED, a closing ledger UNAVAILABLE', () => {
    expect(toGrpcProblem(new WrongExpectedRevisionError('s', '1', 2), context).error.code).toBe(status.ABORTED);
    expect(toGrpcProblem(new LedgerClosedError(), context).error.code).toBe(status.UNAVAILABLE);
    expect(trailers(toGrpcProblem(new HubProblem('SERIAL_UNKNOWN', 'no event carries serial 1'), context).error).code).toBe('SERIAL_UNKNOWN');
  });

  it('answers an unforeseen error as INTERNAL without its message, quoting the correlation id', () => {
    const { error, unexpected } = toGrpcProblem(new Error('sqlite: disk I/O error at /var/lib/hub'), context);
    expect(unexpected).toBe(true);
    expect(error.code).toBe(status.INTERNAL);
    expect(error.details).toContain('corr-7');
    expect(JSON.stringify(trailers(error))).not.toContain('/var/lib/hub');
  });
});

describe('peerAddress', () => {
  it('keeps the host of a grpc-js peer and drops its port, so one host is one source', () => {
    expect(peerAddress('ipv4:198.51.100.7:52114')).toBe('198.51.100.7');
    expect(peerAddress('ipv6:[::1]:52114')).toBe('::1');
    expect(peerAddress('ipv6:[2001:db8::5]:443')).toBe('2001:db8::5');
    expect(peerAddress('unix:/run/hub.sock')).toBe('unix:/run/hub.sock');
  });
});
