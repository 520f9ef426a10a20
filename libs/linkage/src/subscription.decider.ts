import { authorizePush, type AuthorizationPolicy, type PushRefusalCode } from './authorization-policy.js';
import type { Decider, Evolvable, LinkageCommand, LinkageEvent } from './decider.js';
import { unreachable } from './errors.js';
import { isAgencyCode, isAgencyId, isAgencyKind, isInstant, isSubjectId, requireId, type AgencyCode, type AgencyId, type AgencyKind, type SubjectId } from './identifiers.js';

/**
 * Subscriptions (プッシュ型の情報提供, issue 14): an agency subscribes, with its own code for the person, to
 * items a provider agency holds for that person under a procedure; when the provider reports that its copy
 * of such an item changed, the hub pushes a notice of the change (no data) to the subscriber, which then
 * fetches the value by an ordinary lawful query. Allowed only where the authorization table in force has
 * the items in the row's `push` (format 2). One stream per subscription; every command its own serial:
 * SubscriptionCreated, then at most one of SubscriptionCancelled (the subscriber), SubscriptionExpired
 * (the hub, at `expiresAt`) or SubscriptionEnded (the hub, when a table version in force no longer allows
 * the push). The person (subject id) and the subscriber's code are sealed in the stored events (I10);
 * agencies, procedure, items, version and times stay clear.
 */

export const SUBSCRIPTION_STREAM_PREFIX = 'subscription-';

export function subscriptionStreamId(subscriptionId: string): string {
  return `${SUBSCRIPTION_STREAM_PREFIX}${subscriptionId}`;
}

const DAY_MS = 24 * 3600 * 1000;
/** A subscription for which the subscriber names no `expiresAt` lasts a year (the hub fills it in). */
export const SUBSCRIPTION_DEFAULT_TERM_MS = 365 * DAY_MS;
/** No subscription lasts more than five years (it is renewed by subscribing again). */
export const SUBSCRIPTION_MAX_TERM_MS = 5 * 365 * DAY_MS + 2 * DAY_MS;
/** At most this many items in one subscription. */
export const SUBSCRIPTION_MAX_ITEMS = 32;

/** Why a subscription the hub ended ended. */
export type SubscriptionEndReason = 'TABLE_WITHDREW_PUSH';

export type SubscriptionStatus = 'active' | 'cancelled' | 'expired' | 'ended';

/** Why the decider refuses (each a problem code of the hub, recorded as a RequestRefused event, I6). */
export type SubscriptionRefusalCode = PushRefusalCode | 'MALFORMED' | 'INVALID_EXPIRY' | 'SUBSCRIPTION_NOT_FOUND' | 'SUBSCRIPTION_NOT_ACTIVE' | 'PROVIDER_IS_REQUESTER' | 'SUBSCRIPTION_EXISTS';

/** A refusal of a subscription command: it changes nothing but its refusal event. */
export class SubscriptionError extends Error {
  constructor(
    readonly code: SubscriptionRefusalCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'SubscriptionError';
  }
}

export interface CreateSubscriptionData {
  readonly subscriptionId: string;
  readonly requesterAgencyId: AgencyId;
  readonly requesterKind: AgencyKind;
  readonly providerAgencyId: AgencyId;
  readonly providerKind: AgencyKind;
  /** The person, resolved by the hub from the subscriber's own code before deciding. */
  readonly subjectId: SubjectId;
  /** The subscriber's own code for the person (sealed in the log). */
  readonly requesterCode: AgencyCode;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly createdAt: string;
  /** When it ends by itself: later than `createdAt`, at most five years after (the hub gives a year when the subscriber names none). */
  readonly expiresAt: string;
  /** The version the subscriber says it works under; refused when it is not the one in force. */
  readonly requestedTableVersion?: number;
  /** The authorization policy of the version in force at `createdAt` (undefined when none is). */
  readonly policy: AuthorizationPolicy | undefined;
  /**
   * The requester's own active, unexpired subscription to one of these items of the same provider for the
   * same person (found by the hub in its subscription index before deciding), if any: the new one is refused
   * (SUBSCRIPTION_EXISTS) so that one update is pushed to one agency once.
   */
  readonly overlapping?: { readonly subscriptionId: string; readonly itemCodes: readonly string[] };
}
export type CreateSubscription = LinkageCommand<'CreateSubscription', CreateSubscriptionData>;

