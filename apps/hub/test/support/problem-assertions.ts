import { expect } from 'vitest';
import type { Response } from 'light-my-request';

/** Asserts an RFC 9457 answer with this status and code, and returns its body. */
export function expectProblem(res: Response, status: number, code: string): Record<string, unknown> {
  const body = res.json<Record<string, unknown>>();
  expect({ status: res.statusCode, code: body['code'] }).toEqual({ status, code });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json\b/);
  expect(body).toMatchObject({
    type: `https://linkage-ledger.example/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    status,
    code,
    title: expect.any(String),
    detail: expect.any(String),
    instance: expect.stringMatching(/^\//),
    correlationId: res.headers['x-request-id'],
  });
  return body;
}
