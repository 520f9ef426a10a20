import type { LinkageEvent } from './decider.js';
import { LinkageError } from './errors.js';
import { isAgencyId, requireId, requireInstant, type AgencyId, type SubjectId } from './identifiers.js';

/**
 * Refusals as events (I6): every command the hub refuses from a caller it could identify ends a serial
 * of its own in a RequestRefused event, with the reason; requests from callers it could not identify are
 * counted per source and interval in one UnauthenticatedRequestsRecorded event, so a flood of forged
 * requests adds at most one event per source and interval, whatever they carry. An attempt is attributed
 * only to the agency its credential proves (`agencyId`); the agency a request merely names is kept apart
 * (`claimedAgencyId`) and never counted as that agency's.
 */

export const REFUSALS_STREAM_PREFIX = 'refusal-';
export const UNAUTHENTICATED_STREAM_PREFIX = 'unauthenticated-';

export function refusalStreamId(refusalId: string): string {
  return `${REFUSALS_STREAM_PREFIX}${refusalId}`;
}

export function unauthenticatedStreamId(recordId: string): string {
  return `${UNAUTHENTICATED_STREAM_PREFIX}${recordId}`;
}

/** Who the refused caller proved to be. */
export type RefusedCaller =
  | { readonly kind: 'agency'; readonly agencyId: AgencyId; readonly credential: 'current' | 'revoked' }
  | { readonly kind: 'operator' }
  | { readonly kind: 'auditor' }
  | { readonly kind: 'citizen'; readonly subjectId: SubjectId };

export interface RequestRefusedData {
  readonly refusalId: string;
  /** The command refused, e.g. SubmitQuery, AcquireAgencyCode, SendNotice, IssueIndividualNumber. */
  readonly command: string;
  /** The problem code answered, e.g. CREDENTIAL_MISMATCH, UNKNOWN_CODE, RESIDENT_ALREADY_NUMBERED. */
  readonly reason: string;
  readonly callerKind: RefusedCaller['kind'];
  /** The agency the credential proves (a revoked agency's old credential included). */
  readonly agencyId?: AgencyId;
  readonly credential?: 'current' | 'revoked';
  /** The agency the request named when it is not the proven one: recorded, never counted as its. */
  readonly claimedAgencyId?: string;
  /** The request fields a validation refusal named (names only, never values). */
  readonly fields?: readonly string[];
  /** The person the refused command concerned, when the hub knows (sealed, I10). */
  readonly subjectId?: SubjectId;
  /** What the caller presented that is personal (e.g. a code), for the hub only (sealed, I10). */
  readonly presented?: Readonly<Record<string, string>>;
  readonly refusedAt: string;
}
export type RequestRefused = LinkageEvent<'RequestRefused', RequestRefusedData>;