export interface CancelSubscriptionData {
  readonly subscriptionId: string;
  /** The calling agency: only the subscriber cancels (another agency is told the subscription does not exist). */
  readonly requesterAgencyId: AgencyId;
  readonly cancelledAt: string;
}
export type CancelSubscription = LinkageCommand<'CancelSubscription', CancelSubscriptionData>;

export interface ExpireSubscriptionData {
  readonly subscriptionId: string;
  readonly expiredAt: string;
}
export type ExpireSubscription = LinkageCommand<'ExpireSubscription', ExpireSubscriptionData>;

export interface EndSubscriptionData {
  readonly subscriptionId: string;
  readonly reason: SubscriptionEndReason;
  /** The table version in force that no longer allows the push. */
  readonly tableVersion: number;
  /** The subscription's items that version no longer allows to push. */
  readonly withdrawnItems: readonly string[];
  readonly endedAt: string;
}
export type EndSubscription = LinkageCommand<'EndSubscription', EndSubscriptionData>;

export type SubscriptionCommand = CreateSubscription | CancelSubscription | ExpireSubscription | EndSubscription;

/** The parties and the person of a subscription, on every one of its events (agencies clear, the person sealed). */
interface SubscriptionParties {
  readonly subscriptionId: string;
  readonly requesterAgencyId: AgencyId;
  readonly providerAgencyId: AgencyId;
  readonly subjectId: SubjectId;
}

export interface SubscriptionCreatedData extends SubscriptionParties {
  readonly requesterKind: AgencyKind;
  readonly providerKind: AgencyKind;
  readonly requesterCode: AgencyCode;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly tableVersion: number;
  readonly createdAt: string;
  readonly expiresAt: string;
}
export interface SubscriptionCancelledData extends SubscriptionParties {
  readonly cancelledAt: string;
}
export interface SubscriptionExpiredData extends SubscriptionParties {
  readonly expiresAt: string;
  readonly expiredAt: string;
}
export interface SubscriptionEndedData extends SubscriptionParties {
  readonly reason: SubscriptionEndReason;
  readonly tableVersion: number;
  readonly withdrawnItems: readonly string[];
  readonly endedAt: string;
}

export type SubscriptionCreated = LinkageEvent<'SubscriptionCreated', SubscriptionCreatedData>;
export type SubscriptionCancelled = LinkageEvent<'SubscriptionCancelled', SubscriptionCancelledData>;
export type SubscriptionExpired = LinkageEvent<'SubscriptionExpired', SubscriptionExpiredData>;
export type SubscriptionEnded = LinkageEvent<'SubscriptionEnded', SubscriptionEndedData>;
export type SubscriptionEvent = SubscriptionCreated | SubscriptionCancelled | SubscriptionExpired | SubscriptionEnded;

export const SUBSCRIPTION_EVENT_TYPES: ReadonlySet<string> = new Set(['SubscriptionCreated', 'SubscriptionCancelled', 'SubscriptionExpired', 'SubscriptionEnded']);

export type SubscriptionState =
  | { readonly status: 'none' }
  | {
      readonly status: SubscriptionStatus;
      readonly subscription: SubscriptionCreatedData;
      /** When it stopped being active (cancelled, expired or ended). */
      readonly endedAt?: string;
      readonly endReason?: SubscriptionEndReason;
    };

export function initialSubscriptionState(): SubscriptionState {
  return { status: 'none' };
}

