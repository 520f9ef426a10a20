import { Inject, Injectable, Logger } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { createHash, randomUUID } from 'node:crypto';
import type { EventStore, SerialNumber } from '#ledger';
import {
  copyUpdateStreamId,
  decideCopyUpdate,
  decidePushIssue,
  itemsNotProvided,
  pushStreamId,
  type AgencyId,
  type CopyUpdatedData,
  type SubjectId,
} from '#linkage';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { appendDecided, IdempotencyKeys, replayOrRethrow, type Caller, type Outcome } from '../ledger/idempotency.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { HubCodeMapper } from '../linkage/hub-code-mapper.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { eventOfSerial } from '../numbering/commands/replay.js';
import { PUSH_SUBSCRIBERS, type PushSubscribers } from './subscribers.js';

export interface ReportedUpdate {
  readonly updateId: string;
  readonly serial: string;
  /** Pushes issued: one per active subscription and item. */
  readonly subscribers: number;
  readonly reportedAt: string;
}

export interface UpdateReport {
  readonly code: string;
  readonly itemCodes: readonly string[];
  readonly updatedAt?: string;
}

/** One push to issue: the subscription, the subscriber and its own code for the person. */
interface PlannedPush {
  readonly pushId: string;
  readonly subscriptionId: string;
  readonly requesterAgencyId: string;
  readonly procedureCode: string;
  readonly itemCode: string;
  readonly code: string;
}

/** Appends issued at once in one step of a fan-out (they join the ledger's group commit). */
const ISSUE_CHUNK = 256;
/** Steps of a fan-out in flight at once. */
const ISSUE_WINDOW = 4;

/**
 * The fan-out id of a push: derived from the report, the subscription and the item, so a fan-out resumed
 * after a crash finds the pushes already issued (their stream exists) and issues each missing one once.
 */
export function pushIdOf(updateId: string, subscriptionId: string, itemCode: string): string {
  const h = createHash('sha256').update(`push\0${updateId}\0${subscriptionId}\0${itemCode}`).digest('hex');
  // RFC 9562 UUIDv8 layout: version 8, variant 10.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * A provider's report of a changed copy and its fan-out. The report is one command (CopyUpdated, its own
 * serial, ended when appended) that says how many pushes it announces; each push is another command
 * (PushIssued on its own stream, its own serial). A hub killed between the two finds the report in the
 * pushes projection with fewer pushes issued than announced, and the delivery worker resumes it (`resume`).
 */
