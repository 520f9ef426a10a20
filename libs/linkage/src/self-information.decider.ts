import type { NewEvent } from '#ledger';
import type { AgencyFacts } from './agency-registry.decider.js';
import { LinkageError, unreachable } from './errors.js';
import { isSubjectId, isX25519PublicKey, requireAgencyCode, requireAgencyId, requireId, requireInstant, type AgencyCode, type AgencyId, type AgencyKind, type SubjectId } from './identifiers.js';
import { authorizeSelfDisclosure, SELF_INFORMATION_PROCEDURE, type SelfDisclosurePolicy } from './self-disclosure-table.js';
import type { Decider } from './decider.js';
import { decideQuery, evolveQuery, initialQueryState, type QueryCommand, type QueryEvent, type QueryState, type QueryStreamEvent } from './query.decider.js';

/**
 * A citizen's own self-information request (自己情報表示): the person asks, through the hub, what one
 * agency holds about them for one item. It runs the query lifecycle on a stream `query-<queryId>` with a
 * serial of its own, recorded with the query events in their schema version 3 form: `requesterKind`
 * 'citizen', `procedureCode` 'self-information', no requesting agency and no requester's code.
 *
 *   SubmitSelfInformationRequest → QueryAccepted (v3) + ProvisionRequested (v3) | QueryDenied (v3, terminal 'denied', I6)
 *
 * then, as any query (decideQuery on the state evolveQuery folds from these events): RecordProvisionAnswer,
 * RecordProvisionRefusal, FailQuery. The answer key is mandatory: the provider's intermediate server seals
 * the answer to the key the citizen's browser made, so only the browser opens it (I5).
 *
 * Checks in order: the provider is registered (UNKNOWN_PROVIDER) and active (PROVIDER_REVOKED); the
 * self-disclosure table in force allows its kind to disclose the item (SELF_DISCLOSURE_TABLE_NOT_IN_FORCE,
 * SELF_DISCLOSURE_NOT_ALLOWED with the items it does disclose); the provider holds a code for the person
 * (NO_AGENCY_CODE). The person is authenticated before: every denial names them (sealed).
 */

export type SelfInformationDenialReason = 'UNKNOWN_PROVIDER' | 'PROVIDER_REVOKED' | 'SELF_DISCLOSURE_TABLE_NOT_IN_FORCE' | 'SELF_DISCLOSURE_NOT_ALLOWED' | 'NO_AGENCY_CODE';

export interface SubmitSelfInformationRequestData {
  /** Names the stream; a UUID from the caller. */
  readonly queryId: string;
  /** The person, as their credential proves them. */
  readonly subjectId: string;
  readonly providerAgencyId: string;
  /** The registry's facts about the provider (undefined when it is not registered). */
  readonly provider: AgencyFacts | undefined;
  readonly itemCode: string;
  /** The self-disclosure table version in force at `submittedAt` (undefined when none is). */
  readonly policy: SelfDisclosurePolicy | undefined;
  /**
   * The provider's own code for the person (CodeMapper.codeFor): null when it holds none; undefined when
   * not looked up (the caller may skip the look-up while the request is refused anyway).
   */
  readonly providerCode: string | null | undefined;
  /** The X25519 key the citizen's browser made for this request (unpadded base64url): mandatory. */
  readonly answerPublicKey: string;
  readonly submittedAt: string;
}
export interface SubmitSelfInformationRequest {
  readonly type: 'SubmitSelfInformationRequest';
  readonly data: SubmitSelfInformationRequestData;
}

/** A self-information event: one of the query events, in its schema version 3 form. */
interface V3Event<T extends string, D> extends NewEvent<D> {
  readonly type: T;
  readonly schemaVersion: 3;
  readonly data: D;
}

