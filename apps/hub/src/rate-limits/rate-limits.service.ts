import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { createMapperRedisClient, createMapperRedisCluster } from '#mapper';
import { HubConfig } from '../config/hub-config.js';
import type { IdentifiedCaller } from '../linkage/authenticator.js';
import type { PrincipalKind, RateLimitSettings } from './rate-limit-settings.js';
import { LocalRateLimiter, type RateDecision, type RateLimit } from './rate-limiter.js';
import { RedisRateLimiter, type RedisSend } from './redis-rate-limiter.js';

/** A request over its principal's limit. */
export interface RateLimited {
  readonly kind: PrincipalKind;
  /** The principal: an agency id, a subject id (never recorded in clear), or an address. */
  readonly principal: string;
  readonly limit: RateLimit;
  readonly retryAfterMs: number;
}

/** Where the budgets are kept: this hub only, Redis, or this hub only for now because Redis does not answer. */
export interface RateLimitHealth {
  readonly mode: 'off' | 'local' | 'redis' | 'degraded';
  /** Degraded: since when, and why. */
  readonly since?: string;
  readonly reason?: string;
}

/** What readiness and /metrics say of the limiter: its mode, whether the budgets are shared, and the fallbacks so far. */
export interface RateLimitReadiness extends RateLimitHealth {
  /** True when the budgets are kept in Redis and Redis answers (mode `redis`): every hub on it shares them. */
  readonly shared: boolean;
  /** Times, since this hub started, that Redis stopped answering and decisions turned local (one per outage). */
  readonly fallbacks: number;
}

type RedisClient = ReturnType<typeof createMapperRedisClient> | ReturnType<typeof createMapperRedisCluster>;

/** How long a Redis that failed is left alone before a decision tries it again. */
const REST_MS = 1000;

/**
 * The rate limits of issue 15 item 2, one budget per agency, per citizen and per source (callers no
 * credential identifies), kept in Redis when the hub has one (so every hub on it shares them) and in this
 * process otherwise. The operator and the auditor are not limited. If Redis does not answer, this hub's
 * own limiter decides (fail open to local budgets, never refusing everyone), and it says so in `health()`
 * and in one log line each way.
 */
@Injectable()
export class RateLimits implements OnModuleInit, OnApplicationShutdown {
  readonly #logger = new Logger('RateLimits');
  readonly #settings: RateLimitSettings;
  readonly #local = new LocalRateLimiter();
  #redis: RedisRateLimiter | undefined;
  #client: RedisClient | undefined;
  #restUntil = 0;
  /** While degraded, one decision at a time asks Redis whether it answers again; the others stay local. */
  #probing = false;
  #degraded: { since: string; reason: string } | undefined;
  #closing = false;
  #fallbacks = 0;
  #fallbackDecisions = 0;

  constructor(private readonly config: HubConfig) {
    this.#settings = config.rateLimits;
  }

  /** True when any kind of principal is limited. */
  get enabled(): boolean {
    const s = this.#settings;
    return s.agency !== undefined || s.citizen !== undefined || s.source !== undefined || Object.values(s.agencies).some((l) => l !== null);
  }

