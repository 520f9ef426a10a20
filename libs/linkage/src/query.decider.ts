import type { AgencyFacts } from './agency-registry.decider.js';
import type { SelfInformationDenialReason, SelfInformationEvent } from './self-information.decider.js';
import { authorize, type AuthorizationPolicy, type AuthorizationRefusalCode } from './authorization-policy.js';
import type { Decider, Evolvable, LinkageCommand, LinkageEvent } from './decider.js';
import { LinkageError, unreachable } from './errors.js';
import {
  isSubjectId,
  isTableCode,
  isX25519PublicKey,
  requireAgencyCode,
  requireAgencyId,
  requireDigest,
  requireId,
  requireInstant,
  type AgencyCode,
  type AgencyId,
  type AgencyKind,
  type Sha256Hex,
  type SubjectId,
} from './identifiers.js';

/**
 * The query / provision lifecycle (照会・提供): one stream per query, `query-<queryId>`, and one processing
 * serial per query; the serial ends in exactly one of QueryCompleted, QueryDenied, QueryFailed (or the
 * ledger's SerialVoided after a crash).
 *
 *   SubmitQuery            → QueryAccepted + ProvisionRequested      | QueryDenied (terminal 'denied', I6)
 *   RecordProvisionAnswer  → ProvisionAnswered + QueryCompleted      (terminal 'completed')
 *   RecordProvisionRefusal → ProvisionRefused + QueryCompleted       (terminal 'completed')
 *   FailQuery              → QueryFailed                             (terminal 'failed')
 *
 * I7 inside the log: an event holds at most the code of the agency it is about. QueryAccepted and
 * QueryDenied (about the requester) hold the requester's code and the internal subject id;
 * ProvisionRequested (about the provider) holds the provider's own code, which the hub sends it.
 * I5: ProvisionAnswered holds the answer's digest and size, never the answer.
 * I10: these are the events as decided. The hub seals the personal fields (subject id, codes, answer key,
 * answer digest) before it appends them (libs/sealing), so the stored text holds commitments and a box,
 * and each agency can be given the opening of its own code. Events of logs written before sealing
 * (schemaVersion 1) hold the subject id in clear and the SHA-256 of the requester's code instead.
 *
 * Bulk queries (many people in one request, e.g. the pension service's yearly checks): the hub splits the
 * request into one SubmitQuery per person, each with its own stream and serial, all carrying the same
 * `batch.batchId` with their index and the batch size. One person's denial or failure then ends only that
 * person's serial, and each citizen's provision record shows exactly their own exchange.
 */

export function queryStreamId(queryId: string): string {
  return `query-${queryId}`;
}

export interface QueryBatch {
  readonly batchId: string;
  /** 0-based position of this person in the bulk request. */
  readonly index: number;
  readonly size: number;
}

/** The translation the caller looked up (CodeMapper) before deciding. */
export type CodeTranslation =
  | { readonly status: 'translated'; readonly subjectId: SubjectId; readonly providerCode: AgencyCode }
  /** The presented code was not issued to the requester (unknown, or another agency's). */
  | { readonly status: 'unknown-code' }
  /** The person is known, but the provider holds no code for them. */
  | { readonly status: 'no-code-at-provider'; readonly subjectId: SubjectId };

/** Why the hub refuses a query. Each ends the query's serial in a QueryDenied event (I6). */
export type QueryDenialReason =
  | 'UNKNOWN_REQUESTER'
  | 'REQUESTER_REVOKED'
  | 'CREDENTIAL_MISMATCH'
  | 'UNKNOWN_PROVIDER'
  | 'PROVIDER_REVOKED'
  | 'PROVIDER_IS_REQUESTER'
  | AuthorizationRefusalCode
  | 'CODE_NOT_ISSUED_TO_REQUESTER'
  | 'NO_CODE_AT_PROVIDER';

/** Why a provider declines to answer. */
export const PROVIDER_REFUSAL_REASONS = ['NO_RECORD', 'NOT_HELD', 'AUTOMATIC_ANSWER_RESTRICTED'] as const;
/**
 * NO_RECORD: the provider has no record of this person for these items. NOT_HELD: the provider does not
 * hold these items at all. AUTOMATIC_ANSWER_RESTRICTED: the record is flagged for manual handling (自動応答
 * 不可, e.g. protection of a DV victim's address).
 */
