import { Inject, Injectable, Logger } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { createHash, randomUUID } from 'node:crypto';
import { IdempotencyKeyReusedError, voidSerials, type AppendResult, type EventStore, type IdempotencyOptions, type SerialNumber } from '#ledger';
import {
  decideQuery,
  evolveQuery,
  initialQueryState,
  PROVISION_PROTOCOL,
  queryStreamId,
  type AgencyKind,
  type CodeTranslation,
  type QueryBatch,
  type QueryEvent,
  type QueryState,
} from '#linkage';
import { asCodeTranslation } from '#mapper';
import { EventsAppended } from '../../ledger/events-appended.event.js';
import type { Caller } from '../../ledger/idempotency.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { HubProblem } from '../../http/hub-problem.js';
import { HubCodeMapper } from '../hub-code-mapper.js';
import { LinkageViews } from '../linkage-views.js';
import { ProviderClient, type ProviderReply, type ProvisionRequestBody } from './provider-client.js';
import type { QueryResult } from './query-outcome.js';

/** A query as the requester sends it, once its agency is known from the credential. */
export interface QueryRequest {
  /** The agency the request says it is sent by (the body's requesterAgencyId, else the credential's agency). */
  readonly requesterAgencyId: string;
  /** Digest of the presented bearer token. */
  readonly credentialDigest: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly answerPublicKey?: string;
  readonly tableVersion?: number;
}

/** One person of a query: the requester's own code for them. */
interface Person {
  readonly code: string;
  readonly translation: CodeTranslation;
  readonly batch?: QueryBatch;
  readonly idempotency?: IdempotencyOptions;
}

/** A submitted query whose serial is open, waiting for the provider. */
interface Pending {
  readonly serial: SerialNumber;
  readonly queryId: string;
  readonly state: QueryState;
  readonly provision: ProvisionRequestBody;
  readonly tableVersion: number;
  readonly batch?: QueryBatch;
}

type Submitted = { readonly kind: 'done'; readonly result: QueryResult } | { readonly kind: 'pending'; readonly pending: Pending };

/**
 * The steps of a query request in the hub, each timed from its start until its result is in (for metrics):
 * `translate` the views' catch-up and the code mapper; `record` the decisions, their sealing and the first
 * append until durable; `provider` the provision call (its wait to be coalesced with others included); `end`
 * the outcomes' append until durable. A denied or replayed request has no `provider` nor `end`.
 */
export type QueryStage = 'translate' | 'record' | 'provider' | 'end';
export const QUERY_STAGES: readonly QueryStage[] = ['translate', 'record', 'provider', 'end'];

/** Told the duration of each step of each query request. Must not throw or block. */
export type QueryStageObserver = (stage: QueryStage, seconds: number) => void;

/**
 * The query → provision lifecycle (README, Architecture): decide under a new serial (QueryAccepted +
 * ProvisionRequested, or QueryDenied), call the provider with its own code, then end the serial with the
 * answer's digest and size (I5), the provider's refusal, or the failure. The hub never decrypts, keeps
 * or logs an answer: it relays the bytes.
 */
