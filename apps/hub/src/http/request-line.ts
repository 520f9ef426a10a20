import type { FastifyInstance } from 'fastify';
import { HubProblem } from './hub-problem.js';

/** No path of this API comes near this; a longer one is 414 on every route, found or not. */
export const MAX_PATH_LENGTH = 2048;

/**
 * Checks of the request line that Fastify's router does not make: a path over MAX_PATH_LENGTH is 414
 * URI_TOO_LONG, and a path that exists with other methods is 405 METHOD_NOT_ALLOWED with `allow`
 * (Fastify answers 404 for both). Call before the routes are registered: the route table is collected
 * from Fastify's onRoute hook.
 */
export function installRequestLineChecks(fastify: FastifyInstance): void {
  const routes = new Map<string, { readonly pattern: RegExp; readonly methods: Set<string> }>();
  fastify.addHook('onRoute', (route) => {
    const entry = routes.get(route.url) ?? { pattern: pathPattern(route.url), methods: new Set<string>() };
    for (const method of [route.method].flat()) entry.methods.add(method);
    if (entry.methods.has('GET')) entry.methods.add('HEAD');
    routes.set(route.url, entry);
  });
  fastify.addHook('onRequest', (request, _reply, done) => {
    const path = request.url.split('?', 1)[0]!;
    if (path.length > MAX_PATH_LENGTH) {
      done(new HubProblem('URI_TOO_LONG', `the path is ${path.length} characters long; no path of this API is longer than ${MAX_PATH_LENGTH}`));
      return;
    }
    if (request.is404) {
      const allow = [...new Set([...routes.values()].filter((r) => r.pattern.test(path)).flatMap((r) => [...r.methods]))].sort();
      if (allow.length > 0 && !allow.includes(request.method)) {
        done(new HubProblem('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path}; it takes ${allow.join(', ')}`, { allow }));
        return;
      }
    }
    done();
  });
}

/** `/v1/agencies/:agencyId` → /^\/v1\/agencies\/[^/]+$/; `*` matches the rest of the path. */
function pathPattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => (segment === '*' ? '.*' : segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}