export type ProviderRefusalReason = (typeof PROVIDER_REFUSAL_REASONS)[number];

export const QUERY_FAILURE_REASONS = ['PROVIDER_UNREACHABLE', 'PROVIDER_TIMEOUT', 'PROVIDER_PROTOCOL_ERROR', 'ANSWER_TOO_LARGE', 'INTERRUPTED'] as const;
export type QueryFailureReason = (typeof QUERY_FAILURE_REASONS)[number];

// ---- commands ----

export interface SubmitQueryData {
  /** Names the stream; a UUID from the caller (also the idempotency anchor). */
  readonly queryId: string;
  /** The agency the request is authenticated as. */
  readonly requesterAgencyId: string;
  /** The registry's facts about the requester (undefined when it is not registered). */
  readonly requester: AgencyFacts | undefined;
  /** SHA-256 (hex) of the secret token the request presented. */
  readonly presentedCredentialDigest: string;
  readonly providerAgencyId: string;
  readonly provider: AgencyFacts | undefined;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  /** The code the requester presented (sealed in the log, opened to the requester alone). */
  readonly requesterCode: string;
  /** The authorization table version in force at `submittedAt` (undefined when none is). */
  readonly policy: AuthorizationPolicy | undefined;
  readonly requestedTableVersion?: number;
  /** Needed once the query is authorized; the caller may skip the lookup when `authorize` already refuses. */
  readonly translation: CodeTranslation | undefined;
  /** The requester's X25519 key (unpadded base64url): the provider encrypts its answer to it. */
  readonly requesterPublicKey?: string;
  readonly batch?: QueryBatch;
  readonly submittedAt: string;
}
export type SubmitQuery = LinkageCommand<'SubmitQuery', SubmitQueryData>;

export interface RecordProvisionAnswerData {
  readonly queryId: string;
  /** The agency the answer is authenticated as. */
  readonly providerAgencyId: string;
  readonly answerDigest: string;
  /** Bytes relayed to the requester. */
  readonly answerSize: number;
  /** Whether the answer is ciphertext to the requester's key. */
  readonly encrypted: boolean;
  readonly answeredAt: string;
}
export type RecordProvisionAnswer = LinkageCommand<'RecordProvisionAnswer', RecordProvisionAnswerData>;

export interface RecordProvisionRefusalData {
  readonly queryId: string;
  readonly providerAgencyId: string;
  readonly reason: ProviderRefusalReason;
  readonly refusedAt: string;
}
export type RecordProvisionRefusal = LinkageCommand<'RecordProvisionRefusal', RecordProvisionRefusalData>;

export interface FailQueryData {
  readonly queryId: string;
  readonly reason: QueryFailureReason;
  readonly failedAt: string;
}
export type FailQuery = LinkageCommand<'FailQuery', FailQueryData>;

export type QueryCommand = SubmitQuery | RecordProvisionAnswer | RecordProvisionRefusal | FailQuery;

// ---- events ----

export interface QueryAcceptedData {
  readonly queryId: string;
  readonly requesterAgencyId: AgencyId;
  readonly requesterKind: AgencyKind;
  readonly providerAgencyId: AgencyId;
  readonly providerKind: AgencyKind;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  /** The authorization table version the query was allowed under. */
  readonly tableVersion: number;
  readonly subjectId: SubjectId;
  /** The requester's own code for the person (schemaVersion 1 logs: absent). */
  readonly requesterCode?: AgencyCode;
  /** Logs written before sealing (schemaVersion 1): SHA-256 of the requester's code. */
  readonly requesterCodeDigest?: Sha256Hex;
  readonly batch?: QueryBatch;
  readonly acceptedAt: string;
}
export type QueryAccepted = LinkageEvent<'QueryAccepted', QueryAcceptedData>;

export interface ProvisionRequestedData {
  readonly queryId: string;
  /** Whose key seals the event (schemaVersion 1 logs: absent). */
  readonly subjectId?: SubjectId;
  readonly providerAgencyId: AgencyId;
  /** The provider's own code for the person: what the hub sends it. */
  readonly providerCode: AgencyCode;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  /** The requester's X25519 key, when the answer must be encrypted end to end. */
  readonly answerPublicKey?: string;
  readonly requestedAt: string;
}
export type ProvisionRequested = LinkageEvent<'ProvisionRequested', ProvisionRequestedData>;