@Injectable()
export class QueryRunner {
  /** Queries still being answered, by scoped idempotency key: a retry joins the original instead of failing. */
  readonly #inFlight = new Map<string, { readonly digest: string; readonly result: Promise<QueryResult[]> }>();
  readonly #logger = new Logger('Queries');
  #stageObserver: QueryStageObserver | undefined;

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly views: LinkageViews,
    private readonly mapper: HubCodeMapper,
    private readonly provider: ProviderClient,
    private readonly eventBus: EventBus,
  ) {}

  /** Installs (or with undefined removes) the one observer of the steps' durations (see QueryStage). */
  observeStages(observer: QueryStageObserver | undefined): void {
    this.#stageObserver = observer;
  }

  /** Tells the observer how long `stage` took since `started` (performance.now()), and answers now. */
  #stage(stage: QueryStage, started: number): number {
    const now = performance.now();
    try {
      this.#stageObserver?.(stage, (now - started) / 1000);
    } catch {
      // metrics only
    }
    return now;
  }

  /**
   * Runs a query for one or more people (bulk: one serial each, one provider call for all). `idempotency`
   * covers the whole request; person i of a bulk request appends under `<key>#i`.
   */
  async run(request: QueryRequest, codes: readonly string[], caller: Caller, idempotency: IdempotencyOptions | undefined, bulk: boolean): Promise<QueryResult[]> {
    if (idempotency === undefined) return this.#run(request, codes, caller, undefined, bulk);
    const joined = this.#inFlight.get(idempotency.key);
    if (joined !== undefined) {
      if (joined.digest !== idempotency.requestDigest) throw new IdempotencyKeyReusedError(idempotency.key);
      return (await joined.result).map((r) => ({ ...r, replayed: true }));
    }
    const result = this.#run(request, codes, caller, idempotency, bulk);
    this.#inFlight.set(idempotency.key, { digest: idempotency.requestDigest, result });
    try {
      return await result;
    } finally {
      this.#inFlight.delete(idempotency.key);
    }
  }

  async #run(request: QueryRequest, codes: readonly string[], caller: Caller, idempotency: IdempotencyOptions | undefined, bulk: boolean): Promise<QueryResult[]> {
    const timed = this.#stageObserver !== undefined;
    let started = timed ? performance.now() : 0;
    await this.views.catchUp();
    const translations = await this.mapper.mapper.translateMany(request.requesterAgencyId, codes, request.providerAgencyId);
    if (timed) started = this.#stage('translate', started);
    const batchId = bulk ? randomUUID() : undefined;
    const people: Person[] = codes.map((code, index) => ({
      code,
      translation: asCodeTranslation(translations[index]!),
      ...(batchId === undefined ? {} : { batch: { batchId, index, size: codes.length } }),
      ...(idempotency === undefined ? {} : { idempotency: bulk ? { key: `${idempotency.key}#${index}`, requestDigest: idempotency.requestDigest } : idempotency }),
    }));
    // Every serial this run opens is ended by this run: when a step after its first append fails (a
    // person of a bulk request refused by the store, a provider call or an end that threw), the serials
    // still open are voided at once rather than left to the next start-up's recovery (I2).
    const settled = await Promise.allSettled(people.map((p) => this.#submit(request, p, caller)));
    const submitted = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const pending = submitted.flatMap((s) => (s.kind === 'pending' ? [s.pending] : []));
    const notSubmitted = settled.find((s) => s.status === 'rejected');
    if (notSubmitted !== undefined) return this.#abandon(pending, notSubmitted.reason, caller);
    if (timed) started = this.#stage('record', started);
    let replies: ProviderReply[];
    try {
      replies = await this.#ask(request.providerAgencyId, pending, bulk);
    } catch (error) {
      return this.#abandon(pending, error, caller);
    }
    if (timed && pending.length > 0) started = this.#stage('provider', started);
    const ends = await Promise.allSettled(pending.map((p, i) => this.#end(p, replies[i]!, caller)));
    if (timed && pending.length > 0) this.#stage('end', started);
    const notEnded = ends.flatMap((e, i) => (e.status === 'rejected' ? [{ pending: pending[i]!, error: e.reason as unknown }] : []));
    if (notEnded.length > 0) return this.#abandon(notEnded.map((n) => n.pending), notEnded[0]!.error, caller);
    const ended = ends.map((e) => (e as PromiseFulfilledResult<QueryResult>).value);
    let next = 0;
    return submitted.map((s) => (s.kind === 'done' ? s.result : ended[next++]!));
  }

  /**
   * Voids the serials of `pending` (SerialVoided, each in its query's stream) and rethrows `error`, the
   * failure that stopped them. A serial the store will not void (already ended, or the store itself
   * failing) is logged and left to the start-up recovery.
   */
  async #abandon(pending: readonly Pending[], error: unknown, caller: Caller): Promise<never> {
    const cause = error instanceof Error ? error.message : String(error);
    for (const p of pending) {
      try {
        await voidSerials(this.store, [p.serial], `the hub could not end the query: ${cause}`, caller.correlationId, 'system:hub');
      } catch (voidError) {
        this.#logger.error(`serial ${p.serial} stays open until the next start-up's recovery: ${voidError instanceof Error ? voidError.message : String(voidError)}`);
      }
    }
    throw error;
  }

  async #submit(request: QueryRequest, person: Person, caller: Caller): Promise<Submitted> {
    const queryId = randomUUID();
    const at = this.clock().toISOString();
    const inForce = this.views.inForce(at);
    const events = decideQuery(
      {
        type: 'SubmitQuery',
        data: {
          queryId,
          requesterAgencyId: request.requesterAgencyId,
          requester: this.views.facts(request.requesterAgencyId),
          presentedCredentialDigest: request.credentialDigest,
          providerAgencyId: request.providerAgencyId,
          provider: this.views.facts(request.providerAgencyId),
          procedureCode: request.procedureCode,
          itemCodes: request.itemCodes,
          requesterCode: person.code,
          policy: inForce?.policy,
          ...(request.tableVersion === undefined ? {} : { requestedTableVersion: request.tableVersion }),
          translation: person.translation,
          ...(request.answerPublicKey === undefined ? {} : { requesterPublicKey: request.answerPublicKey }),
          ...(person.batch === undefined ? {} : { batch: person.batch }),
          submittedAt: at,
        },
      },
      initialQueryState(),
    );
    const streamId = queryStreamId(queryId);
    const result = await this.store.append({
      streamId,
      expectedRevision: 'no_stream',
      events,
      serial: { allocate: true },
      metadata: { actor: caller.actor, correlationId: caller.correlationId },
      ...(person.idempotency === undefined ? {} : { idempotency: person.idempotency }),
    });
    if (result.status === 'duplicate') return { kind: 'done', result: await this.#replay(result.serial) };
    this.#publish(streamId, result, events);
    const first = events[0]!;
    if (first.type === 'QueryDenied') {
      const { reason, tableVersion, notAllowedItems, allowedItems, allowedProviderKinds, allowedRequesterKinds } = first.data;
      const details = { ...(notAllowedItems ? { notAllowedItems } : {}), ...(allowedItems ? { allowedItems } : {}), ...(allowedProviderKinds ? { allowedProviderKinds } : {}), ...(allowedRequesterKinds ? { allowedRequesterKinds } : {}) };
      return {
        kind: 'done',
        result: { serial: result.serial, queryId, outcome: 'denied', reason, details, ...(tableVersion === undefined ? {} : { tableVersion }), ...(person.batch ? { batch: person.batch } : {}), replayed: false },
      };
    }
    if (first.type !== 'QueryAccepted' || events[1]?.type !== 'ProvisionRequested') throw new Error(`unexpected decision ${events.map((e) => e.type).join(', ')}`);
    const accepted = first.data;
    const requested = events[1].data;
    const state = events.reduce<QueryState>((s, e) => evolveQuery(s, e), initialQueryState());
    return {
      kind: 'pending',
      pending: {
        serial: result.serial,
        queryId,
        state,
        tableVersion: accepted.tableVersion,
        ...(person.batch ? { batch: person.batch } : {}),
        provision: {
          protocol: PROVISION_PROTOCOL,
          serial: result.serial,
          queryId,
          requesterAgencyId: accepted.requesterAgencyId,
          requesterKind: accepted.requesterKind as AgencyKind,
          providerAgencyId: requested.providerAgencyId,
          code: requested.providerCode,
          procedureCode: requested.procedureCode,
          itemCodes: requested.itemCodes,
          ...(requested.answerPublicKey === undefined ? {} : { answerPublicKey: requested.answerPublicKey }),
          requestedAt: requested.requestedAt,
        },
      },
    };
  }

  async #ask(providerAgencyId: string, pending: readonly Pending[], bulk: boolean): Promise<ProviderReply[]> {
    if (pending.length === 0) return [];
    const state = this.views.agency(providerAgencyId);
    if (state.status !== 'active') return pending.map(() => ({ kind: 'failed', reason: 'PROVIDER_UNREACHABLE', detail: 'the provider was revoked meanwhile' }));
    const endpoint = state.agency.endpoint;
    if (bulk) return this.provider.provideBatch(endpoint, pending.map((p) => p.provision));
    return Promise.all(pending.map((p) => this.provider.provide(endpoint, p.provision)));
  }

  async #end(p: Pending, reply: ProviderReply, caller: Caller): Promise<QueryResult> {
    const at = this.clock().toISOString();
    const providerAgencyId = p.provision.providerAgencyId;
    let events: readonly QueryEvent[];
    let answer: QueryResult['answer'];
    switch (reply.kind) {
      case 'answered': {
        const digest = createHash('sha256').update(reply.bytes).digest('hex');
        events = decideQuery({ type: 'RecordProvisionAnswer', data: { queryId: p.queryId, providerAgencyId, answerDigest: digest, answerSize: reply.bytes.length, encrypted: reply.encrypted, answeredAt: at } }, p.state);
        answer = { data: reply.bytes.toString('base64url'), encrypted: reply.encrypted, digest, size: reply.bytes.length };
        break;
      }
      case 'refused':
        events = decideQuery({ type: 'RecordProvisionRefusal', data: { queryId: p.queryId, providerAgencyId, reason: reply.reason, refusedAt: at } }, p.state);
        break;
      case 'failed':
        events = decideQuery({ type: 'FailQuery', data: { queryId: p.queryId, reason: reply.reason, failedAt: at } }, p.state);
        break;
      default: {
        const never: never = reply;
        throw new Error(`unknown provider reply ${JSON.stringify(never)}`);
      }
    }
    const streamId = queryStreamId(p.queryId);
    const result = await this.store.append({
      streamId,
      expectedRevision: 1,
      events,
      serial: { continue: p.serial },
      metadata: { actor: caller.actor, correlationId: caller.correlationId },
    });
    this.#publish(streamId, result, events);
    const base = { serial: p.serial, queryId: p.queryId, tableVersion: p.tableVersion, ...(p.batch ? { batch: p.batch } : {}), replayed: false };
    switch (reply.kind) {
      case 'answered':
        return { ...base, outcome: 'answered', answer: answer! };
      case 'refused':
        return { ...base, outcome: 'refused-by-provider', reason: reply.reason };
      case 'failed':
        // The cause is told only when it is the hub's refusal of the server's certificate; other details (addresses, Node's errors) stay the hub's.
        return { ...base, outcome: 'failed', reason: reply.reason, ...(reply.cause === undefined ? {} : { cause: reply.cause }) };
      default: {
        const never: never = reply;
        throw new Error(`unknown provider reply ${JSON.stringify(never)}`);
      }
    }
  }

  /** The outcome of an earlier request with the same idempotency key, rebuilt from its events (no answer bytes: the hub keeps none). */
  async #replay(serial: SerialNumber): Promise<QueryResult> {
    const events = await this.store.readSerial(serial);
    const data = (type: string) => events.find((e) => e.type === type)?.data as Record<string, unknown> | undefined;
    const queryId = String((events[0]?.data as { queryId?: unknown } | undefined)?.queryId ?? '');
    const accepted = data('QueryAccepted');
    const batch = (accepted ?? data('QueryDenied'))?.['batch'] as QueryBatch | undefined;
    const base = { serial, queryId, replayed: true, ...(batch ? { batch } : {}) };
    const denied = data('QueryDenied');
    if (denied) return { ...base, outcome: 'denied', reason: String(denied['reason']), ...(typeof denied['tableVersion'] === 'number' ? { tableVersion: denied['tableVersion'] } : {}) };
    const tableVersion = accepted?.['tableVersion'] as number;
    const answered = data('ProvisionAnswered');
    if (answered) {
      return { ...base, tableVersion, outcome: 'answered', answer: { encrypted: answered['encrypted'] as boolean, digest: answered['answerDigest'] as string, size: answered['answerSize'] as number } };
    }
    const refused = data('ProvisionRefused');
    if (refused) return { ...base, tableVersion, outcome: 'refused-by-provider', reason: String(refused['reason']) };
    const failed = data('QueryFailed');
    if (failed) return { ...base, tableVersion, outcome: 'failed', reason: String(failed['reason']) };
    if (events.some((e) => e.type === 'SerialVoided')) return { ...base, tableVersion, outcome: 'failed', reason: 'INTERRUPTED' };
    throw new HubProblem('QUERY_IN_PROGRESS', `query ${queryId} (serial ${serial}) with this idempotency key is still waiting for its provider; ask again shortly`, { serial, queryId });
  }

  #publish(streamId: string, result: AppendResult, events: readonly QueryEvent[]): void {
    this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
  }
}
