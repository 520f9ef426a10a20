import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Histogram, collectDefaultMetrics, type Registry } from 'prom-client';

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
 * status class), in onResponse hooks, after the answer left: nothing is awaited on the way. Each route
 * gets a hook of its own when it is added (so the template is known without a look-up per request),
 * requests no route matched are observed by one global hook under UNMATCHED_ROUTE; each label
 * combination's child is made once and kept (routes, methods and classes are bounded), so a request
 * costs an array read and one observe. Routes added before this call are not observed.
 */
export function instrumentHttp(fastify: FastifyInstance, histogram: Histogram<'route' | 'method' | 'status_class'>): void {
  const child = childCache(histogram);
  const classOf = (status: number): (typeof STATUS_CLASSES)[number] => STATUS_CLASSES[status >= 100 && status < 600 ? Math.floor(status / 100) : 5]!;
  /** The children of one route: per method, per status class (1 to 5). */
  const observerOf = (route: string) => {
    const byMethod = new Map<string, Child[]>();
    return (method: string, status: number): Child => {
      let byClass = byMethod.get(method);
      if (byClass === undefined) byMethod.set(method, (byClass = []));
      const cls = status >= 100 && status < 600 ? Math.floor(status / 100) : 5;
      return (byClass[cls] ??= child(route, METHODS.has(method) ? method : 'OTHER', classOf(status)));
    };
  };
  fastify.addHook('onRoute', (route) => {
    const observe = observerOf(route.url);
    const hook = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
      observe(request.method, reply.statusCode).observe(reply.elapsedTime / 1000);
      done();
    };
    const own = route.onResponse;
    route.onResponse = own === undefined ? [hook] : Array.isArray(own) ? [...(own as unknown[]), hook] as typeof own : ([own, hook] as unknown as typeof own);
  });
  const unmatched = observerOf(UNMATCHED_ROUTE);
  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if (request.is404) unmatched(request.method, reply.statusCode).observe(reply.elapsedTime / 1000);
    done();
  });
}

/** Buckets (seconds) for request and call latencies: 1 ms to 10 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Every metric name of the applications starts with this. */
export const METRIC_PREFIX = 'linkage_';

/**
 * What every application's registry has: prom-client's process metrics (prefixed) and the HTTP latency
 * histogram by route template, method and status class (fed by `instrumentHttp`).
 */
export function appHttpMetrics(registry: Registry): Histogram<'route' | 'method' | 'status_class'> {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return new Histogram({
    name: 'linkage_http_request_duration_seconds',
    help: 'HTTP requests answered, by route template, method and status class: time from the request to the answer sent.',
    labelNames: ['route', 'method', 'status_class'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
}