export interface QueryDeniedData {
  readonly queryId: string;
  readonly requesterAgencyId: AgencyId;
  readonly providerAgencyId: AgencyId;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly reason: QueryDenialReason;
  /** The version in force, when there is one. */
  readonly tableVersion?: number;
  readonly notAllowedItems?: readonly string[];
  readonly allowedItems?: readonly string[];
  readonly allowedProviderKinds?: readonly AgencyKind[];
  readonly allowedRequesterKinds?: readonly AgencyKind[];
  /** The person asked about, when the requester was authenticated and its code resolved: their record shows the attempt. */
  readonly subjectId?: SubjectId;
  /** The code the requester presented (schemaVersion 1 logs: absent). */
  readonly requesterCode?: string;
  /** Logs written before sealing (schemaVersion 1): SHA-256 of the presented code. */
  readonly requesterCodeDigest?: Sha256Hex;
  readonly batch?: QueryBatch;
  readonly deniedAt: string;
}
export type QueryDenied = LinkageEvent<'QueryDenied', QueryDeniedData>;

export interface ProvisionAnsweredData {
  readonly queryId: string;
  /** Whose key seals the event (schemaVersion 1 logs: absent). */
  readonly subjectId?: SubjectId;
  readonly providerAgencyId: AgencyId;
  readonly answerDigest: Sha256Hex;
  readonly answerSize: number;
  readonly encrypted: boolean;
  readonly answeredAt: string;
}
export type ProvisionAnswered = LinkageEvent<'ProvisionAnswered', ProvisionAnsweredData>;

export interface ProvisionRefusedData {
  readonly queryId: string;
  readonly providerAgencyId: AgencyId;
  readonly reason: ProviderRefusalReason;
  readonly refusedAt: string;
}
export type ProvisionRefused = LinkageEvent<'ProvisionRefused', ProvisionRefusedData>;

export type QueryOutcome = 'answered' | 'refused-by-provider';

export interface QueryCompletedData {
  readonly queryId: string;
  readonly outcome: QueryOutcome;
  readonly completedAt: string;
}
export type QueryCompleted = LinkageEvent<'QueryCompleted', QueryCompletedData>;

export interface QueryFailedData {
  readonly queryId: string;
  readonly providerAgencyId: AgencyId;
  readonly reason: QueryFailureReason;
  readonly failedAt: string;
}
export type QueryFailed = LinkageEvent<'QueryFailed', QueryFailedData>;

export type QueryEvent = QueryAccepted | ProvisionRequested | QueryDenied | ProvisionAnswered | ProvisionRefused | QueryCompleted | QueryFailed;

/** The ledger's own event that ends a serial a crash left open (libs/ledger recovery); it lands in the query's stream. */
export interface SerialVoidedEvent {
  readonly type: 'SerialVoided';
  readonly data: { readonly serial: string; readonly reason: string; readonly firstPosition: number };
}
/** What a query's stream holds: an agency's query, or a citizen's own self-information request (schema version 3, same lifecycle). */
export type QueryStreamEvent = Evolvable<QueryEvent> | Evolvable<SelfInformationEvent> | SerialVoidedEvent;

// ---- state ----

interface QueryFacts {
  readonly queryId: string;
  /** Null for a citizen's own self-information request (no requesting agency). */
  readonly requesterAgencyId: AgencyId | null;
  readonly providerAgencyId: AgencyId;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly tableVersion: number;
  readonly subjectId: SubjectId;
  readonly acceptedAt: string;
}

export interface NewQuery {
  readonly status: 'new';
}
export interface AcceptedQuery extends QueryFacts {
  readonly status: 'accepted';
}
export interface AwaitingProvider extends QueryFacts {
  readonly status: 'awaiting-provider';
  readonly providerCode: AgencyCode;
  readonly answerPublicKey?: string;
}
export interface ProviderAnswered extends QueryFacts {
  readonly status: 'answered';
  readonly answerDigest: Sha256Hex;
  readonly answerSize: number;
}
export interface ProviderRefused extends QueryFacts {
  readonly status: 'refused-by-provider';
  readonly refusal: ProviderRefusalReason;
}
export interface CompletedQuery {
  readonly status: 'completed';
  readonly queryId: string;
  readonly outcome: QueryOutcome;
  readonly completedAt: string;
}
export interface DeniedQuery {
  readonly status: 'denied';
  readonly queryId: string;
  readonly reason: QueryDenialReason | SelfInformationDenialReason;
  readonly deniedAt: string;
}
export interface FailedQuery {
  readonly status: 'failed';
  readonly queryId: string;
  readonly reason: QueryFailureReason;
  readonly failedAt: string;
}
export interface VoidedQuery {
  readonly status: 'voided';
  readonly reason: string;
}
export type QueryState = NewQuery | AcceptedQuery | AwaitingProvider | ProviderAnswered | ProviderRefused | CompletedQuery | DeniedQuery | FailedQuery | VoidedQuery;