export interface SelfInformationAcceptedData {
  readonly queryId: string;
  readonly requesterKind: 'citizen';
  readonly providerAgencyId: AgencyId;
  readonly providerKind: AgencyKind;
  readonly procedureCode: typeof SELF_INFORMATION_PROCEDURE;
  readonly itemCodes: readonly string[];
  /** The self-disclosure table version the request was allowed under. */
  readonly tableVersion: number;
  readonly subjectId: SubjectId;
  readonly acceptedAt: string;
}
export type SelfInformationAccepted = V3Event<'QueryAccepted', SelfInformationAcceptedData>;

export interface SelfInformationRequestedData {
  readonly queryId: string;
  readonly requesterKind: 'citizen';
  readonly subjectId: SubjectId;
  readonly providerAgencyId: AgencyId;
  /** The provider's own code for the person: what the hub sends it. */
  readonly providerCode: AgencyCode;
  readonly procedureCode: typeof SELF_INFORMATION_PROCEDURE;
  readonly itemCodes: readonly string[];
  readonly answerPublicKey: string;
  readonly requestedAt: string;
}
export type SelfInformationRequested = V3Event<'ProvisionRequested', SelfInformationRequestedData>;

export interface SelfInformationDeniedData {
  readonly queryId: string;
  readonly requesterKind: 'citizen';
  readonly providerAgencyId: AgencyId;
  readonly procedureCode: typeof SELF_INFORMATION_PROCEDURE;
  readonly itemCodes: readonly string[];
  readonly reason: SelfInformationDenialReason;
  /** The self-disclosure table version in force, when there is one. */
  readonly tableVersion?: number;
  /** SELF_DISCLOSURE_NOT_ALLOWED: the items the provider's kind does disclose. */
  readonly allowedItems?: readonly string[];
  readonly subjectId: SubjectId;
  readonly deniedAt: string;
}
export type SelfInformationDenied = V3Event<'QueryDenied', SelfInformationDeniedData> & { readonly terminal: 'denied' };

export type SelfInformationEvent = SelfInformationAccepted | SelfInformationRequested | SelfInformationDenied;

/** Whether stored (or decided) event data is a citizen's self-information request: the marker every reader keys on. */
export function isSelfInformation(data: unknown): boolean {
  const d = data as { requesterKind?: unknown; procedureCode?: unknown; requesterAgencyId?: unknown } | null;
  return d !== null && typeof d === 'object' && d.requesterKind === 'citizen' && d.procedureCode === SELF_INFORMATION_PROCEDURE && d.requesterAgencyId === undefined;
}

export function decideSelfInformation(command: SubmitSelfInformationRequest, state: QueryState): readonly SelfInformationEvent[];
export function decideSelfInformation(command: QueryCommand, state: QueryState): readonly QueryEvent[];
export function decideSelfInformation(command: SubmitSelfInformationRequest | QueryCommand, state: QueryState): readonly (SelfInformationEvent | QueryEvent)[];
/** Submits a self-information request, or (any other command) carries on its lifecycle as decideQuery does. */
export function decideSelfInformation(command: SubmitSelfInformationRequest | QueryCommand, state: QueryState): readonly (SelfInformationEvent | QueryEvent)[] {
  switch (command.type) {
    case 'SubmitSelfInformationRequest':
      return submit(command.data, state);
    case 'SubmitQuery':
      throw new LinkageError('MALFORMED', 'an agency\'s query is decided by decideQuery, not as a self-information request');
    case 'RecordProvisionAnswer':
    case 'RecordProvisionRefusal':
    case 'FailQuery':
      return decideQuery(command, state);
    default:
      return unreachable(command, 'type');
  }
}