  /** Connects to Redis, waiting at most the decision timeout (a Redis that is down never holds the start: decisions are local until it answers). */
  async onModuleInit(): Promise<void> {
    if (!this.enabled || !this.#settings.redis) return;
    const { redisUrl, redisCluster } = this.config.linkage;
    let connecting: Promise<unknown>;
    if (redisCluster !== undefined) {
      connecting = this.#openCluster(redisCluster);
    } else if (redisUrl !== undefined) {
      const client = createMapperRedisClient({ url: redisUrl });
      client.on('error', () => {}); // node-redis reconnects; health() and the log say when decisions are local
      this.#client = client;
      this.#redis = new RedisRateLimiter((_key, args) => client.sendCommand([...args]), this.#settings.redisPrefix);
      connecting = client.connect().catch(() => {});
    } else return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([connecting, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(this.#settings.redisTimeoutMs, 1000))))]);
    clearTimeout(timer);
  }

  async #openCluster(nodes: readonly string[]): Promise<void> {
    for (let attempt = 0; !this.#closing; attempt++) {
      const cluster = createMapperRedisCluster({ nodes });
      cluster.on('error', () => {});
      cluster.on('node-error', () => {});
      this.#client = cluster;
      try {
        await cluster.connect();
        const send: RedisSend = (key, args) => cluster.sendCommand(key, false, [...args]);
        this.#redis = new RedisRateLimiter(send, this.#settings.redisPrefix);
        return;
      } catch (error) {
        this.#fail(error);
        try {
          cluster.destroy();
        } catch {
          // never opened
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)).unref());
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.#closing = true;
    const client = this.#client;
    this.#client = undefined;
    this.#redis = undefined;
    if (client === undefined) return;
    if (client.isReady) await client.close().catch(() => {});
    else {
      try {
        client.destroy();
      } catch {
        // already closed
      }
    }
  }

  health(): RateLimitHealth {
    if (!this.enabled) return { mode: 'off' };
    if (this.#degraded !== undefined) return { mode: 'degraded', ...this.#degraded };
    if (this.#redisConfigured) {
      return this.#redis !== undefined && this.#client?.isReady === true ? { mode: 'redis' } : { mode: 'degraded', reason: 'Redis not connected yet' };
    }
    return { mode: 'local' };
  }

  /** The mode with whether the budgets are shared and how often decisions turned local (readiness, /metrics). */
  readiness(): RateLimitReadiness {
    const health = this.health();
    return { ...health, shared: health.mode === 'redis', fallbacks: this.#fallbacks };
  }

  /** Times Redis stopped answering and decisions turned local, since this hub started. */
  get fallbacks(): number {
    return this.#fallbacks;
  }

  /** Decisions this hub's own limiter took although the budgets are to be kept in Redis (Redis not answering, not connected yet, or resting after a failure). */
  get fallbackDecisions(): number {
    return this.#fallbackDecisions;
  }

  get #redisConfigured(): boolean {
    return this.#settings.redis && (this.config.linkage.redisUrl !== undefined || this.config.linkage.redisCluster !== undefined);
  }

  /** The budget a caller spends: undefined for the operator and the auditor, who are not limited. */
  principalOf(caller: IdentifiedCaller, source: string): { readonly kind: PrincipalKind; readonly principal: string } | undefined {
    switch (caller.kind) {
      case 'agency':
        return { kind: 'agency', principal: caller.agencyId };
      case 'citizen':
        return { kind: 'citizen', principal: caller.subjectId };
      case 'operator':
      case 'auditor':
        return undefined;
      case 'anonymous':
      case 'malformed':
      case 'unknown':
        return { kind: 'source', principal: source };
      default: {
        const never: never = caller;
        return never;
      }
    }
  }

  /** Spends one request of the caller's budget: undefined when it passes, else how long until one would. */
  async check(caller: IdentifiedCaller, source: string): Promise<RateLimited | undefined> {
    const who = this.principalOf(caller, source);
    if (who === undefined) return undefined;
    // An agency with a limit of its own (HUB_RATE_LIMIT_AGENCIES) has that one; null: not limited.
    const own = who.kind === 'agency' && Object.hasOwn(this.#settings.agencies, who.principal) ? this.#settings.agencies[who.principal] : undefined;
    const limit = own === undefined ? this.#settings[who.kind] : (own ?? undefined);
    if (limit === undefined) return undefined;
    const decision = await this.#take(`${who.kind}:${who.principal}`, limit);
    return decision.allowed ? undefined : { ...who, limit, retryAfterMs: decision.retryAfterMs };
  }

  async #take(key: string, limit: RateLimit): Promise<RateDecision> {
    const redis = this.#redis;
    if (redis === undefined || Date.now() < this.#restUntil || this.#probing) {
      if (this.#redisConfigured) this.#fallbackDecisions++;
      return this.#local.takeSync(key, limit);
    }
    // A stalled Redis costs the decisions in flight when it stalls, then one probe at a time, not every request.
    const probe = this.#degraded !== undefined;
    if (probe) this.#probing = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer within ${this.#settings.redisTimeoutMs} ms`)), this.#settings.redisTimeoutMs);
      });
      const decision = await Promise.race([redis.take(key, limit), deadline]);
      if (this.#degraded !== undefined) {
        this.#degraded = undefined;
        this.#logger.log('Redis answers again: rate limits are shared again');
      }
      return decision;
    } catch (error) {
      this.#fail(error);
      this.#fallbackDecisions++;
      return this.#local.takeSync(key, limit);
    } finally {
      clearTimeout(timer);
      if (probe) this.#probing = false;
    }
  }

  #fail(error: unknown): void {
    this.#restUntil = Date.now() + REST_MS;
    if (this.#degraded !== undefined || this.#closing) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.#degraded = { since: new Date().toISOString(), reason };
    this.#fallbacks++;
    this.#logger.warn(`Redis unreachable, rate limits are this hub's own until it answers: ${reason}`);
  }
}
