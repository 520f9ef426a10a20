import type { AgencyCode, SubjectId } from '#linkage';
import type { CodeMapper, Translation } from './code-mapper.port.js';
import { isMapperUnavailable } from './errors.js';

export interface MapperHealth {
  /** `primary`: Redis answers. `degraded`: Redis is unreachable and the store answers (slower). */
  readonly mode: 'primary' | 'degraded';
  readonly degraded: boolean;
  /** When the current mode began (ISO-8601). */
  readonly since: string;
  /** Why the mapper is degraded: the last failure's message. */
  readonly reason?: string;
}

export interface FallbackCodeMapperOptions {
  /** While degraded, try the primary again after this long. Default 1000 ms. */
  readonly retryAfterMs?: number;
  /**
   * Ask the fallback again for what the primary did not find. The Redis projection trails the log by
   * a few milliseconds (and by more after an outage), so a code issued just now may be missing there;
   * the store has it. Default true.
   */
  readonly confirmMisses?: boolean;
  readonly now?: () => number;
  /** Told of every change of mode (e.g. to log it, or to restart the projection runner on recovery). */
  readonly onChange?: (health: MapperHealth) => void;
}

/**
 * The primary mapper (Redis) when it answers, the fallback (the store) when it cannot: translation keeps
 * working while Redis is down, and `health()` says so for the readiness endpoint. Only MAPPER_UNAVAILABLE
 * switches over; any other error is the caller's to see.
 */
export class FallbackCodeMapper implements CodeMapper {
  readonly #primary: CodeMapper;
  readonly #fallback: CodeMapper;
  readonly #retryAfterMs: number;
  readonly #confirmMisses: boolean;
  readonly #now: () => number;
  readonly #onChange: ((health: MapperHealth) => void) | undefined;
  #health: MapperHealth;
  #retryAt = 0;

  constructor(primary: CodeMapper, fallback: CodeMapper, options: FallbackCodeMapperOptions = {}) {
    this.#primary = primary;
    this.#fallback = fallback;
    this.#retryAfterMs = options.retryAfterMs ?? 1000;
    this.#confirmMisses = options.confirmMisses ?? true;
    this.#now = options.now ?? Date.now;
    this.#onChange = options.onChange;
    this.#health = { mode: 'primary', degraded: false, since: new Date(this.#now()).toISOString() };
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
    if (this.#health.degraded && this.#now() < this.#retryAt) return ask(this.#fallback, inputs);
    let answers: R[];
    try {
      answers = await ask(this.#primary, inputs);
    } catch (error) {
      if (!isMapperUnavailable(error)) throw error;
      this.#degrade(error.message);
      return ask(this.#fallback, inputs);
    }
    if (this.#health.degraded) this.#set({ mode: 'primary', degraded: false, since: new Date(this.#now()).toISOString() });
    if (!this.#confirmMisses) return answers;
    const missed = answers.flatMap((a, i) => (isMiss(a) ? [i] : []));
    if (missed.length === 0) return answers;
    const confirmed = await ask(this.#fallback, missed.map((i) => inputs[i]!));
    missed.forEach((i, k) => {
      answers[i] = confirmed[k]!;
    });
    return answers;
  }

  #degrade(reason: string): void {
    this.#retryAt = this.#now() + this.#retryAfterMs;
    if (this.#health.degraded) {
      this.#health = { ...this.#health, reason };
      return;
    }
    this.#set({ mode: 'degraded', degraded: true, since: new Date(this.#now()).toISOString(), reason });
  }

  #set(health: MapperHealth): void {
    this.#health = health;
    this.#onChange?.(health);
  }
}
