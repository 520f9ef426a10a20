import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { EventStore } from '#ledger';
import { EventSealer, OpeningEventStore } from '#sealing';
import {
  CodeLocator,
  FallbackCodeMapper,
  PendingCodeMapper,
  RedisCodeMapper,
  clusterRedisLike,
  createMapperRedisClient,
  createMapperRedisCluster,
  follow,
  withoutErased,
  type BreakerState,
  type CodeMapper,
  type MapperHealth,
  type RedisLike,
} from '#mapper';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { loadOrCreateInstanceId } from './hub-secrets.js';
import { LinkageViews } from './linkage-views.js';

export interface CodeMapperHealth {
  /** `redis`: Redis answers; `degraded`: Redis is configured but unreachable, the store answers (slower); `store`: no Redis configured. */
  readonly mode: 'redis' | 'degraded' | 'store';
  /** The circuit breaker in front of Redis (absent without Redis): `open` and `half-open` are `degraded`. */
  readonly breaker?: BreakerState;
  readonly since?: string;
  readonly reason?: string;
}

type RedisClient = ReturnType<typeof createMapperRedisClient> | ReturnType<typeof createMapperRedisCluster>;

/**
 * The hub's code mapper (I7: translation is internal). Redis when configured and reachable, kept current
 * as a projection of AgencyCodeIssued events (I8) by a follower that restarts after every failure from
 * its stored checkpoint; the store itself while Redis is down (README, Architecture), and for a code so new that the
 * projection has not reached it yet. "The store" is the code index in the hub's lookup file (LinkageViews),
 * caught up with the log before every answer: nothing per code is held in memory (I11).
 */
