import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Histogram } from 'prom-client';

/** The label of a request no route matched (404s, probes): never the URL, which may carry anything. */
export const UNMATCHED_ROUTE = '(unmatched)';
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const STATUS_CLASSES = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

type Child = ReturnType<Histogram<string>['labels']>;

/**
 * The child of a three-label histogram for these values, made at first use and kept: a hot path then
 * costs two map reads and no label object. Only for bounded label values.
 */
export function childCache<L extends string>(histogram: Histogram<L>): (a: string, b: string, c: string) => Child {
  const children = new Map<string, Map<string, Map<string, Child>>>();
  return (a, b, c) => {
    let byB = children.get(a);
    if (byB === undefined) children.set(a, (byB = new Map()));
    let byC = byB.get(b);
    if (byC === undefined) byB.set(b, (byC = new Map()));
    let child = byC.get(c);
    if (child === undefined) byC.set(c, (child = histogram.labels(a, b, c)));
    return child;
  };
}

/**
 * Observes every answered request in `histogram` (seconds; labels: the route template, the method, the
 * status class), in Fastify's onResponse hook, after the answer left: nothing is awaited on the way.
 * Each label combination's child is made once and kept (routes, methods and classes are bounded), so a
 * request costs a few map reads and one observe.
 */
export function instrumentHttp(fastify: FastifyInstance, histogram: Histogram<'route' | 'method' | 'status_class'>): void {
  const child = childCache(histogram);
  const childOf = (route: string, method: string, status: number): Child => child(route, method, STATUS_CLASSES[status >= 100 && status < 600 ? Math.floor(status / 100) : 5]!);
  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const method = METHODS.has(request.method) ? request.method : 'OTHER';
    childOf(route, method, reply.statusCode).observe(reply.elapsedTime / 1000);
    done();
  });
}

/** Buckets (seconds) for request and call latencies: 1 ms to 10 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
