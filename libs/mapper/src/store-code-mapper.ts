import type { EventStore } from '#ledger';
import type { AgencyCode, SubjectId } from '#linkage';
import type { CodeMapper, MappingEntry, Translation } from './code-mapper.port.js';
import { InMemoryCodeMapper } from './in-memory-code-mapper.js';

/**
 * Answers from the event store itself: an in-memory index of AgencyCodeIssued events that catches up
 * with the log before every answer. Slower and memory-hungry, but it needs nothing but the store: it is
 * what FallbackCodeMapper answers with while Redis is down.
 */
export class StoreCodeMapper implements CodeMapper {
  readonly #store: EventStore;
  readonly #index = new InMemoryCodeMapper();
  readonly #pageSize: number;
  #catchingUp: Promise<void> | undefined;

  constructor(store: EventStore, options: { readonly pageSize?: number } = {}) {
    this.#store = store;
    this.#pageSize = options.pageSize ?? 10_000;
  }

  /** Position of the last event indexed. */
  get position(): number {
    return this.#index.position;
  }

  /** Reads the log from where the index stopped up to its head. Concurrent callers share one read. */
  catchUp(): Promise<void> {
    this.#catchingUp ??= this.#read().finally(() => {
      this.#catchingUp = undefined;
    });
    return this.#catchingUp;
  }

  async #read(): Promise<void> {
    for (;;) {
      const page = await this.#store.readAll({ fromPosition: this.#index.position + 1, maxCount: this.#pageSize });
      if (page.length === 0) return;
      this.#index.applySync(page);
    }
  }

  async resolve(agencyId: string, code: string): Promise<SubjectId | undefined> {
    await this.catchUp();
    return this.#index.resolve(agencyId, code);
  }

  async resolveMany(agencyId: string, codes: readonly string[]): Promise<(SubjectId | undefined)[]> {
    await this.catchUp();
    return this.#index.resolveMany(agencyId, codes);
  }

  async codeFor(subjectId: string, agencyId: string): Promise<AgencyCode | undefined> {
    await this.catchUp();
    return this.#index.codeFor(subjectId, agencyId);
  }

  async codeForMany(agencyId: string, subjectIds: readonly string[]): Promise<(AgencyCode | undefined)[]> {
    await this.catchUp();
    return this.#index.codeForMany(agencyId, subjectIds);
  }

  async translate(fromAgencyId: string, code: string, toAgencyId: string): Promise<Translation> {
    await this.catchUp();
    return this.#index.translate(fromAgencyId, code, toAgencyId);
  }

  async translateMany(fromAgencyId: string, codes: readonly string[], toAgencyId: string): Promise<Translation[]> {
    await this.catchUp();
    return this.#index.translateMany(fromAgencyId, codes, toAgencyId);
  }

  async entries(): Promise<MappingEntry[]> {
    await this.catchUp();
    return this.#index.entries();
  }
}
