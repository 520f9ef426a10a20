import type { INestApplication } from '@nestjs/common';
import { installPushMetrics } from '../pushes/push-metrics.js';
import { PushDelivery } from '../pushes/push-delivery.js';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { EventStore } from '#ledger';
import type { CodeMapper } from '#mapper';
import { CheckpointSigner } from '../audit/checkpoint-signer.service.js';
import { TreeFollower } from '../audit/tree-follower.service.js';
import type { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { HubCodeMapper, type CodeMapperHealth } from '../linkage/hub-code-mapper.js';
import { ProviderClient, type ProviderReply, type ProvisionRequestBody } from '../linkage/queries/provider-client.js';
import { QUERY_STAGES, QueryRunner, type QueryStage } from '../linkage/queries/query-runner.js';
import { EventRelay } from '../relay/event-relay.service.js';
import { RateLimits } from '../rate-limits/rate-limits.service.js';
import { childCache, instrumentHttp } from '#metrics';
import { HubMetrics } from './hub-metrics.js';

/** Where Prometheus scrapes the hub (and the intermediate server): on the HTTP port, outside the OpenAPI document. */
export const METRICS_PATH = '/metrics';

const BY_APP = new WeakMap<INestApplication, HubMetrics>();

/** The metrics of a hub application (for tests and the dashboard check). */
export function hubMetricsOf(app: INestApplication): HubMetrics | undefined {
  return BY_APP.get(app);
}

/** A provider's agency id as a label: agency ids are public and bounded by the registry (never a person's data). */
function agencyOf(request: ProvisionRequestBody | undefined): string {
  return request?.providerAgencyId ?? 'unknown';
}

/**
 * Times the hub's calls to intermediate servers from outside the client: its two public methods are
 * replaced on the one instance by ones that observe the call's duration per provider agency and outcome.
 * The observe happens when the reply is in; nothing more is awaited.
 */
function instrumentProviderClient(client: ProviderClient, metrics: HubMetrics): void {
  const provide = client.provide.bind(client);
  const provideBatch = client.provideBatch.bind(client);
  const histogram = childCache(metrics.providerDuration);
  client.provide = async (endpoint: string, request: ProvisionRequestBody): Promise<ProviderReply> => {
    const started = performance.now();
    const reply = await provide(endpoint, request);
    histogram(agencyOf(request), 'single', reply.kind).observe((performance.now() - started) / 1000);
    return reply;
  };
  client.provideBatch = async (endpoint: string, requests: readonly ProvisionRequestBody[]): Promise<ProviderReply[]> => {
    const started = performance.now();
    const replies = await provideBatch(endpoint, requests);
    // One call for the batch: its outcome is `failed` when the call failed as a whole, else `answered`.
    const outcome = replies.length > 0 && replies.every((r) => r.kind === 'failed') ? 'failed' : 'answered';
    histogram(agencyOf(requests[0]), 'batch', outcome).observe((performance.now() - started) / 1000);
    return replies;
  };
}

/**
 * Counts the code mapper's fallbacks from outside it: the mapper the hub translates with is wrapped so
 * that each call, once answered, looks at the mapper's mode (as readiness reports it). A call that ends
 * with the mapper degraded was answered by the store; a change from `redis` to `degraded` is a trip of
 * the breaker.
 */
function instrumentMapper(hubMapper: HubCodeMapper, metrics: HubMetrics): void {
  const inner: CodeMapper = hubMapper.mapper;
  const health = (): CodeMapperHealth['mode'] => hubMapper.health().mode;
  const counters = {
    resolve: metrics.mapperFallbacks.labels('resolve'),
    codeFor: metrics.mapperFallbacks.labels('codeFor'),
    translate: metrics.mapperFallbacks.labels('translate'),
  };
  let last = health();
  const seen = (counter: (typeof counters)[keyof typeof counters]) => {
    const mode = health();
    if (mode === 'degraded') counter.inc();
    if (last === 'redis' && mode === 'degraded') metrics.mapperTrips.inc();
    last = mode;
  };
  const counted: CodeMapper = {
    resolve: async (a, c) => {
      const r = await inner.resolve(a, c);
      seen(counters.resolve);
      return r;
    },
    resolveMany: async (a, cs) => {
      const r = await inner.resolveMany(a, cs);
      seen(counters.resolve);
      return r;
    },
    codeFor: async (s, a) => {
      const r = await inner.codeFor(s, a);
      seen(counters.codeFor);
      return r;
    },
    codeForMany: async (a, ss) => {
      const r = await inner.codeForMany(a, ss);
      seen(counters.codeFor);
      return r;
    },
    translate: async (f, c, t) => {
      const r = await inner.translate(f, c, t);
      seen(counters.translate);
      return r;
    },
    translateMany: async (f, cs, t) => {
      const r = await inner.translateMany(f, cs, t);
      seen(counters.translate);
      return r;
    },
  };
  // The hub reads `mapper` at every call; an own property of the one instance takes the getter's place.
  Object.defineProperty(hubMapper, 'mapper', { value: counted, configurable: true });
}

type BatchObserving = EventStore & { observeBatches(observer: HubMetrics['observeBatch'] | undefined): void };

/**
 * The store that commits the batches: EVENT_STORE itself on SQLite, or the KurrentDB store beneath the
 * wrappers of a scaled hub (the key-ring view, the leader gate), each of which names what it wraps `raw`.
 */
function batchedStoreOf(store: EventStore): BatchObserving | undefined {
  let current: unknown = store;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    if (typeof (current as Partial<BatchObserving>).observeBatches === 'function') return current as BatchObserving;
    current = (current as { raw?: unknown }).raw;
  }
  return undefined;
}

