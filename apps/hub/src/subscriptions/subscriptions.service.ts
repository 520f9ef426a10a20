import { Inject, Injectable } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import type { EventStore, SerialNumber } from '#ledger';
import {
  SUBSCRIPTION_DEFAULT_TERM_MS,
  SUBSCRIPTION_EVENT_TYPES,
  SubscriptionError,
  decideSubscription,
  subscriptionDecider,
  subscriptionStreamId,
  type AgencyCode,
  type AgencyId,
  type Evolvable,
  type SubscriptionCommand,
  type SubscriptionCreatedData,
  type SubscriptionEvent,
  type SubscriptionState,
} from '#linkage';
import { EventSealer } from '#sealing';
import { HubProblem } from '../http/hub-problem.js';
import type { ProblemCode } from '../http/problem-catalog.js';
import { appendDecided, IdempotencyKeys, priorSerial, type Caller, type Outcome } from '../ledger/idempotency.js';
import { loadStream, type Fold } from '../ledger/load-stream.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { HubCodeMapper } from '../linkage/hub-code-mapper.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { eventOfSerial } from '../numbering/commands/replay.js';
import { SubscriptionDirectory } from './subscription-directory.js';
import type { StoredSubscription } from './subscription-index.js';

export const SUBSCRIPTION_FOLD: Fold<SubscriptionState, Evolvable<SubscriptionEvent>> = {
  initialState: subscriptionDecider.initialState,
  evolve: subscriptionDecider.evolve,
  types: SUBSCRIPTION_EVENT_TYPES,
};

export interface SubscribeRequest {
  readonly code: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly expiresAt?: string;
  readonly requesterAgencyId?: string;
  readonly tableVersion?: number;
}

export interface Subscribed {
  readonly subscriptionId: string;
  readonly serial: string;
  readonly status: 'active';
  readonly tableVersion: number;
  readonly createdAt: string;
  readonly expiresAt: string;
}

export interface Cancelled {
  readonly subscriptionId: string;
  readonly serial: string;
  readonly status: 'cancelled';
}

/** A subscription as its subscriber sees it. */
export interface SubscriptionView {
  readonly subscriptionId: string;
  readonly serial: string;
  readonly code: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly tableVersion: number;
  readonly status: StoredSubscription['status'];
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly endedAt?: string;
  readonly endReason?: string;
}

/** A subscription to a person's information as that person sees it: no agency's code. */
export interface CitizenSubscriptionView {
  readonly subscriptionId: string;
  readonly requester: { readonly agencyId: string; readonly name: string | null };
  readonly provider: { readonly agencyId: string; readonly name: string | null };
  readonly procedure: { readonly code: string; readonly name: string | null };
  readonly items: readonly { readonly code: string; readonly name: string | null }[];
  readonly status: StoredSubscription['status'];
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly endedAt?: string;
  readonly endReason?: string;
}

/** A refusal of the decider as the hub answers it (recorded as a RequestRefused event by the refusal filter, I6). */
export function problemOf(error: SubscriptionError): HubProblem {
  const code: ProblemCode = error.code === 'MALFORMED' ? 'VALIDATION_FAILED' : error.code;
  return new HubProblem(code, error.message, error.details);
}

/**
 * The subscription commands of an agency (issue 14): subscribe, cancel, and its own subscriptions read
 * from the subscription index. Each command is one append with its own serial; a refusal changes nothing
 * (the edge records it as a RequestRefused event). The person is named by the subscriber's own code,
 * resolved here (I7); the events hold the subject id and the code sealed (I10).
 */