export function evolveSubscription(state: SubscriptionState, event: Evolvable<SubscriptionEvent>): SubscriptionState {
  switch (event.type) {
    case 'SubscriptionCreated':
      return { status: 'active', subscription: event.data };
    case 'SubscriptionCancelled':
      return state.status === 'none' ? state : { ...state, status: 'cancelled', endedAt: event.data.cancelledAt };
    case 'SubscriptionExpired':
      return state.status === 'none' ? state : { ...state, status: 'expired', endedAt: event.data.expiredAt };
    case 'SubscriptionEnded':
      return state.status === 'none' ? state : { ...state, status: 'ended', endedAt: event.data.endedAt, endReason: event.data.reason };
    default:
      return unreachable(event, 'type');
  }
}

export function decideSubscription(command: SubscriptionCommand, state: SubscriptionState): readonly SubscriptionEvent[] {
  switch (command.type) {
    case 'CreateSubscription':
      return create(command.data, state);
    case 'CancelSubscription':
      return cancel(command.data, state);
    case 'ExpireSubscription':
      return expire(command.data, state);
    case 'EndSubscription':
      return end(command.data, state);
    default:
      return unreachable(command, 'type');
  }
}

export const subscriptionDecider: Decider<SubscriptionState, SubscriptionCommand, SubscriptionEvent, Evolvable<SubscriptionEvent>> = {
  initialState: initialSubscriptionState,
  evolve: evolveSubscription,
  decide: decideSubscription,
};

function malformed(message: string): SubscriptionError {
  return new SubscriptionError('MALFORMED', message);
}

function instant(value: unknown, field: string): string {
  if (!isInstant(value)) throw malformed(`${field} must be an RFC 3339 timestamp with an offset`);
  return value;
}

function create(c: CreateSubscriptionData, state: SubscriptionState): readonly SubscriptionCreated[] {
  const subscriptionId = requireId(c.subscriptionId, 'subscriptionId');
  // Created already (a retry of the same subscription id): nothing more to record.
  if (state.status !== 'none') return [];
  if (!isAgencyId(c.requesterAgencyId) || !isAgencyId(c.providerAgencyId)) throw malformed('requesterAgencyId and providerAgencyId must be agency ids');
  if (!isAgencyKind(c.requesterKind) || !isAgencyKind(c.providerKind)) throw malformed('requesterKind and providerKind must be agency kinds');
  if (!isSubjectId(c.subjectId)) throw malformed('subjectId must be a subject id');
  if (!isAgencyCode(c.requesterCode)) throw malformed('requesterCode must be an agency code');
  if (!Array.isArray(c.itemCodes) || c.itemCodes.length > SUBSCRIPTION_MAX_ITEMS) throw malformed(`itemCodes must list 1–${SUBSCRIPTION_MAX_ITEMS} item codes`);
  if (c.providerAgencyId === c.requesterAgencyId) throw new SubscriptionError('PROVIDER_IS_REQUESTER', 'an agency cannot subscribe to its own copies: it knows when it updates them');
  const createdAt = instant(c.createdAt, 'createdAt');
  const createdMs = Date.parse(createdAt);
  const expiresAt = instant(c.expiresAt, 'expiresAt');
  const expiresMs = Date.parse(expiresAt);
  if (expiresMs <= createdMs) throw new SubscriptionError('INVALID_EXPIRY', `expiresAt (${expiresAt}) must be later than now (${createdAt})`, { expiresAt });
  if (expiresMs - createdMs > SUBSCRIPTION_MAX_TERM_MS) {
    throw new SubscriptionError('INVALID_EXPIRY', `a subscription lasts at most five years: expiresAt (${expiresAt}) is more than five years after now (${createdAt})`, { expiresAt });
  }
  let decision;
  try {
    decision = authorizePush(c.policy, {
      requesterKind: c.requesterKind,
      procedureCode: c.procedureCode,
      providerKind: c.providerKind,
      itemCodes: c.itemCodes,
      at: createdAt,
      ...(c.requestedTableVersion === undefined ? {} : { requestedTableVersion: c.requestedTableVersion }),
    });
  } catch (error) {
    throw malformed(error instanceof Error ? error.message : String(error));
  }
  if (!decision.allowed) {
    const { allowed: _allowed, reason, message, ...details } = decision;
    throw new SubscriptionError(reason, message, details);
  }
  if (c.overlapping !== undefined) {
    const shared = c.itemCodes.filter((i) => c.overlapping!.itemCodes.includes(i));
    throw new SubscriptionError(
      'SUBSCRIPTION_EXISTS',
      `the calling agency already holds active subscription ${c.overlapping.subscriptionId} to item(s) ${shared.join(', ')} of agency ${c.providerAgencyId} for this person; cancel it first or subscribe to other items`,
      { subscriptionId: c.overlapping.subscriptionId, itemCodes: shared },
    );
  }
  return [
    {
      type: 'SubscriptionCreated',
      schemaVersion: 1,
      data: {
        subscriptionId,
        requesterAgencyId: c.requesterAgencyId,
        requesterKind: c.requesterKind,
        providerAgencyId: c.providerAgencyId,
        providerKind: c.providerKind,
        subjectId: c.subjectId,
        requesterCode: c.requesterCode,
        procedureCode: c.procedureCode,
        itemCodes: [...c.itemCodes],
        tableVersion: decision.tableVersion,
        createdAt,
        expiresAt,
      },
      terminal: 'completed',
    },
  ];
}

