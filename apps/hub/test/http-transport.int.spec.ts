import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_CATALOG } from '../src/http/problem-catalog.js';
import { expectProblem } from './support/problem-assertions.js';
import { rawHttp, type RawAnswer } from './support/raw-http.js';
import { MURORAN, nextResidentRecordCode, startTestHub, type TestHub } from './support/test-hub.js';

/**
 * What Fastify and Node's HTTP server answer on their own (before, around or instead of a route) is the
 * hub's problem+json too, and a request that never completes is answered within HUB_BODY_TIMEOUT_MS.
 * On a real socket: an injected request cannot be incomplete, too large for the parser or not HTTP.
 */

const ISSUE = '/v1/individual-numbers';
const BODY_TIMEOUT_MS = 600;
let hub: TestHub;
let port: number;

beforeAll(async () => {
  hub = await startTestHub({ env: { HUB_BODY_LIMIT_BYTES: '2048', HUB_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) } });
  await hub.app.listen({ port: 0, host: '127.0.0.1' });
  port = (hub.app.getHttpServer().address() as { port: number }).port;
});
afterAll(async () => {
  await hub?.dispose();
});

/** A raw answer that is the hub's problem: status, code from the catalog, content type, correlation id. */
function expectRawProblem(answer: RawAnswer, status: number, code: keyof typeof PROBLEM_CATALOG): Record<string, unknown> {
  expect({ status: answer.status, contentType: answer.headers['content-type'] }).toEqual({ status, contentType: expect.stringMatching(/^application\/problem\+json/) });
  const problem = JSON.parse(answer.body) as Record<string, unknown>;
  expect(problem).toMatchObject({ status, code, title: PROBLEM_CATALOG[code].title, detail: expect.any(String), correlationId: answer.headers['x-request-id'] });
  return problem;
}

const post = (path: string, contentLength: number, body: string, headers = '') =>
  `POST ${path} HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\ncontent-length: ${contentLength}\r\n${headers}\r\n${body}`;

describe('a request that never completes', () => {
  it('a body shorter than its content-length: 408 REQUEST_TIMEOUT within about a second of HUB_BODY_TIMEOUT_MS, then the connection closes', async () => {
    const before = await hub.head();
    const started = Date.now();
    const answer = await rawHttp(port, post(ISSUE, 100, '{"residentRecordCode":', `authorization: ${hub.operator['authorization']}\r\nx-correlation-id: slow-1\r\n`));
    const problem = expectRawProblem(answer, 408, 'REQUEST_TIMEOUT');
    // The hub's own request id (the caller's correlation id never reaches its problems or logs, I10).
    expect(problem).toMatchObject({ instance: ISSUE, correlationId: answer.headers['x-request-id'], detail: expect.stringContaining(`within ${BODY_TIMEOUT_MS} ms`) });
    expect(JSON.stringify(problem)).not.toContain('slow-1');
    expect(answer.headers['connection']).toBe('close');
    expect(Date.now() - started).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50);
    expect(Date.now() - started).toBeLessThan(BODY_TIMEOUT_MS + 1500);
    expect(await hub.head()).toBe(before);
    // The body parser that was still waiting learns of the closed connection; nothing is logged as unexpected.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(hub.logger.lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('headers that never end: 408 as well', async () => {
    const answer = await rawHttp(port, `GET /health/live HTTP/1.1\r\nhost: hub\r\nx-slow: `);
    expect(expectRawProblem(answer, 408, 'REQUEST_TIMEOUT')).toMatchObject({ instance: '/' });
  });

  it('a complete request is answered as usual on the same kind of connection', async () => {
    const answer = await rawHttp(port, 'GET /health/live HTTP/1.1\r\nhost: hub\r\nconnection: close\r\n\r\n');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'live' });
  });
});