export function initialQueryState(): QueryState {
  return { status: 'new' };
}

function factsOf(s: AcceptedQuery | AwaitingProvider | ProviderAnswered | ProviderRefused): QueryFacts {
  const { queryId, requesterAgencyId, providerAgencyId, procedureCode, itemCodes, tableVersion, subjectId, acceptedAt } = s;
  return { queryId, requesterAgencyId, providerAgencyId, procedureCode, itemCodes, tableVersion, subjectId, acceptedAt };
}

export function evolveQuery(state: QueryState, event: QueryStreamEvent): QueryState {
  switch (event.type) {
    case 'QueryAccepted': {
      const d = event.data;
      return {
        status: 'accepted',
        queryId: d.queryId,
        requesterAgencyId: 'requesterAgencyId' in d ? d.requesterAgencyId : null,
        providerAgencyId: d.providerAgencyId,
        procedureCode: d.procedureCode,
        itemCodes: d.itemCodes,
        tableVersion: d.tableVersion,
        subjectId: d.subjectId,
        acceptedAt: d.acceptedAt,
      };
    }
    case 'ProvisionRequested':
      if (state.status !== 'accepted') return state;
      return {
        ...factsOf(state),
        status: 'awaiting-provider',
        providerCode: event.data.providerCode,
        ...(event.data.answerPublicKey === undefined ? {} : { answerPublicKey: event.data.answerPublicKey }),
      };
    case 'ProvisionAnswered':
      if (state.status !== 'awaiting-provider') return state;
      return { ...factsOf(state), status: 'answered', answerDigest: event.data.answerDigest, answerSize: event.data.answerSize };
    case 'ProvisionRefused':
      if (state.status !== 'awaiting-provider') return state;
      return { ...factsOf(state), status: 'refused-by-provider', refusal: event.data.reason };
    case 'QueryCompleted':
      return { status: 'completed', queryId: event.data.queryId, outcome: event.data.outcome, completedAt: event.data.completedAt };
    case 'QueryDenied':
      return { status: 'denied', queryId: event.data.queryId, reason: event.data.reason, deniedAt: event.data.deniedAt };
    case 'QueryFailed':
      return { status: 'failed', queryId: event.data.queryId, reason: event.data.reason, failedAt: event.data.failedAt };
    case 'SerialVoided':
      return { status: 'voided', reason: event.data.reason };
    default:
      return unreachable(event, 'type');
  }
}

export function decideQuery(command: QueryCommand, state: QueryState): readonly QueryEvent[] {
  switch (command.type) {
    case 'SubmitQuery':
      return submit(command.data, state);
    case 'RecordProvisionAnswer':
      return answer(command.data, state);
    case 'RecordProvisionRefusal':
      return refusal(command.data, state);
    case 'FailQuery':
      return fail(command.data, state);
    default:
      return unreachable(command, 'type');
  }
}

export const queryDecider: Decider<QueryState, QueryCommand, QueryEvent, QueryStreamEvent> = {
  initialState: initialQueryState,
  evolve: evolveQuery,
  decide: decideQuery,
};

/** The query's terminal outcome as the ledger records it, or undefined while it is open. */
export function queryTerminal(state: QueryState): 'completed' | 'denied' | 'failed' | 'voided' | undefined {
  switch (state.status) {
    case 'completed':
    case 'denied':
    case 'failed':
    case 'voided':
      return state.status;
    case 'new':
    case 'accepted':
    case 'awaiting-provider':
    case 'answered':
    case 'refused-by-provider':
      return undefined;
    default:
      return unreachable(state, 'status');
  }
}

// ---- decisions ----

