import { BadRequestException, HttpException, NotFoundException } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { ClaimConflictError, IdempotencyKeyReusedError, LedgerClosedError, WrongExpectedRevisionError } from '#ledger';
import { NumberingError } from '#numbering';
import { ProjectionError } from '#projections';
import { HubProblem, RequestValidationError } from '../src/http/hub-problem.js';
import { PROBLEM_CATALOG, problemType } from '../src/http/problem-catalog.js';
import { toProblem } from '../src/http/problem.js';

const context = { instance: '/v1/individual-numbers', correlationId: 'corr-1', method: 'POST', contentType: 'text/plain', bodyLimitBytes: 65536 };

function fastifyError(code: string, statusCode: number, message = 'fastify says no'): Error {
  return Object.assign(new Error(message), { name: 'FastifyError', code, statusCode });
}

describe('toProblem', () => {
  it('builds an RFC 9457 document with a stable type URI, the request path and the correlation id', () => {
    const { problem, unexpected } = toProblem(new HubProblem('CORPORATE_NUMBER_NOT_FOUND', 'no corporate number 1 has been designated'), context);
    expect(unexpected).toBe(false);
    expect(problem).toEqual({
      type: 'https://linkage-ledger.example/problems/corporate-number-not-found',
      title: PROBLEM_CATALOG.CORPORATE_NUMBER_NOT_FOUND.title,
      status: 404,
      detail: 'no corporate number 1 has been designated',
      code: 'CORPORATE_NUMBER_NOT_FOUND',
      instance: '/v1/individual-numbers',
      correlationId: 'corr-1',
    });
  });

  it('carries the validation errors array', () => {
    const { problem } = toProblem(new RequestValidationError([{ field: 'residentRecordCode', message: 'must be 11 digits' }]), context);
    expect(problem).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', detail: 'residentRecordCode: must be 11 digits', errors: [{ field: 'residentRecordCode', message: 'must be 11 digits' }] });
  });

  it('maps numbering errors to 422 / 409 / 400 and carries expected and actual digits', () => {
    expect(toProblem(new NumberingError('CHECK_DIGIT_MISMATCH', 'corporate number …', { expected: 8, actual: 1 }), context).problem).toMatchObject({
      status: 422,
      code: 'CHECK_DIGIT_MISMATCH',
      expected: 8,
      actual: 1,
      type: problemType('CHECK_DIGIT_MISMATCH'),
    });
    expect(toProblem(new NumberingError('UNKNOWN_MUNICIPALITY', 'x'), context).problem).toMatchObject({ status: 422 });
    expect(toProblem(new NumberingError('RESIDENT_NOT_NUMBERED', 'x'), context).problem).toMatchObject({ status: 409 });
    expect(toProblem(new NumberingError('CORPORATE_NUMBER_ALREADY_DESIGNATED', 'x'), context).problem).toMatchObject({ status: 409 });
    expect(toProblem(new NumberingError('INVALID_NAME', 'name must not be empty'), context).problem).toMatchObject({ status: 400, code: 'INVALID_NAME' });
  });

  it('never passes on a library message that names the subject id', () => {
    const error = new NumberingError('RESIDENT_ALREADY_NUMBERED', 'this resident already holds an individual number (subject 6f1c-secret, issued …)');
    const { problem } = toProblem(error, context);
    expect(problem).toMatchObject({ status: 409, code: 'RESIDENT_ALREADY_NUMBERED' });
    expect(JSON.stringify(problem)).not.toContain('6f1c-secret');
    expect(JSON.stringify(toProblem(new NumberingError('NUMBER_UNCHANGED', 'held by subject 6f1c-secret'), context).problem)).not.toContain('6f1c-secret');
  });

  it('maps ledger errors: key reuse and concurrency are 409, a closed ledger 503, the rest internal', () => {
    expect(toProblem(new IdempotencyKeyReusedError('municipality:012050/k'), context).problem).toMatchObject({ status: 409, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(toProblem(new WrongExpectedRevisionError('s', '1', 2), context).problem).toMatchObject({ status: 409, code: 'CONCURRENT_MODIFICATION' });
    expect(toProblem(new LedgerClosedError(), context).problem).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    const claim = toProblem(new ClaimConflictError('individual-number:abc'), context);
    expect(claim.unexpected).toBe(true);
    expect(claim.problem).toMatchObject({ status: 500, code: 'INTERNAL' });
    expect(JSON.stringify(claim.problem)).not.toContain('individual-number:abc');
  });

  it.each([
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'PAYLOAD_TOO_LARGE', /limit of 65536 bytes/],
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'UNSUPPORTED_MEDIA_TYPE', /"text\/plain" is not supported/],
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'MALFORMED_JSON', /not well-formed JSON/],
    ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 'MALFORMED_JSON', /empty/],
    ['FST_ERR_BAD_URL', 400, 'MALFORMED_URL', /percent-encoding/],
    ['FST_ERR_MAX_PARAM_LENGTH', 414, 'URI_TOO_LONG', /longer than 100 characters/],
  ])('maps fastify %s, bare or wrapped by Nest, to %i %s', (code, status, problemCode, detail) => {
    const bare = fastifyError(code, status);
    const wrapped = new HttpException(bare.message, status, { cause: bare });
    for (const error of [bare, wrapped]) {
      const { problem } = toProblem(error, context);
      expect(problem).toMatchObject({ status, code: problemCode });
      expect(problem.detail).toMatch(detail);
    }
  });

  it.each([
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'REQUEST_TIMEOUT', /did not arrive within 700 ms/],
    ['HPE_HEADER_OVERFLOW', 431, 'HEADERS_TOO_LARGE', /exceed 16 KiB/],
    ['HPE_INVALID_METHOD', 400, 'BAD_REQUEST', /not well-formed HTTP\/1\.1/],
  ])('maps Node\'s client error %s to %i %s', (code, status, problemCode, detail) => {
    const { problem, unexpected } = toProblem(Object.assign(new Error('Parse Error'), { code }), { ...context, bodyTimeoutMs: 700 });
    expect(unexpected).toBe(false);
    expect(problem).toMatchObject({ status, code: problemCode, detail: expect.stringMatching(detail) });
  });

  it('maps a view argument the edge let through to 400 BAD_REQUEST with the projection\'s message', () => {
    expect(toProblem(new ProjectionError('INVALID_ARGUMENT', 'after must be the `next` cursor of a previous page'), context).problem).toMatchObject({
      status: 400,
      code: 'BAD_REQUEST',
      detail: 'after must be the `next` cursor of a previous page',
    });
    expect(toProblem(new ProjectionError('PROJECTION_CLOSED', 'closed'), context).problem.code).toBe('INTERNAL');
  });

  it('maps a route miss to 404 NOT_FOUND and other Nest HTTP exceptions by status', () => {
    expect(toProblem(new NotFoundException('Cannot GET /nope'), { ...context, method: 'GET', instance: '/nope' }).problem).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
      detail: 'no route for GET /nope',
    });
    expect(toProblem(new BadRequestException('bad'), context).problem).toMatchObject({ status: 400, code: 'BAD_REQUEST', detail: 'bad' });
    expect(toProblem(new HttpException('slow down', 429), context).problem).toMatchObject({ status: 429, code: 'HTTP_429', type: problemType('HTTP_429') });
  });

  it('answers anything unforeseen with a bare 500 INTERNAL that reveals nothing', () => {
    const { problem, unexpected } = toProblem(new TypeError('cannot read x of undefined at /srv/secret.ts'), context);
    expect(unexpected).toBe(true);
    expect(problem).toEqual({
      type: problemType('INTERNAL'),
      title: 'Internal error',
      status: 500,
      detail: 'an internal error occurred; quote correlation id corr-1 when reporting it',
      code: 'INTERNAL',
      instance: context.instance,
      correlationId: 'corr-1',
    });
    expect(toProblem('a string', context).problem.code).toBe('INTERNAL');
    expect(toProblem(new HttpException('boom', 500), context)).toMatchObject({ unexpected: true, problem: { code: 'INTERNAL' } });
  });
});