@Injectable()
export class PushFanOut {
  readonly #logger = new Logger('PushFanOut');
  /** Reports being fanned out by this process now (bounded by the requests in flight). */
  readonly #inFlight = new Set<string>();
  #issued: () => void = () => {};

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly mapper: HubCodeMapper,
    private readonly views: LinkageViews,
    private readonly idempotencyKeys: IdempotencyKeys,
    private readonly eventBus: EventBus,
    private readonly config: HubConfig,
    @Inject(PUSH_SUBSCRIBERS) private readonly subscribers: PushSubscribers,
  ) {}

  /** Called after pushes were issued (the delivery worker wakes up). */
  onIssued(listener: () => void): void {
    this.#issued = listener;
  }

  isInFlight(updateId: string): boolean {
    return this.#inFlight.has(updateId);
  }

  /**
   * The provider's report: its own code resolves the person (only a code issued to the caller), every
   * item must be one the caller's kind provides in the table in force; then CopyUpdated, then the pushes.
   */
  async report(agencyId: AgencyId, input: UpdateReport, caller: Caller): Promise<Outcome<ReportedUpdate>> {
    const itemCodes = [...new Set(input.itemCodes)];
    const idempotency = this.idempotencyKeys.scope(caller, { code: input.code, itemCodes, ...(input.updatedAt === undefined ? {} : { updatedAt: input.updatedAt }) });
    const updateId = randomUUID();
    try {
      await this.views.catchUp();
      const agency = this.views.agency(agencyId);
      if (agency.status !== 'active') throw new HubProblem('FORBIDDEN', 'only an active agency reports updates');
      const now = this.clock();
      const reportedAt = now.toISOString();
      const inForce = this.views.inForce(reportedAt);
      if (inForce === undefined) throw new HubProblem('TABLE_VERSION_NOT_IN_FORCE', 'no authorization table is in force: nothing can be reported or pushed');
      const missing = itemsNotProvided(inForce.table.table, agency.agency.kind, itemCodes);
      if (missing.length > 0) {
        throw new HubProblem(
          'UPDATE_ITEM_NOT_PROVIDED',
          `the authorization table in force (version ${inForce.table.version}) lets no ${agency.agency.kind} provide ${missing.join(', ')}: report only items your agency provides`,
          { items: missing },
        );
      }
      const subjectId = await this.mapper.mapper.resolve(agencyId, input.code);
      if (subjectId === undefined) throw new HubProblem('UNKNOWN_CODE', 'no person holds this code at the reporting agency; use the code the hub issued to your agency for the person');
      this.#inFlight.add(updateId);
      try {
        const plan = await this.#plan(updateId, agencyId, subjectId, itemCodes);
        const data: CopyUpdatedData = {
          updateId,
          subjectId,
          providerAgencyId: agencyId,
          itemCodes,
          updatedAt: input.updatedAt === undefined ? reportedAt : new Date(input.updatedAt).toISOString(),
          reportedAt,
          pushes: plan.length,
          tableVersion: inForce.table.version,
        };
        const outcome = await appendDecided(
          this.store,
          this.eventBus,
          { streamId: copyUpdateStreamId(updateId), expectedRevision: 'no_stream', events: decideCopyUpdate(data), caller, idempotency },
          (result) => ({ updateId, serial: result.serial, subscribers: plan.length, reportedAt }),
          (serial) => this.#replay(serial),
        );
        if (!outcome.replayed) await this.#issue(data, plan, caller.correlationId);
        return outcome;
      } finally {
        this.#inFlight.delete(updateId);
      }
    } catch (error) {
      return replayOrRethrow(error, this.store, idempotency, (serial) => this.#replay(serial));
    }
  }

  /**
   * Resumes a fan-out a crash cut short: reads the report back (opened), asks the directory again and
   * issues every push whose stream does not exist yet. Subscriptions ended in between get none.
   */
  async resume(updateId: string): Promise<number> {
    if (this.#inFlight.has(updateId)) return 0;
    this.#inFlight.add(updateId);
    try {
      const event = (await this.store.readStream(copyUpdateStreamId(updateId), { maxCount: 1 })).find((e) => e.type === 'CopyUpdated');
      if (event === undefined) return 0;
      const data = event.data as CopyUpdatedData;
      if (typeof data.subjectId !== 'string') return 0; // the person's key was shredded: nothing to push
      const plan = await this.#plan(updateId, data.providerAgencyId, data.subjectId, data.itemCodes);
      const issued = await this.#issue(data, plan, `push-resume-${updateId}`);
      if (issued > 0) this.#logger.warn(`resumed the fan-out of update ${updateId}: ${issued} push(es) issued after a restart`);
      return issued;
    } finally {
      this.#inFlight.delete(updateId);
    }
  }

  async #plan(updateId: string, providerAgencyId: string, subjectId: SubjectId, itemCodes: readonly string[]): Promise<PlannedPush[]> {
    const plan: PlannedPush[] = [];
    for (const itemCode of itemCodes) {
      const subscribers = await this.subscribers.activeSubscribers(providerAgencyId, subjectId, itemCode);
      const codes = await Promise.all(subscribers.map((s) => (s.requesterAgencyId === providerAgencyId ? undefined : this.mapper.mapper.codeFor(subjectId, s.requesterAgencyId))));
      subscribers.forEach((s, i) => {
        const code = codes[i];
        // A subscriber without a code for the person (erased since) gets no push.
        if (code === undefined) return;
        plan.push({ pushId: pushIdOf(updateId, s.subscriptionId, itemCode), subscriptionId: s.subscriptionId, requesterAgencyId: s.requesterAgencyId, procedureCode: s.procedureCode, itemCode, code });
      });
    }
    return plan;
  }

  /** Issues the planned pushes (each its own stream and serial); a push already issued is skipped. Returns how many this call issued. */
  async #issue(update: CopyUpdatedData, plan: readonly PlannedPush[], correlationId: string): Promise<number> {
    let issued = 0;
    let next = 0;
    // Up to ISSUE_WINDOW chunks in flight, so the ledger's writer always has the next batches queued.
    const lane = async (): Promise<void> => {
      while (next < plan.length) {
        const chunk = plan.slice(next, next + ISSUE_CHUNK);
        next += chunk.length;
        const results = await Promise.all(chunk.map((p) => this.#issueOne(update, p, correlationId)));
        issued += results.reduce<number>((a, b) => a + b, 0);
        this.#issued();
      }
    };
    await Promise.all(Array.from({ length: ISSUE_WINDOW }, lane));
    return issued;
  }

  async #issueOne(update: CopyUpdatedData, p: PlannedPush, correlationId: string): Promise<number> {
    const issuedAt = this.clock();
    const events = decidePushIssue({
      pushId: p.pushId,
      updateId: update.updateId,
      subjectId: update.subjectId,
      subscriptionId: p.subscriptionId,
      code: p.code,
      requesterAgencyId: p.requesterAgencyId as AgencyId,
      providerAgencyId: update.providerAgencyId,
      procedureCode: p.procedureCode,
      itemCode: p.itemCode,
      updatedAt: update.updatedAt,
      issuedAt: issuedAt.toISOString(),
      deliverBy: new Date(issuedAt.getTime() + this.config.pushes.deadlineMs).toISOString(),
    });
    const streamId = pushStreamId(p.pushId);
    try {
      const result = await this.store.append({
        streamId,
        expectedRevision: 'no_stream',
        events,
        serial: { allocate: true },
        metadata: { actor: `agency:${update.providerAgencyId}`, correlationId },
      });
      this.eventBus.publish(EventsAppended.of(streamId, result, ['PushIssued']));
      return 1;
    } catch (error) {
      if (isRevisionConflict(error)) return 0;
      throw error;
    }
  }

  async #replay(serial: SerialNumber): Promise<ReportedUpdate> {
    const event = await eventOfSerial<CopyUpdatedData>(this.store, serial, 'CopyUpdated');
    return { updateId: event.data.updateId, serial, subscribers: event.data.pushes, reportedAt: event.data.reportedAt };
  }
}

/** The ledger's refusal of an append whose stream moved on (WRONG_EXPECTED_REVISION): the step was recorded already. */
export function isRevisionConflict(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'WRONG_EXPECTED_REVISION';
}
