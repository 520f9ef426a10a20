import type { AgencyCode, SubjectId } from '#linkage';
import type { CodeMapper, Translation } from './code-mapper.port.js';
import { MapperUnavailableError, isMapperUnavailable } from './errors.js';

export interface MapperHealth {
  /** `primary`: Redis answers. `degraded`: Redis is unreachable and the store answers (slower). */
  readonly mode: 'primary' | 'degraded';
  readonly degraded: boolean;
  /** When the current mode began (ISO-8601). */
  readonly since: string;
  /** Why the mapper is degraded: the last failure's message. */
  readonly reason?: string;
  /**
   * The circuit breaker: `closed` (calls go to the primary), `open` (calls go straight to the store, no
   * wait on the primary) or `half-open` (the cool-down is over and one probe call is trying the primary).
   */
  readonly breaker: BreakerState;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface FallbackCodeMapperOptions {
  /**
   * The breaker's cool-down: once open (the primary failed or timed out), calls go to the store without
   * asking the primary for this long; then one call probes it (half-open). Default 1000 ms.
   */
  readonly retryAfterMs?: number;
  /**
   * Start with the breaker open and this reason (e.g. the Redis mapper is still being opened), so that
   * health says `degraded` from the start instead of `primary` until the first call. `primaryAnswered()`
   * closes it. Default: start closed.
   */
  readonly startOpen?: string;
  /**
   * Ask the fallback again for what the primary did not find. The Redis projection trails the log by
   * a few milliseconds (and by more after an outage), so a code issued just now may be missing there;
   * the store has it. Default true.
   */
  readonly confirmMisses?: boolean;
  /**
   * A stalled primary (connections open, no answer) trips the breaker after this long instead of after its
   * own timeout: the call that waited this long is answered by the store, the breaker opens, and the
   * primary's late answer is ignored. So a stall costs the calls in flight at that moment this many
   * milliseconds, not a whole timeout. Undefined: wait for the primary's own timeout.
   */
  readonly slowCallMs?: number;
  readonly now?: () => number;
  /** Told of every change of mode (e.g. to log it, or to restart the projection runner on recovery). */
  readonly onChange?: (health: MapperHealth) => void;
}

/**
 * The primary mapper (Redis) when it answers, the fallback (the store) when it cannot: translation keeps
 * working while Redis is down, and `health()` says so for the readiness endpoint. Only MAPPER_UNAVAILABLE
 * switches over; any other error is the caller's to see.
 *
 * A circuit breaker: the first MAPPER_UNAVAILABLE (refused, or a stalled Redis that made the call wait out
 * its timeout, or `slowCallMs`) opens it, and calls then go straight to the store without waiting on the
 * primary. After the cool-down (`retryAfterMs`) one call also probes the primary in the background
 * (half-open) while the store answers it and every other call; the probe's answer closes the breaker, its
 * failure opens it for another cool-down. So a stalled Redis makes only the calls already in flight when
 * it stalled wait: for the timeout, or for `slowCallMs` when it is set.
 */
export class FallbackCodeMapper implements CodeMapper {
  readonly #primary: CodeMapper;
  readonly #fallback: CodeMapper;
  readonly #retryAfterMs: number;
  readonly #confirmMisses: boolean;
  readonly #now: () => number;
  readonly #slowCallMs: number | undefined;
  readonly #onChange: ((health: MapperHealth) => void) | undefined;
  #health: MapperHealth;
  #retryAt = 0;
  #probing = false;