@Injectable()
export class SubscriptionsService {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly views: LinkageViews,
    private readonly mapper: HubCodeMapper,
    private readonly directory: SubscriptionDirectory,
    private readonly sealer: EventSealer,
    private readonly idempotencyKeys: IdempotencyKeys,
    private readonly eventBus: EventBus,
  ) {}

  /**
   * Subscribe commands one at a time (one chain for the hub, nothing per person): the overlap check reads
   * the index, which follows the log, so two identical subscriptions sent at once must not both pass it.
   */
  #subscribing: Promise<unknown> = Promise.resolve();

  async subscribe(agencyId: AgencyId, request: SubscribeRequest, caller: Caller): Promise<Outcome<Subscribed>> {
    const run = this.#subscribing.then(
      () => this.#subscribe(agencyId, request, caller),
      () => this.#subscribe(agencyId, request, caller),
    );
    this.#subscribing = run.catch(() => undefined);
    return run;
  }

  async #subscribe(agencyId: AgencyId, request: SubscribeRequest, caller: Caller): Promise<Outcome<Subscribed>> {
    const idempotency = this.idempotencyKeys.scope(caller, { ...request });
    // A retry of a subscription made (same Idempotency-Key, same request) answers it, not SUBSCRIPTION_EXISTS.
    if (idempotency !== undefined) {
      const prior = await priorSerial(this.store, idempotency);
      if (prior !== undefined) return { value: await this.#replayCreated(prior), replayed: true };
    }
    if (request.requesterAgencyId !== undefined && request.requesterAgencyId !== agencyId) {
      throw new HubProblem('CREDENTIAL_MISMATCH', `the credential is agency ${agencyId}'s, not ${request.requesterAgencyId}'s: an agency subscribes only for itself`);
    }
    await this.views.catchUp();
    const requester = this.views.agency(agencyId);
    if (requester.status !== 'active') throw new HubProblem('UNAUTHENTICATED', 'the bearer token is not the current credential of an active agency');
    const provider = this.views.agency(request.providerAgencyId);
    if (provider.status === 'unregistered') throw new HubProblem('UNKNOWN_PROVIDER', `no agency is registered as ${request.providerAgencyId}`);
    if (provider.status === 'revoked') throw new HubProblem('PROVIDER_REVOKED', `agency ${request.providerAgencyId} is revoked`);
    const subjectId = await this.mapper.mapper.resolve(agencyId, request.code);
    if (subjectId === undefined) {
      throw new HubProblem('CODE_NOT_ISSUED_TO_REQUESTER', 'the code is not one the hub issued to the subscribing agency; use your own code for the person (POST /v1/agency-codes)');
    }
    if (request.providerAgencyId !== agencyId && (await this.mapper.mapper.codeFor(subjectId, request.providerAgencyId)) === undefined) {
      throw new HubProblem('NO_CODE_AT_PROVIDER', 'the providing agency holds no code for this person, so it holds no copy to update');
    }
    const now = this.clock().toISOString();
    const subscriptionId = randomUUID();
    // The index answers, caught up to every subscription acknowledged before (the chain above orders them).
    const overlapping = (await this.directory.current()).overlapping(agencyId, request.providerAgencyId, subjectId, request.itemCodes, Date.parse(now));
    let events: readonly SubscriptionEvent[];
    try {
      events = decideSubscription(
        {
          type: 'CreateSubscription',
          data: {
            subscriptionId,
            requesterAgencyId: agencyId,
            requesterKind: requester.agency.kind,
            providerAgencyId: request.providerAgencyId as AgencyId,
            providerKind: provider.agency.kind,
            subjectId,
            requesterCode: request.code as AgencyCode,
            procedureCode: request.procedureCode,
            itemCodes: request.itemCodes,
            createdAt: now,
            expiresAt: request.expiresAt ?? new Date(Date.parse(now) + SUBSCRIPTION_DEFAULT_TERM_MS).toISOString(),
            ...(request.tableVersion === undefined ? {} : { requestedTableVersion: request.tableVersion }),
            policy: this.views.inForce(now)?.policy,
            ...(overlapping === undefined ? {} : { overlapping }),
          },
        },
        subscriptionDecider.initialState(),
      );
    } catch (error) {
      if (error instanceof SubscriptionError) throw problemOf(error);
      throw error;
    }
    const created = events[0]!.data as SubscriptionCreatedData;
    return appendDecided(
      this.store,
      this.eventBus,
      { streamId: subscriptionStreamId(subscriptionId), expectedRevision: 'no_stream', events, caller, idempotency },
      (result) => ({ subscriptionId, serial: result.serial, status: 'active' as const, tableVersion: created.tableVersion, createdAt: created.createdAt, expiresAt: created.expiresAt }),
      (serial) => this.#replayCreated(serial),
    );
  }

  /** Cancels; a retry with the same Idempotency-Key answers the first cancellation (replayed) instead of SUBSCRIPTION_NOT_ACTIVE. */
  async cancel(agencyId: AgencyId, subscriptionId: string, caller: Caller): Promise<Outcome<Cancelled>> {
    const idempotency = this.idempotencyKeys.scope(caller, { subscriptionId });
    if (idempotency !== undefined) {
      const prior = await priorSerial(this.store, idempotency);
      if (prior !== undefined) {
        await eventOfSerial(this.store, prior, 'SubscriptionCancelled');
        return { value: { subscriptionId, serial: prior, status: 'cancelled' }, replayed: true };
      }
    }
    const streamId = subscriptionStreamId(subscriptionId);
    const { state, expectedRevision } = await loadStream(this.store, streamId, SUBSCRIPTION_FOLD);
    const events = this.#decide({ type: 'CancelSubscription', data: { subscriptionId, requesterAgencyId: agencyId, cancelledAt: this.clock().toISOString() } }, state);
    return appendDecided(
      this.store,
      this.eventBus,
      { streamId, expectedRevision, events, caller, idempotency },
      (result) => ({ subscriptionId, serial: result.serial, status: 'cancelled' as const }),
      async (serial) => ({ subscriptionId, serial, status: 'cancelled' as const }),
    );
  }

  /** One of the agency's subscriptions; another agency's (or none) is SUBSCRIPTION_NOT_FOUND. */
  async get(agencyId: AgencyId, subscriptionId: string): Promise<SubscriptionView> {
    const found = (await this.directory.current()).subscription(subscriptionId);
    if (found === undefined || found.requesterAgencyId !== agencyId) throw new HubProblem('SUBSCRIPTION_NOT_FOUND', `the calling agency holds no subscription ${subscriptionId}`);
    return this.#view(found);
  }

  /** The agency's subscriptions in the order they were made (every status), paged with `after`. */
  async list(agencyId: AgencyId, options: { readonly limit?: number; readonly after?: string }): Promise<{ readonly subscriptions: SubscriptionView[]; readonly next?: string }> {
    const page = (await this.directory.current()).page(agencyId, options);
    return { subscriptions: page.subscriptions.map((s) => this.#view(s)), ...(page.next === undefined ? {} : { next: page.next }) };
  }

  /**
   * The subscriptions to the person's own information (the citizen's view, as their provision record
   * shows who asked): who watches which items of which provider, for which procedure, and until when.
   * No code and no subscription serial of an agency is shown; names are the registry's and the table's now.
   */
  async ofCitizen(subjectId: string, options: { readonly limit?: number; readonly after?: string }): Promise<{ readonly subscriptions: CitizenSubscriptionView[]; readonly next?: string }> {
    const page = (await this.directory.current()).pageOfSubject(subjectId, options);
    await this.views.catchUp();
    const policy = this.views.inForce(this.clock().toISOString())?.policy;
    const agency = (agencyId: string) => {
      const a = this.views.agency(agencyId);
      return { agencyId, name: a.status === 'unregistered' ? null : a.agency.name };
    };
    const itemName = (code: string): string | null => {
      for (const row of policy?.rows.values() ?? []) {
        const found = row.items.find((i) => i.code === code);
        if (found !== undefined) return found.name;
      }
      return null;
    };
    return {
      subscriptions: page.subscriptions.map((s) => ({
        subscriptionId: s.subscriptionId,
        requester: agency(s.requesterAgencyId),
        provider: agency(s.providerAgencyId),
        procedure: { code: s.procedureCode, name: policy?.procedures.get(s.procedureCode)?.name ?? null },
        items: s.itemCodes.map((code) => ({ code, name: itemName(code) })),
        status: s.status,
        createdAt: s.createdAt,
        expiresAt: s.expiresAt,
        ...(s.endedAt === undefined ? {} : { endedAt: s.endedAt }),
        ...(s.endReason === undefined ? {} : { endReason: s.endReason }),
      })),
      ...(page.next === undefined ? {} : { next: page.next }),
    };
  }

  #decide(command: SubscriptionCommand, state: SubscriptionState): readonly SubscriptionEvent[] {
    try {
      return decideSubscription(command, state);
    } catch (error) {
      if (error instanceof SubscriptionError) throw problemOf(error);
      throw error;
    }
  }

  #view(s: StoredSubscription): SubscriptionView {
    const opened = this.sealer.open({ type: 'SubscriptionCreated', schemaVersion: s.created.schemaVersion, streamId: s.created.streamId, data: s.created.data });
    const code = (opened.event.data as { requesterCode?: unknown }).requesterCode;
    return {
      subscriptionId: s.subscriptionId,
      serial: s.serial,
      code: typeof code === 'string' ? code : '',
      providerAgencyId: s.providerAgencyId,
      procedureCode: s.procedureCode,
      itemCodes: s.itemCodes,
      tableVersion: s.tableVersion,
      status: s.status,
      createdAt: s.createdAt,
      expiresAt: s.expiresAt,
      ...(s.endedAt === undefined ? {} : { endedAt: s.endedAt }),
      ...(s.endReason === undefined ? {} : { endReason: s.endReason }),
    };
  }

  async #replayCreated(serial: SerialNumber): Promise<Subscribed> {
    const event = await eventOfSerial<SubscriptionCreatedData>(this.store, serial, 'SubscriptionCreated');
    const d = event.data;
    return { subscriptionId: d.subscriptionId, serial, status: 'active', tableVersion: d.tableVersion, createdAt: d.createdAt, expiresAt: d.expiresAt };
  }
}
