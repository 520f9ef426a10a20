import type { OpenAPIObject } from '@nestjs/swagger';
import { PROBLEM_CATALOG } from '../http/problem-catalog.js';

/** Paths never rate-limited (the probes); every other operation may answer 429 RATE_LIMITED. */
const EXEMPT = /^\/(?:health|metrics)(?:\/|$)/;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

/**
 * Adds RATE_LIMITED (429, with Retry-After) to the answers of every operation but the probes' (the guard
 * limits them all, docs/rate-limits.md), next to a 429 an operation already documents.
 */
export function documentRateLimits(document: OpenAPIObject): OpenAPIObject {
  const line = `RATE_LIMITED: ${PROBLEM_CATALOG.RATE_LIMITED.title} (Retry-After says when to retry)`;
  for (const [path, item] of Object.entries(document.paths)) {
    if (EXEMPT.test(path)) continue;
    for (const method of METHODS) {
      const operation = item[method];
      if (operation === undefined) continue;
      const existing = operation.responses['429'] as { description?: string; content?: unknown } | undefined;
      const content = existing?.content ?? { 'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDto' } } };
      operation.responses['429'] = {
        description: existing?.description === undefined ? line : `${existing.description}; ${line}`,
        content: content as Record<string, never>,
        headers: { 'Retry-After': { description: 'Seconds until a request of this caller would pass', schema: { type: 'integer', minimum: 1 } } },
      };
    }
  }
  return document;
}