export interface RefuseRequest {
  readonly refusalId: string;
  readonly command: string;
  readonly reason: string;
  readonly caller: RefusedCaller;
  readonly claimedAgencyId?: string;
  readonly fields?: readonly string[];
  readonly subjectId?: SubjectId;
  readonly presented?: Readonly<Record<string, string>>;
  readonly refusedAt: string;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const FIELD = /^[A-Za-z0-9_.[\]-]{1,64}$/;

/** The refusal event of one request; it ends its own serial as `denied`. */
export function decideRefusal(r: RefuseRequest): readonly RequestRefused[] {
  const refusalId = requireId(r.refusalId, 'refusalId');
  if (!NAME.test(r.command)) throw new LinkageError('MALFORMED', 'command must name the refused command, e.g. SubmitQuery');
  if (!/^[A-Z][A-Z0-9_]{1,63}$/.test(r.reason)) throw new LinkageError('MALFORMED', 'reason must be a problem code, e.g. CREDENTIAL_MISMATCH');
  const refusedAt = requireInstant(r.refusedAt, 'refusedAt');
  const c = r.caller;
  // The agency a request names is kept only when it has an agency id's shape (nothing else rides along).
  const claimed = r.claimedAgencyId !== undefined && isAgencyId(r.claimedAgencyId) && !(c.kind === 'agency' && c.agencyId === r.claimedAgencyId) ? r.claimedAgencyId : undefined;
  const fields = r.fields?.filter((f) => FIELD.test(f)).slice(0, 32);
  const data: RequestRefusedData = {
    refusalId,
    command: r.command,
    reason: r.reason,
    callerKind: c.kind,
    ...(c.kind === 'agency' ? { agencyId: c.agencyId, credential: c.credential } : {}),
    ...(claimed === undefined ? {} : { claimedAgencyId: claimed }),
    ...(fields === undefined || fields.length === 0 ? {} : { fields }),
    ...(r.subjectId === undefined ? {} : { subjectId: r.subjectId }),
    ...(r.presented === undefined ? {} : { presented: r.presented }),
    refusedAt,
  };
  return [{ type: 'RequestRefused', schemaVersion: 1, data, terminal: 'denied' }];
}

export interface UnauthenticatedRequestsRecordedData {
  readonly recordId: string;
  readonly intervalStart: string;
  readonly intervalEnd: string;
  /** Requests refused from this source in the interval. */
  readonly count: number;
  /** Counts per problem code (UNAUTHENTICATED, …). */
  readonly reasons: Readonly<Record<string, number>>;
  /** Counts per command attempted. */
  readonly commands: Readonly<Record<string, number>>;
  /** How many sources this record sums up: 1, or more for the record of the sources over the interval's limit. */
  readonly sources: number;
  /** The source (a network address), for the hub only (sealed, I10); absent for the overflow record. */
  readonly source?: string;
}
export type UnauthenticatedRequestsRecorded = LinkageEvent<'UnauthenticatedRequestsRecorded', UnauthenticatedRequestsRecordedData>;

/** One source's refused, unidentified requests of one interval, as one event that ends its serial as `denied`. */
export function decideUnauthenticatedRecord(d: UnauthenticatedRequestsRecordedData): readonly UnauthenticatedRequestsRecorded[] {
  requireId(d.recordId, 'recordId');
  requireInstant(d.intervalStart, 'intervalStart');
  requireInstant(d.intervalEnd, 'intervalEnd');
  if (!Number.isSafeInteger(d.count) || d.count < 1 || !Number.isSafeInteger(d.sources) || d.sources < 1) throw new LinkageError('MALFORMED', 'count and sources must be integers ≥ 1');
  return [{ type: 'UnauthenticatedRequestsRecorded', schemaVersion: 1, data: { ...d }, terminal: 'denied' }];
}

export const RATE_LIMITED_STREAM_PREFIX = 'rate-limited-';

export function rateLimitedStreamId(recordId: string): string {
  return `${RATE_LIMITED_STREAM_PREFIX}${recordId}`;
}

/**
 * Requests refused for their rate (429, issue 15 item 2), counted per kind of principal and interval: at
 * most one event per kind and interval, whatever the flood. Agencies are named in clear with their counts
 * (a public auditor sees which agency was throttled); sources' addresses are sealed for the hub (I10);
 * citizens are only counted, never named (no subject id, no pseudonym: I10).
 */
export interface RateLimitedRequestsRecordedData {
  readonly recordId: string;
  readonly intervalStart: string;
  readonly intervalEnd: string;
  readonly principalKind: 'agency' | 'citizen' | 'source';
  /** Requests refused for their rate in the interval. */
  readonly count: number;
  /** Distinct principals of this kind refused in the interval. */
  readonly principals: number;
  /** Counts per command or read attempted (e.g. SubmitQuery, RecordsController.list). */
  readonly commands: Readonly<Record<string, number>>;
  /** Agency kind: counts per agency (the most refused first, at most the hub's limit of named principals). */
  readonly agencies?: Readonly<Record<string, number>>;
  /** Source kind: counts per address, for the hub only (sealed, I10). */
  readonly sources?: Readonly<Record<string, number>>;
}
export type RateLimitedRequestsRecorded = LinkageEvent<'RateLimitedRequestsRecorded', RateLimitedRequestsRecordedData>;

/** One kind's rate-limited requests of one interval, as one event that ends its serial as `denied`. */
export function decideRateLimitedRecord(d: RateLimitedRequestsRecordedData): readonly RateLimitedRequestsRecorded[] {
  requireId(d.recordId, 'recordId');
  requireInstant(d.intervalStart, 'intervalStart');
  requireInstant(d.intervalEnd, 'intervalEnd');
  if (!['agency', 'citizen', 'source'].includes(d.principalKind)) throw new LinkageError('MALFORMED', 'principalKind must be agency, citizen or source');
  if (!Number.isSafeInteger(d.count) || d.count < 1 || !Number.isSafeInteger(d.principals) || d.principals < 1) throw new LinkageError('MALFORMED', 'count and principals must be integers ≥ 1');
  for (const name of Object.keys(d.commands)) if (!NAME.test(name)) throw new LinkageError('MALFORMED', `command ${JSON.stringify(name)} is not a command name`);
  if (d.agencies !== undefined && (d.principalKind !== 'agency' || !Object.keys(d.agencies).every(isAgencyId))) throw new LinkageError('MALFORMED', 'agencies are named only in the agency record, by agency id');
  if (d.sources !== undefined && d.principalKind !== 'source') throw new LinkageError('MALFORMED', 'sources are named only in the source record');
  if (d.principalKind === 'citizen' && (d.agencies !== undefined || d.sources !== undefined)) throw new LinkageError('MALFORMED', 'citizens are counted, never named');
  return [{ type: 'RateLimitedRequestsRecorded', schemaVersion: 1, data: { ...d }, terminal: 'denied' }];
}

/** The stream of every key-shredding event (retention sweeps, erasures). */
export const KEYS_SHREDDED_STREAM = 'keys-shredded';

export interface KeysShreddedData {
  readonly shredId: string;
  readonly scope: 'retention' | 'erasure';
  /** Retention: every year up to this one (Japan time) lost its period key. */
  readonly throughEpoch?: number;
  /** Retention: the years whose keys this sweep shredded. */
  readonly epochs?: readonly number[];
  /** Erasure: the person whose key was shredded (sealed under the hub's own key, I10). */
  readonly subject?: SubjectId;
  /** The legal ground or the operator's reference (no personal data). */
  readonly reason: string;
  readonly shreddedAt: string;
}
export type KeysShredded = LinkageEvent<'KeysShredded', KeysShreddedData>;
