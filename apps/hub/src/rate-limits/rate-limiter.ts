/**
 * The rate limiter port: one budget per key (an agency, a citizen, a source), a generic cell rate
 * algorithm (GCRA, the token bucket without a refill timer): `perSecond` requests per second on average,
 * up to `burst` at once. A key's whole state is one number, its theoretical arrival time (TAT).
 *
 * Contract: `take` MUST decide atomically per key (two hubs, or two requests of one hub, never both spend
 * the last unit of a budget), and MUST answer how long until the next request of that key would pass.
 */
export interface RateLimit {
  /** Requests per second on average (> 0). */
  readonly perSecond: number;
  /** Requests allowed at once after a quiet period (≥ 1). */
  readonly burst: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  /** When refused: milliseconds until the next request of this key would pass (> 0); 0 when allowed. */
  readonly retryAfterMs: number;
}

export interface RateLimiter {
  /** Spends one unit of `key`'s budget, or refuses. */
  take(key: string, limit: RateLimit): Promise<RateDecision>;
}

/** The emission interval T (ms between requests at the average rate) and the tolerance τ = T × burst. */
export function gcraParameters(limit: RateLimit): { readonly intervalMs: number; readonly toleranceMs: number } {
  const intervalMs = 1000 / limit.perSecond;
  return { intervalMs, toleranceMs: intervalMs * limit.burst };
}

/**
 * One GCRA step, pure: given the key's stored TAT (undefined: never seen) and the time, the decision and
 * the TAT to store (unchanged when refused). Precondition: limit.perSecond > 0, limit.burst ≥ 1.
 */
export function gcraStep(tat: number | undefined, nowMs: number, limit: RateLimit): { readonly decision: RateDecision; readonly tat: number } {
  const { intervalMs, toleranceMs } = gcraParameters(limit);
  const base = tat === undefined || tat < nowMs ? nowMs : tat;
  const next = base + intervalMs;
  const allowAt = next - toleranceMs;
  if (allowAt > nowMs) return { decision: { allowed: false, retryAfterMs: Math.max(1, Math.ceil(allowAt - nowMs)) }, tat: base };
  return { decision: { allowed: true, retryAfterMs: 0 }, tat: next };
}

export interface LocalRateLimiterOptions {
  /** Keys kept at most; past it, expired keys are dropped, then the oldest (which then start afresh). Default 100,000. */
  readonly maxKeys?: number;
  readonly now?: () => number;
}

/**
 * The limiter of one hub process (the embedded default, and the fallback while Redis is unreachable): a
 * map of TATs. Its memory is bounded by `maxKeys`, whatever the number of callers: a key whose TAT has
 * passed holds nothing a fresh key would not, so it is dropped first.
 */
export class LocalRateLimiter implements RateLimiter {
  readonly #tats = new Map<string, number>();
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor(options: LocalRateLimiterOptions = {}) {
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  take(key: string, limit: RateLimit): Promise<RateDecision> {
    return Promise.resolve(this.takeSync(key, limit));
  }

  takeSync(key: string, limit: RateLimit): RateDecision {
    const now = this.#now();
    const step = gcraStep(this.#tats.get(key), now, limit);
    if (step.decision.allowed) {
      if (!this.#tats.has(key) && this.#tats.size >= this.#maxKeys) this.#evict(now);
      this.#tats.set(key, step.tat);
    }
    return step.decision;
  }

  /** Keys held now (for tests of the bound). */
  get size(): number {
    return this.#tats.size;
  }

  #evict(now: number): void {
    for (const [k, tat] of this.#tats) if (tat <= now) this.#tats.delete(k);
    // Still nearly full: the oldest tenth goes (Map order is insertion order), so that a flood of new keys
    // scans the map once per tenth of it, not once per request; those keys start afresh if they return.
    const over = this.#tats.size - Math.floor(this.#maxKeys * 0.9);
    if (over <= 0) return;
    let n = 0;
    for (const k of this.#tats.keys()) {
      if (n++ >= over) break;
      this.#tats.delete(k);
    }
  }
}