@Injectable()
export class HubCodeMapper implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('CodeMapper');
  readonly #store: EventStore;
  readonly #config: HubConfig;
  readonly #locator: CodeLocator;
  readonly #abort = new AbortController();
  #client: RedisClient | undefined;
  #redis: RedisCodeMapper | undefined;
  #fallback: FallbackCodeMapper | undefined;
  readonly #storeMapper: CodeMapper;
  #following: Promise<void> | undefined;

  constructor(@Inject(EVENT_STORE) raw: EventStore, config: HubConfig, locator: CodeLocator, sealer: EventSealer, views: LinkageViews) {
    // The Redis projection folds AgencyCodeIssued, whose subject and code are sealed in the log (I10): it reads them opened.
    const store = new OpeningEventStore(raw, sealer, new Set(['AgencyCodeIssued']));
    this.#store = store;
    this.#config = config;
    this.#locator = locator;
    this.#storeMapper = storeMapper(views);
    this.#answering = withoutErased({
      resolve: (a, c) => this.#current().resolve(a, c),
      resolveMany: (a, cs) => this.#current().resolveMany(a, cs),
      codeFor: (s, a) => this.#current().codeFor(s, a),
      codeForMany: (a, ss) => this.#current().codeForMany(a, ss),
      translate: (f, c, t) => this.#current().translate(f, c, t),
      translateMany: (f, cs, t) => this.#current().translateMany(f, cs, t),
    }, (subjectId) => sealer.isErased(subjectId));
  }

  #current(): CodeMapper {
    return this.#fallback ?? this.#storeMapper;
  }

  /** The mapper the hub translates with; people erased (their key shredded) translate to nothing. */
  get mapper(): CodeMapper {
    return this.#answering;
  }

  #answering: CodeMapper;

  health(): CodeMapperHealth {
    if (this.#fallback === undefined) return { mode: 'store' };
    const h: MapperHealth = this.#fallback.health();
    return { mode: h.degraded ? 'degraded' : 'redis', breaker: h.breaker, since: h.since, ...(h.reason === undefined ? {} : { reason: h.reason }) };
  }

  onModuleInit(): void {
    const { redisUrl, redisCluster, redisPrefix, redisTimeoutMs, redisCooldownMs, redisSlowMs } = this.#config.linkage;
    if (redisUrl === undefined && redisCluster === undefined) return;
    const prefix = redisPrefix ?? `ll-${loadOrCreateInstanceId(this.#config.dataDir)}`;
    // Data of another layout or code key is a stale projection: reset, then rebuilt from the log (I8).
    const open = (redis: RedisLike) => RedisCodeMapper.open(redis, { prefix, locator: this.#locator, onLayoutMismatch: 'reset', ...(redisTimeoutMs === undefined ? {} : { operationTimeoutMs: redisTimeoutMs }) });
    let opened: Promise<RedisCodeMapper>;
    if (redisCluster !== undefined) {
      opened = this.#openOnCluster(redisCluster, open);
    } else {
      const client = createMapperRedisClient({ url: redisUrl! });
      client.on('error', () => {}); // reconnection is node-redis' job; health() reports the outage
      this.#client = client;
      opened = client.connect().then(() => open(client));
    }
    const opening = opened.then((mapper) => {
      this.#redis = mapper;
      this.#fallback?.primaryAnswered();
      return this.#redis;
    });
    // Degraded until Redis is open (readiness tells the truth from the start), then Redis.
    this.#fallback = new FallbackCodeMapper(new PendingCodeMapper(opening), this.#storeMapper, {
      startOpen: 'the Redis mapper is not open yet',
      ...(redisCooldownMs === undefined ? {} : { retryAfterMs: redisCooldownMs }),
      ...(redisSlowMs === undefined ? {} : { slowCallMs: redisSlowMs }),
      onChange: (h) => (h.degraded ? this.logger.warn(`Redis unreachable, translating from the store: ${h.reason ?? ''}`) : this.logger.log('Redis answers again')),
    });
    opening.catch((error: unknown) => this.logger.warn(`Redis mapper not open: ${error instanceof Error ? error.message : String(error)}`));
    this.#following = this.#follow(opening);
  }

  /**
   * The mapper on a Redis Cluster. node-redis' cluster client gives up when no seed node answers, and a
   * cluster still forming (nodes up, slots not yet assigned) connects but refuses commands: so this tries
   * again (a new client each time, backing off up to 2 s) until the mapper opens or the hub stops. Once
   * open, each node's connection reconnects by itself and MOVED / ASK are followed.
   */
  async #openOnCluster(nodes: readonly string[], open: (redis: RedisLike) => Promise<RedisCodeMapper>): Promise<RedisCodeMapper> {
    for (let attempt = 0; ; attempt++) {
      const cluster = createMapperRedisCluster({ nodes });
      cluster.on('error', () => {});
      cluster.on('node-error', () => {}); // health() reports outages
      this.#client = cluster;
      try {
        await cluster.connect();
        return await open(clusterRedisLike(cluster));
      } catch (error) {
        try {
          cluster.destroy();
        } catch {
          // never opened
        }
        if (this.#abort.signal.aborted) throw error;
        if (attempt === 0) this.logger.warn(`Redis Cluster at ${nodes.join(',')} not usable yet, retrying: ${error instanceof Error ? error.message : String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)).unref());
        if (this.#abort.signal.aborted) throw error;
      }
    }
  }

  /** Keeps the Redis projection current; after a failure (Redis down), resumes from its checkpoint. */
  async #follow(opening: Promise<RedisCodeMapper>): Promise<void> {
    const signal = this.#abort.signal;
    const aborted = new Promise<undefined>((resolve) => signal.addEventListener('abort', () => resolve(undefined), { once: true }));
    const redis = await Promise.race([opening.catch(() => undefined), aborted]);
    while (!signal.aborted) {
      if (redis !== undefined) {
        try {
          await follow(this.#store, redis, { signal, onError: () => {} });
        } catch {
          // Redis unreachable or the ledger closing: wait, then resume from the stored checkpoint.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 500).unref());
      if (redis === undefined) return;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.#abort.abort();
    await this.#following?.catch(() => {});
    const client = this.#client;
    if (client === undefined) return;
    if (client.isReady) await client.close().catch(() => {});
    else {
      try {
        client.destroy();
      } catch {
        // a cluster client whose connect failed is already closed
      }
    }
  }
}

/** Translations from the lookup file's code index, after folding every event acknowledged so far. */
function storeMapper(views: LinkageViews): CodeMapper {
  const codes = () => views.codes;
  return {
    resolve: async (a, c) => (await views.catchUp(), codes().resolveSync(a, c)),
    resolveMany: async (a, cs) => (await views.catchUp(), cs.map((c) => codes().resolveSync(a, c))),
    codeFor: async (s, a) => (await views.catchUp(), codes().codeForSync(s, a)),
    codeForMany: async (a, ss) => (await views.catchUp(), ss.map((s) => codes().codeForSync(s, a))),
    translate: async (f, c, t) => (await views.catchUp(), codes().translateSync(f, c, t)),
    translateMany: async (f, cs, t) => (await views.catchUp(), cs.map((c) => codes().translateSync(f, c, t))),
  };
}
