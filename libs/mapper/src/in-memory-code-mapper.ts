import type { RecordedEvent } from '#ledger';
import { isAgencyCode, type AgencyCode, type SubjectId } from '#linkage';
import { issuedCodeOf, pendingEvents } from './agency-code-events.js';
import type { CodeMapper, CodeMapperProjection, MappingEntry, Translation } from './code-mapper.port.js';
import { MapperError } from './errors.js';

interface Owner {
  readonly subjectId: SubjectId;
  readonly agencyId: string;
}

/** The code mapper in process memory: the embedded default without Redis, and the store fallback's index. */
export class InMemoryCodeMapper implements CodeMapper, CodeMapperProjection {
  #byCode = new Map<string, Owner>();
  #bySubject = new Map<string, Map<string, AgencyCode>>();
  #checkpoint = -1;

  async apply(events: readonly RecordedEvent[]): Promise<void> {
    this.applySync(events);
  }

  /** Synchronous apply, for callers that fold events inline (the store fallback). */
  applySync(events: readonly RecordedEvent[]): void {
    for (const e of pendingEvents(events, this.#checkpoint)) {
      const issued = issuedCodeOf(e);
      if (issued) {
        const { subjectId, agencyId, code } = issued;
        const owner = this.#byCode.get(code);
        const codes = this.#bySubject.get(subjectId) ?? new Map<string, AgencyCode>();
        const held = codes.get(agencyId);
        if (owner !== undefined || held !== undefined) {
          if (owner?.subjectId === subjectId && owner.agencyId === agencyId && held === code) {
            this.#checkpoint = e.position;
            continue;
          }
          throw new MapperError('CODE_CONFLICT', `event at position ${e.position} gives ${owner ? 'a code already held' : 'a second code for one (subject, agency)'}; the ledger's claims should have refused it`);
        }
        this.#byCode.set(code, { subjectId, agencyId });
        codes.set(agencyId, code);
        this.#bySubject.set(subjectId, codes);
      }
      this.#checkpoint = e.position;
    }
  }

  async checkpoint(): Promise<number> {
    return this.#checkpoint;
  }

  get position(): number {
    return this.#checkpoint;
  }

  async reset(): Promise<void> {
    this.#byCode.clear();
    this.#bySubject.clear();
    this.#checkpoint = -1;
  }

  async entries(): Promise<MappingEntry[]> {
    const out: MappingEntry[] = [];
    for (const [subjectId, codes] of this.#bySubject) for (const [agencyId, code] of codes) out.push({ subjectId: subjectId as SubjectId, agencyId, code });
    return out.sort(compareEntries);
  }

  async resolve(agencyId: string, code: string): Promise<SubjectId | undefined> {
    return this.resolveSync(agencyId, code);
  }

  async resolveMany(agencyId: string, codes: readonly string[]): Promise<(SubjectId | undefined)[]> {
    return codes.map((c) => this.resolveSync(agencyId, c));
  }

  async codeFor(subjectId: string, agencyId: string): Promise<AgencyCode | undefined> {
    return this.#bySubject.get(subjectId)?.get(agencyId);
  }

  async codeForMany(agencyId: string, subjectIds: readonly string[]): Promise<(AgencyCode | undefined)[]> {
    return subjectIds.map((s) => this.#bySubject.get(s)?.get(agencyId));
  }

  async translate(fromAgencyId: string, code: string, toAgencyId: string): Promise<Translation> {
    return this.translateSync(fromAgencyId, code, toAgencyId);
  }

  async translateMany(fromAgencyId: string, codes: readonly string[], toAgencyId: string): Promise<Translation[]> {
    return codes.map((c) => this.translateSync(fromAgencyId, c, toAgencyId));
  }

  private resolveSync(agencyId: string, code: string): SubjectId | undefined {
    if (!isAgencyCode(code)) return undefined;
    const owner = this.#byCode.get(code);
    return owner !== undefined && owner.agencyId === agencyId ? owner.subjectId : undefined;
  }

  private translateSync(fromAgencyId: string, code: string, toAgencyId: string): Translation {
    const subjectId = this.resolveSync(fromAgencyId, code);
    if (subjectId === undefined) return { status: 'unknown-code' };
    const target = this.#bySubject.get(subjectId)?.get(toAgencyId);
    return target === undefined ? { status: 'no-target-code', subjectId } : { status: 'translated', subjectId, code: target };
  }
}

export function compareEntries(a: MappingEntry, b: MappingEntry): number {
  return a.subjectId < b.subjectId ? -1 : a.subjectId > b.subjectId ? 1 : a.agencyId < b.agencyId ? -1 : a.agencyId > b.agencyId ? 1 : 0;
}