  constructor(primary: CodeMapper, fallback: CodeMapper, options: FallbackCodeMapperOptions = {}) {
    this.#primary = primary;
    this.#fallback = fallback;
    this.#retryAfterMs = options.retryAfterMs ?? 1000;
    this.#confirmMisses = options.confirmMisses ?? true;
    this.#now = options.now ?? Date.now;
    this.#slowCallMs = options.slowCallMs;
    this.#onChange = options.onChange;
    const since = new Date(this.#now()).toISOString();
    this.#health =
      options.startOpen === undefined
        ? { mode: 'primary', degraded: false, since, breaker: 'closed' }
        : { mode: 'degraded', degraded: true, since, reason: options.startOpen, breaker: 'open' };
  }

  /** The primary is known to answer (e.g. it has just been opened): close the breaker now. */
  primaryAnswered(): void {
    if (this.#health.degraded) this.#set({ mode: 'primary', degraded: false, since: new Date(this.#now()).toISOString(), breaker: 'closed' });
  }

  health(): MapperHealth {
    return this.#health;
  }

  get degraded(): boolean {
    return this.#health.degraded;
  }

  async resolve(agencyId: string, code: string): Promise<SubjectId | undefined> {
    return (await this.resolveMany(agencyId, [code]))[0];
  }

  resolveMany(agencyId: string, codes: readonly string[]): Promise<(SubjectId | undefined)[]> {
    return this.#run(
      (m, subset) => m.resolveMany(agencyId, subset),
      codes,
      (r) => r === undefined,
    );
  }

  async codeFor(subjectId: string, agencyId: string): Promise<AgencyCode | undefined> {
    return (await this.codeForMany(agencyId, [subjectId]))[0];
  }

  codeForMany(agencyId: string, subjectIds: readonly string[]): Promise<(AgencyCode | undefined)[]> {
    return this.#run(
      (m, subset) => m.codeForMany(agencyId, subset),
      subjectIds,
      (r) => r === undefined,
    );
  }

  async translate(fromAgencyId: string, code: string, toAgencyId: string): Promise<Translation> {
    return (await this.translateMany(fromAgencyId, [code], toAgencyId))[0]!;
  }

  translateMany(fromAgencyId: string, codes: readonly string[], toAgencyId: string): Promise<Translation[]> {
    return this.#run(
      (m, subset) => m.translateMany(fromAgencyId, subset, toAgencyId),
      codes,
      (r) => r.status !== 'translated',
    );
  }

  async #run<R>(ask: (mapper: CodeMapper, inputs: readonly string[]) => Promise<R[]>, inputs: readonly string[], isMiss: (r: R) => boolean): Promise<R[]> {
    if (this.#health.degraded) {
      // Open: the store answers. After the cool-down one call also probes the primary, in the background:
      // the store answers that call too, so no query waits on a primary that may still be stalled.
      if (!this.#probing && this.#now() >= this.#retryAt) this.#probe(ask, inputs);
      return ask(this.#fallback, inputs);
    }
    let answers: R[];
    try {
      answers = await this.#withinSlowCall(ask(this.#primary, inputs));
    } catch (error) {
      if (!isMapperUnavailable(error)) throw error;
      this.#degrade(error.message);
      return ask(this.#fallback, inputs);
    }
    if (!this.#confirmMisses) return answers;
    const missed = answers.flatMap((a, i) => (isMiss(a) ? [i] : []));
    if (missed.length === 0) return answers;
    const confirmed = await ask(this.#fallback, missed.map((i) => inputs[i]!));
    missed.forEach((i, k) => {
      answers[i] = confirmed[k]!;
    });
    return answers;
  }

  /** Half-open: one call to the primary; its answer closes the breaker, its failure opens it for another cool-down. */
  #probe<R>(ask: (mapper: CodeMapper, inputs: readonly string[]) => Promise<R[]>, inputs: readonly string[]): void {
    this.#probing = true;
    this.#health = { ...this.#health, breaker: 'half-open' };
    this.#withinSlowCall(ask(this.#primary, inputs))
      .then(
        () => this.primaryAnswered(),
        (error: unknown) => this.#degrade(error instanceof Error ? error.message : String(error)),
      )
      .finally(() => {
        this.#probing = false;
      });
  }

  /** The primary's answer, or MAPPER_UNAVAILABLE once it took longer than `slowCallMs` (its late answer, or failure, is then dropped). */
  #withinSlowCall<R>(call: Promise<R>): Promise<R> {
    const limit = this.#slowCallMs;
    if (limit === undefined) return call;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => reject(new MapperUnavailableError(`no answer within ${limit} ms (stalled)`)), limit);
      call.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  #degrade(reason: string): void {
    this.#retryAt = this.#now() + this.#retryAfterMs;
    if (this.#health.degraded) {
      this.#health = { ...this.#health, reason, breaker: 'open' };
      return;
    }
    this.#set({ mode: 'degraded', degraded: true, since: new Date(this.#now()).toISOString(), reason, breaker: 'open' });
  }

  #set(health: MapperHealth): void {
    this.#health = health;
    this.#onChange?.(health);
  }
}