function submit(c: SubmitQueryData, state: QueryState): readonly QueryEvent[] {
  if (state.status !== 'new') {
    throw new LinkageError('QUERY_ALREADY_SUBMITTED', `query ${c.queryId} was already submitted (${state.status}); submit a new query with a new id`, { status: state.status });
  }
  const queryId = requireId(c.queryId, 'queryId');
  const requesterAgencyId = requireAgencyId(c.requesterAgencyId, 'requesterAgencyId');
  const providerAgencyId = requireAgencyId(c.providerAgencyId, 'providerAgencyId');
  const presented = requireDigest(c.presentedCredentialDigest, 'presentedCredentialDigest');
  const requesterCode = requirePresentedCode(c.requesterCode);
  const at = requireInstant(c.submittedAt, 'submittedAt');
  const itemCodes = requireItemCodes(c.itemCodes);
  if (!isTableCode(c.procedureCode)) {
    throw new LinkageError('MALFORMED', 'procedureCode must be a kebab-case procedure code from the authorization table, e.g. "child-allowance"');
  }
  if (c.requesterPublicKey !== undefined && !isX25519PublicKey(c.requesterPublicKey)) {
    throw new LinkageError('INVALID_PUBLIC_KEY', 'requesterPublicKey must be an X25519 public key: 32 bytes as unpadded base64url (43 characters)');
  }
  if (c.requestedTableVersion !== undefined && (!Number.isSafeInteger(c.requestedTableVersion) || c.requestedTableVersion < 1)) {
    throw new LinkageError('MALFORMED', 'requestedTableVersion must be an integer ≥ 1');
  }
  const batch = c.batch === undefined ? undefined : requireBatch(c.batch);
  requireFactsFor(c.requester, requesterAgencyId, 'requester');
  requireFactsFor(c.provider, providerAgencyId, 'provider');

  const base = { queryId, requesterAgencyId, providerAgencyId, procedureCode: c.procedureCode, itemCodes, requesterCode, ...(batch ? { batch } : {}), deniedAt: at };
  const deny = (reason: QueryDenialReason, extra: Partial<QueryDeniedData> = {}): readonly QueryEvent[] => [
    { type: 'QueryDenied', schemaVersion: 1, data: { ...base, reason, ...extra }, terminal: 'denied' },
  ];

  const requester = c.requester;
  if (requester === undefined) return deny('UNKNOWN_REQUESTER');
  if (requester.status === 'revoked') return deny('REQUESTER_REVOKED');
  if (requester.credentialDigest !== presented) return deny('CREDENTIAL_MISMATCH');
  // From here on the requester is authenticated: a denial may name the person it asked about.
  const subjectOf = (t: CodeTranslation | undefined): Partial<QueryDeniedData> =>
    t !== undefined && t.status !== 'unknown-code' && isSubjectId(t.subjectId) ? { subjectId: t.subjectId } : {};
  const provider = c.provider;
  if (provider === undefined) return deny('UNKNOWN_PROVIDER', subjectOf(c.translation));
  if (provider.status === 'revoked') return deny('PROVIDER_REVOKED', subjectOf(c.translation));
  if (provider.agencyId === requester.agencyId) return deny('PROVIDER_IS_REQUESTER', subjectOf(c.translation));

  const decision = authorize(c.policy, {
    requesterKind: requester.kind,
    procedureCode: c.procedureCode,
    providerKind: provider.kind,
    itemCodes,
    at,
    ...(c.requestedTableVersion === undefined ? {} : { requestedTableVersion: c.requestedTableVersion }),
  });
  if (!decision.allowed) {
    const { reason, tableVersion, notAllowedItems, allowedItems, allowedProviderKinds, allowedRequesterKinds } = decision;
    return deny(reason, {
      ...(tableVersion === undefined ? {} : { tableVersion }),
      ...(notAllowedItems === undefined ? {} : { notAllowedItems }),
      ...(allowedItems === undefined ? {} : { allowedItems }),
      ...(allowedProviderKinds === undefined ? {} : { allowedProviderKinds }),
      ...(allowedRequesterKinds === undefined ? {} : { allowedRequesterKinds }),
      ...subjectOf(c.translation),
    });
  }
  const tableVersion = decision.tableVersion;
  const t = c.translation;
  if (t === undefined) {
    throw new LinkageError('MALFORMED', 'the query is authorized: translate the requester\'s code (CodeMapper.translate) and decide again with the translation');
  }
  switch (t.status) {
    case 'unknown-code':
      return deny('CODE_NOT_ISSUED_TO_REQUESTER', { tableVersion });
    case 'no-code-at-provider':
      return deny('NO_CODE_AT_PROVIDER', { tableVersion, ...subjectOf(t) });
    case 'translated':
      break;
    default:
      return unreachable(t, 'status');
  }
  if (!isSubjectId(t.subjectId)) throw new LinkageError('INVALID_SUBJECT_ID', 'translation.subjectId must be the hub\'s canonical lowercase UUID for the person');
  const providerCode = requireAgencyCode(t.providerCode, 'translation.providerCode');

  const accepted: QueryAccepted = {
    type: 'QueryAccepted',
    schemaVersion: 1,
    data: {
      queryId,
      requesterAgencyId,
      requesterKind: requester.kind,
      providerAgencyId,
      providerKind: provider.kind,
      procedureCode: c.procedureCode,
      itemCodes,
      tableVersion,
      subjectId: t.subjectId,
      requesterCode: requesterCode as AgencyCode,
      ...(batch ? { batch } : {}),
      acceptedAt: at,
    },
  };
  const requested: ProvisionRequested = {
    type: 'ProvisionRequested',
    schemaVersion: 1,
    data: {
      queryId,
      subjectId: t.subjectId,
      providerAgencyId,
      providerCode,
      procedureCode: c.procedureCode,
      itemCodes,
      ...(c.requesterPublicKey === undefined ? {} : { answerPublicKey: c.requesterPublicKey }),
      requestedAt: at,
    },
  };
  // I7 defence in depth: neither event may carry the other party's code.
  if (JSON.stringify(accepted.data).includes(providerCode) || JSON.stringify(requested.data).includes(requesterCode)) {
    throw new LinkageError('MALFORMED', 'refusing to emit an event that holds another agency\'s code; check the ids passed in the command');
  }
  return [accepted, requested];
}