function parties(s: SubscriptionCreatedData): SubscriptionParties {
  return { subscriptionId: s.subscriptionId, requesterAgencyId: s.requesterAgencyId, providerAgencyId: s.providerAgencyId, subjectId: s.subjectId };
}

function cancel(c: CancelSubscriptionData, state: SubscriptionState): readonly SubscriptionCancelled[] {
  const cancelledAt = instant(c.cancelledAt, 'cancelledAt');
  // Another agency's subscription is answered as none at all: its existence is not the caller's to learn.
  if (state.status === 'none' || state.subscription.requesterAgencyId !== c.requesterAgencyId) {
    throw new SubscriptionError('SUBSCRIPTION_NOT_FOUND', `the calling agency holds no subscription ${c.subscriptionId}`);
  }
  if (state.status !== 'active') {
    throw new SubscriptionError('SUBSCRIPTION_NOT_ACTIVE', `subscription ${c.subscriptionId} is ${state.status} already (since ${state.endedAt ?? '?'})`, { status: state.status });
  }
  return [{ type: 'SubscriptionCancelled', schemaVersion: 1, data: { ...parties(state.subscription), cancelledAt }, terminal: 'completed' }];
}

function expire(c: ExpireSubscriptionData, state: SubscriptionState): readonly SubscriptionExpired[] {
  const expiredAt = instant(c.expiredAt, 'expiredAt');
  // Not active (ended meanwhile) or not due yet: the sweep has nothing to record.
  if (state.status !== 'active' || Date.parse(state.subscription.expiresAt) > Date.parse(expiredAt)) return [];
  return [{ type: 'SubscriptionExpired', schemaVersion: 1, data: { ...parties(state.subscription), expiresAt: state.subscription.expiresAt, expiredAt }, terminal: 'completed' }];
}

function end(c: EndSubscriptionData, state: SubscriptionState): readonly SubscriptionEnded[] {
  const endedAt = instant(c.endedAt, 'endedAt');
  if (c.reason !== 'TABLE_WITHDREW_PUSH') throw malformed('reason must be TABLE_WITHDREW_PUSH');
  if (!Number.isSafeInteger(c.tableVersion) || c.tableVersion < 1) throw malformed('tableVersion must be an integer ≥ 1');
  if (state.status !== 'active') return [];
  const withdrawn = c.withdrawnItems.filter((i) => state.subscription.itemCodes.includes(i));
  // Nothing of this subscription's is withdrawn: it stays.
  if (withdrawn.length === 0) return [];
  return [
    {
      type: 'SubscriptionEnded',
      schemaVersion: 1,
      data: { ...parties(state.subscription), reason: c.reason, tableVersion: c.tableVersion, withdrawnItems: withdrawn, endedAt },
      terminal: 'completed',
    },
  ];
}
