import type { RecordedEvent } from '#ledger';
import type { AgencyCode, CodeTranslation, SubjectId } from '#linkage';

/** What translating one agency's code into another's found. */
export type Translation =
  | { readonly status: 'translated'; readonly subjectId: SubjectId; readonly code: AgencyCode }
  /** The code was not issued to the source agency (unknown, malformed, or another agency's). */
  | { readonly status: 'unknown-code' }
  /** The person is known, but the target agency holds no code for them. */
  | { readonly status: 'no-target-code'; readonly subjectId: SubjectId };

/**
 * The hub's code mapper (符号の変換). Internal to the hub: no agency-facing API may return another
 * agency's code (I7). Lookups never throw for unknown or malformed input; they answer `undefined` /
 * `unknown-code`. Batch forms answer in input order, one result per input (duplicates included).
 * An implementation that cannot reach its store MUST throw MapperUnavailableError (code MAPPER_UNAVAILABLE).
 */
export interface CodeMapper {
  /** The person behind `agencyId`'s code, or undefined when the code is not one that agency holds. */
  resolve(agencyId: string, code: string): Promise<SubjectId | undefined>;
  resolveMany(agencyId: string, codes: readonly string[]): Promise<(SubjectId | undefined)[]>;
  /** `agencyId`'s code for the person, or undefined. */
  codeFor(subjectId: string, agencyId: string): Promise<AgencyCode | undefined>;
  codeForMany(agencyId: string, subjectIds: readonly string[]): Promise<(AgencyCode | undefined)[]>;
  /** `toAgencyId`'s code for the person behind `fromAgencyId`'s `code`. */
  translate(fromAgencyId: string, code: string, toAgencyId: string): Promise<Translation>;
  translateMany(fromAgencyId: string, codes: readonly string[], toAgencyId: string): Promise<Translation[]>;
}

/** One issued code, as `entries()` lists them for comparing two mappers (I8). */
export interface MappingEntry {
  readonly subjectId: SubjectId;
  readonly agencyId: string;
  readonly code: AgencyCode;
}

/**
 * A mapper that is a projection of `AgencyCodeIssued` events with a stored checkpoint (I8).
 * - `apply` takes events in position order; events at or before the checkpoint are skipped, so
 *   at-least-once delivery is safe; events of other types only move the checkpoint.
 * - A rebuild from the log (reset, then apply everything) MUST equal the live projection.
 */
export interface CodeMapperProjection {
  apply(events: readonly RecordedEvent[]): Promise<void>;
  /** Position of the last applied event, -1 before any. */
  checkpoint(): Promise<number>;
  /** Drops every mapping and the checkpoint. */
  reset(): Promise<void>;
  /** Every mapping, sorted by subject, then agency. */
  entries(): Promise<MappingEntry[]>;
}

/** The shape the query decider takes (`SubmitQuery.translation`). */
export function asCodeTranslation(t: Translation): CodeTranslation {
  switch (t.status) {
    case 'translated':
      return { status: 'translated', subjectId: t.subjectId, providerCode: t.code };
    case 'unknown-code':
      return { status: 'unknown-code' };
    case 'no-target-code':
      return { status: 'no-code-at-provider', subjectId: t.subjectId };
    default: {
      const never: never = t;
      throw new Error(`unreachable translation ${JSON.stringify(never)}`);
    }
  }
}

/**
 * A mapper that answers as if the people `erased` names had no codes: after an erasure (their key
 * shredded) the code records a projection still holds translate to nothing, and a rebuild, which cannot
 * open them, holds none.
 */
export function withoutErased(mapper: CodeMapper, erased: (subjectId: string) => boolean): CodeMapper {
  const keep = (s: SubjectId | undefined) => (s === undefined || erased(s) ? undefined : s);
  const translation = (t: Translation): Translation => (t.status !== 'unknown-code' && erased(t.subjectId) ? { status: 'unknown-code' } : t);
  return {
    resolve: async (a, c) => keep(await mapper.resolve(a, c)),
    resolveMany: async (a, cs) => (await mapper.resolveMany(a, cs)).map(keep),
    codeFor: async (s, a) => (erased(s) ? undefined : mapper.codeFor(s, a)),
    codeForMany: async (a, ss) => {
      const codes = await mapper.codeForMany(a, ss);
      return codes.map((c, i) => (erased(ss[i]!) ? undefined : c));
    },
    translate: async (f, c, t) => translation(await mapper.translate(f, c, t)),
    translateMany: async (f, cs, t) => (await mapper.translateMany(f, cs, t)).map(translation),
  };
}