function answer(c: RecordProvisionAnswerData, state: QueryState): readonly QueryEvent[] {
  const s = awaitingProvider(state, c.queryId);
  const providerAgencyId = requireProvider(c.providerAgencyId, s);
  const answerDigest = requireDigest(c.answerDigest, 'answerDigest');
  const answeredAt = requireInstant(c.answeredAt, 'answeredAt');
  if (!Number.isSafeInteger(c.answerSize) || c.answerSize < 0) {
    throw new LinkageError('MALFORMED', 'answerSize must be the answer\'s length in bytes, an integer ≥ 0');
  }
  if (typeof c.encrypted !== 'boolean') throw new LinkageError('MALFORMED', 'encrypted must be true or false');
  if (s.answerPublicKey !== undefined && !c.encrypted) {
    throw new LinkageError('MALFORMED', 'the requester gave a public key: the provider must encrypt its answer to it (X25519 + AES-GCM) before the hub relays it');
  }
  return [
    { type: 'ProvisionAnswered', schemaVersion: 1, data: { queryId: s.queryId, subjectId: s.subjectId, providerAgencyId, answerDigest, answerSize: c.answerSize, encrypted: c.encrypted, answeredAt } },
    { type: 'QueryCompleted', schemaVersion: 1, data: { queryId: s.queryId, outcome: 'answered', completedAt: answeredAt }, terminal: 'completed' },
  ];
}

function refusal(c: RecordProvisionRefusalData, state: QueryState): readonly QueryEvent[] {
  const s = awaitingProvider(state, c.queryId);
  const providerAgencyId = requireProvider(c.providerAgencyId, s);
  if (!(PROVIDER_REFUSAL_REASONS as readonly string[]).includes(c.reason)) {
    throw new LinkageError('MALFORMED', `a provider refuses with one of ${PROVIDER_REFUSAL_REASONS.join(', ')}`);
  }
  const refusedAt = requireInstant(c.refusedAt, 'refusedAt');
  return [
    { type: 'ProvisionRefused', schemaVersion: 1, data: { queryId: s.queryId, providerAgencyId, reason: c.reason, refusedAt } },
    { type: 'QueryCompleted', schemaVersion: 1, data: { queryId: s.queryId, outcome: 'refused-by-provider', completedAt: refusedAt }, terminal: 'completed' },
  ];
}