describe("Fastify's and Node's own refusals, as problem+json", () => {
  it('400 BAD_REQUEST for bytes that are not HTTP/1.1, and 431 HEADERS_TOO_LARGE for headers over 16 KiB', async () => {
    expectRawProblem(await rawHttp(port, 'HELLO HUB\r\n\r\n'), 400, 'BAD_REQUEST');
    expectRawProblem(await rawHttp(port, `GET /health/live HTTP/1.1\r\nhost: hub\r\nx-big: ${'x'.repeat(20_000)}\r\n\r\n`), 431, 'HEADERS_TOO_LARGE');
  });

  it('413 PAYLOAD_TOO_LARGE for a declared body over the limit, answered at once and the connection closed', async () => {
    const answer = await rawHttp(port, post(ISSUE, 4096, '{"residentRecordCode":"'));
    expect(expectRawProblem(answer, 413, 'PAYLOAD_TOO_LARGE')['detail']).toBe('the request body exceeds the limit of 2048 bytes');
    expect(answer.closedAfterMs).toBeLessThan(BODY_TIMEOUT_MS);
  });

  it('400 BAD_REQUEST for a body longer or shorter than its content-length (as a complete request)', async () => {
    const payload = JSON.stringify({ residentRecordCode: nextResidentRecordCode(), municipalityCode: MURORAN });
    for (const contentLength of [payload.length - 5, payload.length + 5]) {
      const res = await hub.inject({ method: 'POST', url: ISSUE, headers: { 'content-type': 'application/json', 'content-length': String(contentLength), ...hub.operator }, payload });
      expect(expectProblem(res, 400, 'BAD_REQUEST')['detail']).toBe('the content-length header does not match the body');
    }
  });

  it('414 URI_TOO_LONG for a 5,000-character path parameter or path, on a route or not', async () => {
    const long = 'a'.repeat(5000);
    for (const url of [`/v1/agencies/${long}`, `/v1/corporate-numbers/${'1'.repeat(5000)}`, `/v1/audit/checkpoints/${'9'.repeat(5000)}`]) {
      expect(expectProblem(await hub.get(url), 414, 'URI_TOO_LONG')['detail'], url).toBe('a path segment is longer than 100 characters; no identifier of this API is that long');
    }
    expect(expectProblem(await hub.get(`/v1/${long}`), 414, 'URI_TOO_LONG')['detail']).toMatch(/^the path is 5004 characters long/);
    expectRawProblem(await rawHttp(port, `GET /v1/agencies/${long} HTTP/1.1\r\nhost: hub\r\nconnection: close\r\n\r\n`), 414, 'URI_TOO_LONG');
  });

  it('400 MALFORMED_URL for a broken percent-encoding in the path, quoting the hub\'s request id', async () => {
    for (const url of ['/v1/corporate-numbers/%ZZ', '/v1/agencies/%E3%81', '/v1/nothing/%']) {
      const res = await hub.get(url, { 'x-correlation-id': 'bad-url-1' });
      expect(expectProblem(res, 400, 'MALFORMED_URL'), url).toMatchObject({ correlationId: res.headers['x-request-id'], detail: expect.stringMatching(/percent-encoding/) });
    }
  });

  it('404 NOT_FOUND for no such path; 405 METHOD_NOT_ALLOWED with allow for a path that takes other methods', async () => {
    expect(expectProblem(await hub.get('/v1/nothing-here'), 404, 'NOT_FOUND')['detail']).toBe('no route for GET /v1/nothing-here');
    const before = await hub.head();
    const res = await hub.inject({ method: 'DELETE', url: ISSUE, headers: hub.operator });
    expect(expectProblem(res, 405, 'METHOD_NOT_ALLOWED')).toMatchObject({ allow: ['POST'], detail: 'DELETE is not allowed on /v1/individual-numbers; it takes POST' });
    expect(res.headers['allow']).toBe('POST');
    const agency = await hub.inject({ method: 'PUT', url: '/v1/agencies/muroran-city' });
    expect(expectProblem(agency, 405, 'METHOD_NOT_ALLOWED')['allow']).toEqual(['GET', 'HEAD', 'PATCH']);
    expect(await hub.head()).toBe(before);
  });

  it('415 UNSUPPORTED_MEDIA_TYPE for a body without a content type or with another one', async () => {
    expectProblem(await hub.inject({ method: 'POST', url: ISSUE, headers: hub.operator, payload: 'residentRecordCode=1' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectProblem(await hub.inject({ method: 'POST', url: ISSUE, headers: { ...hub.operator, 'content-type': 'application/json-seq' }, payload: '{}' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });
});
