import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import type { PushFetcher } from '../mesh/push-fetcher.js';
import type { PushReceiver } from '../mesh/push-receiver.js';
import type { ProvisionEndpoint } from '../provider/provision-endpoint.js';
import { LATENCY_BUCKETS, appHttpMetrics, instrumentHttp } from '#metrics';

/** Where Prometheus scrapes the intermediate server: on its HTTP port. */
export const METRICS_PATH = '/metrics';
export { METRIC_PREFIX } from '#metrics';

/** The intermediate server's metrics on one registry of its own (several servers can live in one process, as in the tests). */
export class AgencyMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'route' | 'method' | 'status_class'>;
  readonly provisionDuration: Histogram<'call' | 'outcome'>;
  readonly pushesReceived: Counter<'outcome'>;
  readonly pushFetches: Counter<'outcome'>;

  constructor() {
    const registers = [this.registry];
    this.httpDuration = appHttpMetrics(this.registry);
    this.provisionDuration = new Histogram({
      name: 'linkage_agency_provision_duration_seconds',
      help: "The hub's provision requests handled (HTTP or gRPC), by call (single or batch) and outcome (answered, refused, rejected: signature, schema, freshness or addressee refused).",
      labelNames: ['call', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.pushesReceived = new Counter({
      name: 'linkage_agency_pushes_received_total',
      help: "The hub's pushes (POST /v1/pushes) by outcome: new, duplicate (a redelivery of a known pushId), rejected (signature, fields, addressee or a reused pushId refused).",
      labelNames: ['outcome'],
      registers,
    });
    this.pushFetches = new Counter({
      name: 'linkage_agency_push_fetches_total',
      help: 'Fetches after a push (AGENCY_PUSH_FETCH=on), by the outcome stored: answered, refused-by-provider, denied, failed, not-sent.',
      labelNames: ['outcome'],
      registers,
    });
  }
}

const BY_APP = new WeakMap<INestApplication, AgencyMetrics>();

/** The metrics of an intermediate server's application (for tests and the dashboard check). */
export function agencyMetricsOf(app: INestApplication): AgencyMetrics | undefined {
  return BY_APP.get(app);
}

/**
 * Times the provision endpoint (shared by the HTTP controller and the gRPC server) from outside: its two
 * methods are replaced on the one instance by ones that observe each call's duration and outcome.
 */
function instrumentProvisions(endpoint: ProvisionEndpoint, metrics: AgencyMetrics): void {
  const provide = endpoint.provide.bind(endpoint);
  const provideBatch = endpoint.provideBatch.bind(endpoint);
  const h = metrics.provisionDuration;
  const single = { answered: h.labels('single', 'answered'), refused: h.labels('single', 'refused'), rejected: h.labels('single', 'rejected') };
  const batch = { answered: h.labels('batch', 'answered'), rejected: h.labels('batch', 'rejected') };
  const seconds = (started: number) => (performance.now() - started) / 1000;
  endpoint.provide = async (raw, signature, parsed, keyId) => {
    const started = performance.now();
    try {
      const response = await provide(raw, signature, parsed, keyId);
      (response.status === 'answered' ? single.answered : single.refused).observe(seconds(started));
      return response;
    } catch (error) {
      single.rejected.observe(seconds(started));
      throw error;
    }
  };
  endpoint.provideBatch = async (raw, signature, parsed, keyId) => {
    const started = performance.now();
    try {
      const response = await provideBatch(raw, signature, parsed, keyId);
      batch.answered.observe(seconds(started));
      return response;
    } catch (error) {
      batch.rejected.observe(seconds(started));
      throw error;
    }
  };
}

/** Counts the pushes received by outcome and the fetches after them by the outcome stored. */
function instrumentMesh(pushes: PushReceiver, fetcher: PushFetcher | undefined, metrics: AgencyMetrics): void {
  const receive = pushes.receive.bind(pushes);
  const c = { new: metrics.pushesReceived.labels('new'), duplicate: metrics.pushesReceived.labels('duplicate'), rejected: metrics.pushesReceived.labels('rejected') };
  pushes.receive = async (raw, signature, keyId) => {
    try {
      const receipt = await receive(raw, signature, keyId);
      (receipt.duplicate ? c.duplicate : c.new).inc();
      return receipt;
    } catch (error) {
      c.rejected.inc();
      throw error;
    }
  };
  if (fetcher !== undefined) fetcher.observe = (outcome) => metrics.pushFetches.labels(outcome).inc();
}

/**
 * The intermediate server's Prometheus metrics (docs/observability.md): a registry of its own, the HTTP
 * histogram in an onResponse hook, the provision endpoint's latency and outcomes, process metrics; `GET
 * /metrics` answers the text exposition format.
 */
export function installAgencyMetrics(app: NestFastifyApplication, provisions: ProvisionEndpoint, mesh?: { pushes: PushReceiver; fetcher: PushFetcher | undefined }): AgencyMetrics {
  const metrics = new AgencyMetrics();
  BY_APP.set(app, metrics);
  const fastify = app.getHttpAdapter().getInstance();
  instrumentHttp(fastify, metrics.httpDuration);
  instrumentProvisions(provisions, metrics);
  if (mesh !== undefined) instrumentMesh(mesh.pushes, mesh.fetcher, metrics);
  fastify.get(METRICS_PATH, async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  return metrics;
}
