import type { AuthorizationTable } from './authorization-table.js';
import type { LinkageEvent } from './decider.js';
import { LinkageError } from './errors.js';
import type { AgencyId, AgencyKind, SubjectId } from './identifiers.js';

/**
 * Copy updates and pushes (issue 14, 公共サービスメッシュ): a provider's intermediate server reports that its
 * copy (副本) of items about a person changed, by its own code and WITHOUT the data; the hub records the
 * report (CopyUpdated) and issues one push per active subscriber (PushIssued, each under a serial of its
 * own), carrying the subscriber's own code for the person, the item and the push's serial. The subscriber
 * then obtains the new value through an ordinary lawful query: one authorization path, the hub never
 * sees the data (I5), the value is current when fetched, and the provision is recorded like any other.
 *
 * Delivery is at-least-once: the hub posts the push to the subscriber's intermediate server until it
 * answers 2xx (PushDelivered) or the deadline passes (PushAbandoned); the receiver de-duplicates by pushId.
 * Every step is a command of its own, ended when appended, so nothing of a fan-out is left open at a crash
 * (the hub voids open serials at start): what remains to do is read back from the log.
 *
 * The subject and the codes are personal (I10): the hub seals them before appending. The agencies,
 * procedure, items, ids and times stay in clear.
 */

/** Items one report may name, at most. */
export const MAX_UPDATE_ITEMS = 20;

export function copyUpdateStreamId(updateId: string): string {
  return `copy-update-${updateId}`;
}

export function pushStreamId(pushId: string): string {
  return `push-${pushId}`;
}

export interface CopyUpdatedData {
  readonly updateId: string;
  readonly subjectId: SubjectId;
  readonly providerAgencyId: AgencyId;
  readonly itemCodes: readonly string[];
  /** When the provider's copy changed, as it reports (else the report's time). */
  readonly updatedAt: string;
  readonly reportedAt: string;
  /** Pushes the fan-out issues for this report (one per active subscription and item). */
  readonly pushes: number;
  /** The authorization table version in force when it was reported (the items' names). */
  readonly tableVersion: number;
}
export type CopyUpdated = LinkageEvent<'CopyUpdated', CopyUpdatedData>;

export interface PushIssuedData {
  readonly pushId: string;
  readonly updateId: string;
  readonly subjectId: SubjectId;
  readonly subscriptionId: string;
  /** The SUBSCRIBER's own code for the person (I7: never the provider's). */
  readonly code: string;
  readonly requesterAgencyId: AgencyId;
  readonly providerAgencyId: AgencyId;
  readonly procedureCode: string;
  readonly itemCode: string;
  readonly updatedAt: string;
  readonly issuedAt: string;
  /** The time after which delivery is abandoned. */
  readonly deliverBy: string;
}
export type PushIssued = LinkageEvent<'PushIssued', PushIssuedData>;

export interface PushDeliveredData {
  readonly pushId: string;
  readonly requesterAgencyId: AgencyId;
  readonly providerAgencyId: AgencyId;
  /** Deliveries tried, this one included. */
  readonly attempts: number;
  /** The receiver said it had the push already (a delivery repeated after a crash). */
  readonly duplicate: boolean;
  readonly deliveredAt: string;
}
export type PushDelivered = LinkageEvent<'PushDelivered', PushDeliveredData>;

export interface PushAbandonedData {
  readonly pushId: string;
  readonly requesterAgencyId: AgencyId;
  readonly providerAgencyId: AgencyId;
  readonly attempts: number;
  /** The last failure, in the hub's words (an HTTP status, a timeout, unreachable). */
  readonly lastError: string;
  readonly deliverBy: string;
  readonly abandonedAt: string;
}
export type PushAbandoned = LinkageEvent<'PushAbandoned', PushAbandonedData>;

export type PushEvent = PushIssued | PushDelivered | PushAbandoned;

export const PUSH_EVENT_TYPES = ['CopyUpdated', 'PushIssued', 'PushDelivered', 'PushAbandoned'] as const;

/** The report of a changed copy: one event, its own serial, ended as completed. */
export function decideCopyUpdate(data: CopyUpdatedData): readonly CopyUpdated[] {
  if (data.itemCodes.length === 0) throw new LinkageError('MALFORMED', 'an update names at least one item');
  if (!Number.isSafeInteger(data.pushes) || data.pushes < 0) throw new LinkageError('MALFORMED', 'pushes must be a count');
  return [{ type: 'CopyUpdated', schemaVersion: 1, data: { ...data, itemCodes: [...data.itemCodes] }, terminal: 'completed' }];
}