function fail(c: FailQueryData, state: QueryState): readonly QueryEvent[] {
  if (!(QUERY_FAILURE_REASONS as readonly string[]).includes(c.reason)) {
    throw new LinkageError('MALFORMED', `a query fails with one of ${QUERY_FAILURE_REASONS.join(', ')}`);
  }
  const failedAt = requireInstant(c.failedAt, 'failedAt');
  switch (state.status) {
    case 'accepted':
    case 'awaiting-provider':
    case 'answered':
    case 'refused-by-provider':
      requireSameQuery(state.queryId, c.queryId);
      return [{ type: 'QueryFailed', schemaVersion: 1, data: { queryId: state.queryId, providerAgencyId: state.providerAgencyId, reason: c.reason, failedAt }, terminal: 'failed' }];
    case 'new':
    case 'completed':
    case 'denied':
    case 'failed':
    case 'voided':
      return notOpen(state, c.queryId);
    default:
      return unreachable(state, 'status');
  }
}

function awaitingProvider(state: QueryState, queryId: string): AwaitingProvider {
  switch (state.status) {
    case 'awaiting-provider':
      requireSameQuery(state.queryId, queryId);
      return state;
    case 'accepted':
    case 'answered':
    case 'refused-by-provider':
      throw new LinkageError('QUERY_NOT_AWAITING_PROVIDER', `query ${queryId} is ${state.status}, not awaiting the provider's answer`, { status: state.status });
    case 'new':
    case 'completed':
    case 'denied':
    case 'failed':
    case 'voided':
      return notOpen(state, queryId);
    default:
      return unreachable(state, 'status');
  }
}

function notOpen(state: NewQuery | CompletedQuery | DeniedQuery | FailedQuery | VoidedQuery, queryId: string): never {
  if (state.status === 'new') throw new LinkageError('QUERY_NOT_FOUND', `query ${queryId} was never submitted`);
  throw new LinkageError('QUERY_ALREADY_ENDED', `query ${queryId} already ended (${state.status}); its serial is closed`, { status: state.status });
}

function requireSameQuery(expected: string, actual: string): void {
  if (expected !== actual) {
    throw new LinkageError('STREAM_MISMATCH', `the command names query ${actual} but was decided on the stream of query ${expected}; load queryStreamId(queryId)`);
  }
}

function requireProvider(providerAgencyId: string, s: AwaitingProvider): AgencyId {
  const id = requireAgencyId(providerAgencyId, 'providerAgencyId');
  if (id !== s.providerAgencyId) {
    throw new LinkageError('PROVIDER_MISMATCH', `query ${s.queryId} was sent to ${s.providerAgencyId}; agency ${id} cannot answer it`, { providerAgencyId: id });
  }
  return id;
}

function requireItemCodes(itemCodes: readonly string[]): readonly string[] {
  if (!Array.isArray(itemCodes) || itemCodes.length === 0 || itemCodes.length > 32 || !itemCodes.every(isTableCode)) {
    throw new LinkageError('MALFORMED', 'itemCodes must list 1–32 information item codes from the authorization table, e.g. ["local-tax"]');
  }
  if (new Set(itemCodes).size !== itemCodes.length) throw new LinkageError('MALFORMED', 'itemCodes lists an item more than once');
  return [...itemCodes];
}

/**
 * The code a requester presented: it need not be a code the hub issued (that is decided later, by the
 * translation), but it is kept only when it has an agency code's shape, so nothing else rides along.
 */
function requirePresentedCode(value: unknown): string {
  return requireAgencyCode(value, 'code');
}

function requireBatch(batch: QueryBatch): QueryBatch {
  const batchId = requireId(batch.batchId, 'batch.batchId');
  if (!Number.isSafeInteger(batch.size) || batch.size < 1 || !Number.isSafeInteger(batch.index) || batch.index < 0 || batch.index >= batch.size) {
    throw new LinkageError('MALFORMED', 'batch needs an index from 0 to size − 1 and a size ≥ 1');
  }
  return { batchId, index: batch.index, size: batch.size };
}

function requireFactsFor(facts: AgencyFacts | undefined, agencyId: AgencyId, role: string): void {
  if (facts !== undefined && facts.agencyId !== agencyId) {
    throw new LinkageError('MALFORMED', `the ${role} facts describe agency ${facts.agencyId}, not ${agencyId}; look up the agency the request names`);
  }
}
