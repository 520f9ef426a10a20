import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS, appHttpMetrics } from '#metrics';

/** Every metric name starts with this (process metrics included). */
export { METRIC_PREFIX } from '#metrics';

export const MAPPER_MODES = ['redis', 'degraded', 'store'] as const;
export const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;
export const PROVIDER_OUTCOMES = ['answered', 'refused', 'failed'] as const;
export const RATE_LIMIT_MODES = ['redis', 'degraded', 'local', 'off'] as const;

/**
 * What the scrape-time gauges read, each from a public API of the running hub. Each may be undefined
 * (a part not running, e.g. no Kafka relay): the gauge is then absent or NaN, never made up.
 */
export interface HubMetricSources {
  /** Events in the log (EventStore.head()). */
  head(): Promise<number>;
  /** Serials begun and not yet terminal (EventStore.openSerials().length). */
  openSerials(): Promise<number>;
  /** Events the Merkle tree covers (TreeFollower.projection.size). */
  treeSize(): number | undefined;
  /** The latest signed checkpoint known to this hub (its time in ms since the epoch, and its size). */
  latestCheckpoint(): { readonly timeMs: number; readonly size: number } | undefined;
  /** The code mapper's mode as readiness reports it. */
  mapper(): { readonly mode: (typeof MAPPER_MODES)[number]; readonly breaker?: (typeof BREAKER_STATES)[number] | undefined } | undefined;
  /** The rate limiter as readiness reports it: its mode, the fallbacks to local budgets, and the decisions taken locally in them. */
  rateLimits(): { readonly mode: (typeof RATE_LIMIT_MODES)[number]; readonly fallbacks: number; readonly fallbackDecisions: number } | undefined;
  /** The Kafka relay's topic and checkpoint (last position Kafka acknowledged), when the relay runs. */
  relay(): Promise<{ readonly topic: string; readonly checkpoint: number } | undefined>;
  /** Milliseconds since the epoch, now. */
  now(): number;
}