function submit(c: SubmitSelfInformationRequestData, state: QueryState): readonly SelfInformationEvent[] {
  if (state.status !== 'new') {
    throw new LinkageError('QUERY_ALREADY_SUBMITTED', `request ${c.queryId} was already submitted (${state.status}); submit a new request with a new id`, { status: state.status });
  }
  const queryId = requireId(c.queryId, 'queryId');
  if (!isSubjectId(c.subjectId)) throw new LinkageError('INVALID_SUBJECT_ID', 'subjectId must be the hub\'s canonical lowercase UUID for the person, as their credential proves');
  const subjectId = c.subjectId;
  const providerAgencyId = requireAgencyId(c.providerAgencyId, 'providerAgencyId');
  const at = requireInstant(c.submittedAt, 'submittedAt');
  if (!isX25519PublicKey(c.answerPublicKey)) {
    throw new LinkageError('INVALID_PUBLIC_KEY', 'answerPublicKey must be the X25519 public key the browser made for this request: 32 bytes as unpadded base64url (43 characters)');
  }
  if (c.provider !== undefined && c.provider.agencyId !== providerAgencyId) {
    throw new LinkageError('MALFORMED', `the provider facts describe agency ${c.provider.agencyId}, not ${providerAgencyId}; look up the agency the request names`);
  }
  // Judged before the table so that an unjudgeable item code changes nothing.
  const itemCodes = [c.itemCode];
  const base = { queryId, requesterKind: 'citizen' as const, providerAgencyId, procedureCode: SELF_INFORMATION_PROCEDURE as typeof SELF_INFORMATION_PROCEDURE, itemCodes, subjectId };
  const deny = (reason: SelfInformationDenialReason, extra: { tableVersion?: number; allowedItems?: readonly string[] } = {}): readonly SelfInformationEvent[] => [
    { type: 'QueryDenied', schemaVersion: 3, data: { ...base, reason, ...extra, deniedAt: at }, terminal: 'denied' },
  ];
  const provider = c.provider;
  if (provider === undefined) {
    authorizeSelfDisclosure(undefined, { providerKind: 'municipality', itemCode: c.itemCode, at }); // throws for an ill-formed item code
    return deny('UNKNOWN_PROVIDER');
  }
  if (provider.status === 'revoked') {
    authorizeSelfDisclosure(undefined, { providerKind: provider.kind, itemCode: c.itemCode, at });
    return deny('PROVIDER_REVOKED');
  }
  const decision = authorizeSelfDisclosure(c.policy, { providerKind: provider.kind, itemCode: c.itemCode, at });
  if (!decision.allowed) {
    return deny(decision.reason, { ...(decision.tableVersion === undefined ? {} : { tableVersion: decision.tableVersion }), ...(decision.allowedItems === undefined ? {} : { allowedItems: decision.allowedItems }) });
  }
  const tableVersion = decision.tableVersion;
  if (c.providerCode === undefined) {
    throw new LinkageError('MALFORMED', 'the request is allowed: look up the provider\'s code for the person (CodeMapper.codeFor) and decide again with it');
  }
  if (c.providerCode === null) return deny('NO_AGENCY_CODE', { tableVersion });
  const providerCode = requireAgencyCode(c.providerCode, 'providerCode');
  return [
    {
      type: 'QueryAccepted',
      schemaVersion: 3,
      data: { queryId, requesterKind: 'citizen', providerAgencyId, providerKind: provider.kind, procedureCode: SELF_INFORMATION_PROCEDURE, itemCodes, tableVersion, subjectId, acceptedAt: at },
    },
    {
      type: 'ProvisionRequested',
      schemaVersion: 3,
      data: { queryId, requesterKind: 'citizen', subjectId, providerAgencyId, providerCode, procedureCode: SELF_INFORMATION_PROCEDURE, itemCodes, answerPublicKey: c.answerPublicKey, requestedAt: at },
    },
  ];
}

/** The self-information request's decider: the query lifecycle's state and evolve, with its own submission. */
export const selfInformationDecider: Decider<QueryState, SubmitSelfInformationRequest | QueryCommand, SelfInformationEvent | QueryEvent, QueryStreamEvent> = {
  initialState: initialQueryState,
  evolve: evolveQuery,
  decide: (command, state) => decideSelfInformation(command, state),
};
