import type { AgencyCode, SubjectId } from '#linkage';
import type { CodeMapper, Translation } from './code-mapper.port.js';
import { MapperUnavailableError } from './errors.js';

/**
 * A mapper that is still being opened, e.g. while Redis is unreachable at boot (node-redis keeps
 * reconnecting in the background). Until `opening` resolves, every call fails with MAPPER_UNAVAILABLE,
 * so a FallbackCodeMapper answers from the store; afterwards every call goes to the opened mapper.
 */
export class PendingCodeMapper implements CodeMapper {
  #mapper: CodeMapper | undefined;
  #failure: unknown;

  constructor(opening: Promise<CodeMapper>) {
    opening.then(
      (m) => {
        this.#mapper = m;
      },
      (error: unknown) => {
        this.#failure = error;
      },
    );
  }

  get ready(): boolean {
    return this.#mapper !== undefined;
  }

  #get(): CodeMapper {
    if (this.#mapper) return this.#mapper;
    const why = this.#failure instanceof Error ? `: ${this.#failure.message}` : '';
    throw new MapperUnavailableError(`the Redis mapper is not open yet${why}`, this.#failure);
  }

  async resolve(agencyId: string, code: string): Promise<SubjectId | undefined> {
    return this.#get().resolve(agencyId, code);
  }
  async resolveMany(agencyId: string, codes: readonly string[]): Promise<(SubjectId | undefined)[]> {
    return this.#get().resolveMany(agencyId, codes);
  }
  async codeFor(subjectId: string, agencyId: string): Promise<AgencyCode | undefined> {
    return this.#get().codeFor(subjectId, agencyId);
  }
  async codeForMany(agencyId: string, subjectIds: readonly string[]): Promise<(AgencyCode | undefined)[]> {
    return this.#get().codeForMany(agencyId, subjectIds);
  }
  async translate(fromAgencyId: string, code: string, toAgencyId: string): Promise<Translation> {
    return this.#get().translate(fromAgencyId, code, toAgencyId);
  }
  async translateMany(fromAgencyId: string, codes: readonly string[], toAgencyId: string): Promise<Translation[]> {
    return this.#get().translateMany(fromAgencyId, codes, toAgencyId);
  }
}