/** The hub's metrics on one registry of its own (several hubs can live in one process, as in the tests). */
export class HubMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'route' | 'method' | 'status_class'>;
  readonly batchEvents: Histogram;
  readonly batchAppends: Histogram;
  readonly batchCommit: Histogram<'outcome'>;
  readonly appendedEvents: Counter;
  readonly providerDuration: Histogram<'agency' | 'call' | 'outcome'>;
  readonly queryStage: Histogram<'stage'>;
  readonly mapperFallbacks: Counter<'operation'>;
  readonly mapperTrips: Counter;
  readonly grpcDuration: Histogram<'method' | 'code'>;
  #sources: HubMetricSources | undefined;
  readonly #committed: ReturnType<Histogram<'outcome'>['labels']>;
  readonly #commitFailed: ReturnType<Histogram<'outcome'>['labels']>;

  constructor() {
    const registers = [this.registry];
    this.httpDuration = appHttpMetrics(this.registry);
    this.batchEvents = new Histogram({
      name: 'linkage_ledger_batch_events',
      help: 'Events per group-committed batch of the ledger.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192],
      registers,
    });
    this.batchAppends = new Histogram({
      name: 'linkage_ledger_batch_appends',
      help: 'Append requests per group-committed batch of the ledger.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    });
    this.batchCommit = new Histogram({
      name: 'linkage_ledger_batch_commit_seconds',
      help: 'Time from planning a batch to its durable commit (outcome committed) or its refusal as a whole (failed).',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.#committed = this.batchCommit.labels('committed');
    this.#commitFailed = this.batchCommit.labels('failed');
    this.appendedEvents = new Counter({ name: 'linkage_ledger_appended_events_total', help: 'Events in batches committed by this process.', registers });
    this.providerDuration = new Histogram({
      name: 'linkage_provider_request_duration_seconds',
      help: "The hub's calls to intermediate servers, by provider agency, call (single or batch) and outcome (answered, refused, failed).",
      labelNames: ['agency', 'call', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queryStage = new Histogram({
      name: 'linkage_query_stage_seconds',
      help:
        "Where a query request's time goes in the hub, by step: translate (the views' catch-up, the code mapper), record (decisions, sealing, first append until durable), " +
        'provider (the provision call, its wait to be coalesced included), end (the outcomes\' append until durable). The rest of the HTTP time is the HTTP pipeline.',
      labelNames: ['stage'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.mapperFallbacks = new Counter({
      name: 'linkage_mapper_fallback_calls_total',
      help: 'Code mapper calls answered while the mapper was degraded (Redis configured but not answering: the store answered), by operation.',
      labelNames: ['operation'],
      registers,
    });
    this.mapperTrips = new Counter({ name: 'linkage_mapper_breaker_trips_total', help: "Times the code mapper's circuit breaker opened (Redis answering, then not).", registers });

    this.grpcDuration = new Histogram({
      name: 'linkage_grpc_request_duration_seconds',
      help: 'gRPC calls answered, by full method path and status code: time from the call to its status sent.',
      labelNames: ['method', 'code'],
      buckets: LATENCY_BUCKETS,
      registers,
    });

    const sources = () => this.#sources;
    new Gauge({
      name: 'linkage_ledger_head_events',
      help: 'Events in the log (the next position).',
      registers,
      async collect() {
        const s = sources();
        this.set(s === undefined ? Number.NaN : await s.head());
      },
    });
    new Gauge({
      name: 'linkage_ledger_open_serials',
      help: 'Serials begun and not yet ended by a terminal event (commands in flight; after a crash, those start-up recovery voids).',
      registers,
      async collect() {
        const s = sources();
        this.set(s === undefined ? Number.NaN : await s.openSerials());
      },
    });
    new Gauge({
      name: 'linkage_tree_size_events',
      help: 'Events the Merkle tree covers.',
      registers,
      collect() {
        this.set(sources()?.treeSize() ?? Number.NaN);
      },
    });
    new Gauge({
      name: 'linkage_tree_lag_events',
      help: 'Events in the log not yet covered by the Merkle tree (store head minus tree size).',
      registers,
      async collect() {
        const s = sources();
        const size = s?.treeSize();
        this.set(s === undefined || size === undefined ? Number.NaN : Math.max(0, (await s.head()) - size));
      },
    });
    new Gauge({
      name: 'linkage_checkpoint_age_seconds',
      help: 'Seconds since the time of the latest signed checkpoint (NaN before the first).',
      registers,
      collect() {
        const s = sources();
        const latest = s?.latestCheckpoint();
        this.set(s === undefined || latest === undefined ? Number.NaN : Math.max(0, (s.now() - latest.timeMs) / 1000));
      },
    });
    new Gauge({
      name: 'linkage_checkpoint_size_events',
      help: 'Tree size of the latest signed checkpoint (NaN before the first).',
      registers,
      collect() {
        this.set(sources()?.latestCheckpoint()?.size ?? Number.NaN);
      },
    });
    new Gauge({
      name: 'linkage_mapper_mode',
      help: 'The code mapper mode as readiness reports it: 1 for the current one of redis, degraded (Redis configured, the store answers), store (no Redis configured).',
      labelNames: ['mode'],
      registers,
      collect() {
        const mode = sources()?.mapper()?.mode;
        for (const m of MAPPER_MODES) this.set({ mode: m }, m === mode ? 1 : 0);
      },
    });
    new Gauge({
      name: 'linkage_mapper_breaker_state',
      help: "The code mapper's circuit breaker in front of Redis: 1 for the current one of closed, open, half-open (absent without Redis).",
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const breaker = sources()?.mapper()?.breaker;
        if (breaker !== undefined) for (const b of BREAKER_STATES) this.set({ state: b }, b === breaker ? 1 : 0);
      },
    });
    new Gauge({
      name: 'linkage_rate_limit_mode',
      help: 'Where the rate limits are decided, as readiness reports it: 1 for the current one of redis (budgets shared in Redis), degraded (Redis configured but not answering: this hub\'s own budgets, the fallback), local (no Redis: this hub\'s own), off.',
      labelNames: ['mode'],
      registers,
      collect() {
        const mode = sources()?.rateLimits()?.mode;
        for (const m of RATE_LIMIT_MODES) this.set({ mode: m }, m === mode ? 1 : 0);
      },
    });
    new Counter({
      name: 'linkage_rate_limit_fallbacks_total',
      help: 'Times Redis stopped answering the rate limiter and its decisions fell back to this hub\'s own budgets (one per outage).',
      registers,
      collect() {
        this.reset();
        this.inc(sources()?.rateLimits()?.fallbacks ?? 0);
      },
    });
    new Counter({
      name: 'linkage_rate_limit_fallback_decisions_total',
      help: 'Rate-limit decisions taken by this hub\'s own limiter although the budgets are to be kept in Redis (Redis not answering, not connected yet, or asked again only once a second after a failure).',
      registers,
      collect() {
        this.reset();
        this.inc(sources()?.rateLimits()?.fallbackDecisions ?? 0);
      },
    });
    new Gauge({
      name: 'linkage_relay_lag_events',
      help: 'Events in the log not yet acknowledged by Kafka, per topic (absent when the relay does not run).',
      labelNames: ['topic'],
      registers,
      async collect() {
        this.reset();
        const s = sources();
        const relay = await s?.relay();
        if (s !== undefined && relay !== undefined) this.set({ topic: relay.topic }, Math.max(0, (await s.head()) - (relay.checkpoint + 1)));
      },
    });
  }

  /** Where the scrape-time gauges read from (once the hub's parts exist). */
  bind(sources: HubMetricSources): void {
    this.#sources = sources;
  }

  /** The group-commit hook of the ledger (BatchedEventStore.observeBatches). */
  readonly observeBatch = (appends: number, events: number, commitSeconds: number, failed: boolean): void => {
    this.batchAppends.observe(appends);
    this.batchEvents.observe(events);
    (failed ? this.#commitFailed : this.#committed).observe(commitSeconds);
    if (!failed) this.appendedEvents.inc(events);
  };
}