/** One push of a fan-out: its own stream and serial, ended as completed when issued. */
export function decidePushIssue(data: PushIssuedData): readonly PushIssued[] {
  if (Date.parse(data.deliverBy) < Date.parse(data.issuedAt)) throw new LinkageError('MALFORMED', 'deliverBy is before issuedAt');
  return [{ type: 'PushIssued', schemaVersion: 1, data, terminal: 'completed' }];
}

/** The state of a push's stream as far as its outcome goes. */
export type PushState = { readonly status: 'none' } | { readonly status: 'issued'; readonly issued: PushIssuedData } | { readonly status: 'ended'; readonly outcome: 'delivered' | 'abandoned' };

export function evolvePush(state: PushState, event: { readonly type: string; readonly data: unknown }): PushState {
  if (event.type === 'PushIssued') return { status: 'issued', issued: event.data as PushIssuedData };
  if (event.type === 'PushDelivered') return { status: 'ended', outcome: 'delivered' };
  if (event.type === 'PushAbandoned') return { status: 'ended', outcome: 'abandoned' };
  return state;
}

export type PushOutcomeCommand =
  | { readonly type: 'RecordDelivery'; readonly data: { readonly attempts: number; readonly duplicate: boolean; readonly at: string } }
  | { readonly type: 'AbandonPush'; readonly data: { readonly attempts: number; readonly lastError: string; readonly at: string; readonly erased?: boolean } };

/**
 * A push's end: delivered, or abandoned once its deadline passed (or at once when the person was erased:
 * the push's code no longer opens). Nothing when it ended already (the other outcome, or the same one
 * repeated after a crash); any other abandon before the deadline is refused.
 */
export function decidePushOutcome(command: PushOutcomeCommand, state: PushState): readonly (PushDelivered | PushAbandoned)[] {
  if (state.status === 'ended') return [];
  if (state.status === 'none') throw new LinkageError('MALFORMED', 'no push was issued on this stream');
  const { pushId, requesterAgencyId, providerAgencyId, deliverBy } = state.issued;
  if (command.type === 'RecordDelivery') {
    const { attempts, duplicate, at } = command.data;
    return [{ type: 'PushDelivered', schemaVersion: 1, data: { pushId, requesterAgencyId, providerAgencyId, attempts, duplicate, deliveredAt: at }, terminal: 'completed' }];
  }
  const { attempts, lastError, at } = command.data;
  // Before the deadline only when there is nothing left to deliver: the person was erased (their key shredded).
  if (command.data.erased !== true && Date.parse(at) < Date.parse(deliverBy)) throw new LinkageError('MALFORMED', `a push is abandoned only after its deadline (${deliverBy})`);
  return [{ type: 'PushAbandoned', schemaVersion: 1, data: { pushId, requesterAgencyId, providerAgencyId, attempts, lastError: lastError.slice(0, 300), deliverBy, abandonedAt: at }, terminal: 'failed' }];
}

export interface PushRetrySettings {
  /** The first retry's delay (before jitter). */
  readonly baseMs: number;
  /** The longest delay between two tries. */
  readonly maxMs: number;
}

/**
 * The delay before try `attempt + 1` after `attempt` failed tries: exponential (base · 2^(attempt-1),
 * capped at max) with "equal jitter": half of it fixed, half drawn from `random` in [0, 1), so receivers
 * that failed together do not get the retries of a whole fan-out at the same instant.
 */
export function pushRetryDelayMs(attempt: number, settings: PushRetrySettings, random: number): number {
  const n = Math.max(1, Math.floor(attempt));
  const cap = Math.min(settings.maxMs, settings.baseMs * 2 ** Math.min(n - 1, 40));
  return Math.round(cap / 2 + (cap / 2) * Math.min(Math.max(random, 0), 1));
}

/**
 * Items the table does not let an agency of `kind` report as their provider: an item is reportable
 * when some row has the kind as its provider and lists the item.
 */
export function itemsNotProvided(table: AuthorizationTable, kind: AgencyKind, itemCodes: readonly string[]): string[] {
  const provided = new Set<string>();
  for (const row of table.rows) if (row.providerKind === kind) for (const item of row.items) provided.add(item.code);
  return itemCodes.filter((c) => !provided.has(c));
}