/** Runs `read` and answers undefined when the part it reads is not there (yet), instead of failing the scrape. */
function maybe<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/**
 * The hub's Prometheus metrics (docs/observability.md): a registry of its own, the HTTP histogram in an
 * onResponse hook, the ledger's group-commit hook, the provider calls and the mapper's fallbacks, and the
 * gauges read at scrape time from the running parts' public state; `GET /metrics` answers the text
 * exposition format. Called by configureHubApp, so main.ts and the tests get the same wiring.
 */
export function installHubMetrics(app: NestFastifyApplication, config: HubConfig): HubMetrics {
  const metrics = new HubMetrics();
  BY_APP.set(app, metrics);
  const fastify = app.getHttpAdapter().getInstance();
  instrumentHttp(fastify, metrics.httpDuration);

  const store = app.get<EventStore>(EVENT_STORE, { strict: false });
  batchedStoreOf(store)?.observeBatches(metrics.observeBatch);
  instrumentProviderClient(app.get(ProviderClient, { strict: false }), metrics);
  const stages = new Map(QUERY_STAGES.map((stage) => [stage, metrics.queryStage.labels(stage)] as const));
  app.get(QueryRunner, { strict: false }).observeStages((stage: QueryStage, seconds: number) => stages.get(stage)!.observe(seconds));
  const mapper = app.get(HubCodeMapper, { strict: false });
  instrumentMapper(mapper, metrics);
  const follower = app.get(TreeFollower, { strict: false });
  const signer = app.get(CheckpointSigner, { strict: false });
  const relay = app.get(EventRelay, { strict: false });
  const rateLimits = app.get(RateLimits, { strict: false });
  const topic = config.kafka?.topic;

  metrics.bind({
    head: () => store.head(),
    openSerials: async () => (await store.openSerials()).length,
    treeSize: () => maybe(() => follower.projection.size),
    latestCheckpoint: () => {
      const inTree = maybe(() => follower.projection.latestCheckpoint());
      const signed = signer.lastSigned;
      // The one this hub signed last may not be hashed into the tree yet: the newer of the two.
      if (signed !== undefined && (inTree === undefined || signed.size > inTree.size)) return signed;
      return inTree;
    },
    mapper: () => {
      const h = mapper.health();
      return { mode: h.mode, breaker: h.breaker };
    },
    rateLimits: () => ({ mode: rateLimits.health().mode, fallbacks: rateLimits.fallbacks, fallbackDecisions: rateLimits.fallbackDecisions }),
    relay: async () => {
      if (topic === undefined) return undefined;
      const checkpoint = await relay.checkpoint();
      return checkpoint === undefined ? undefined : { topic, checkpoint };
    },
    now: () => Date.now(),
  });

  installPushMetrics(metrics.registry, app.get(PushDelivery, { strict: false }));

  fastify.get(METRICS_PATH, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
  return metrics;
}
