import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import type { EventStore, RecordedEvent } from '#ledger';
import { decidePushOutcome, evolvePush, pushRetryDelayMs, pushStreamId, type PushIssuedData, type PushOutcomeCommand, type PushState } from '#linkage';
import { HubConfig } from '../config/hub-config.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { isRevisionConflict, PushFanOut } from './push-fan-out.js';
import { PushProjection } from './push-projection.js';
import { ProjectionStopping } from '../projections/followed-projection.js';
import { PushSender, type PushBody } from './push-sender.js';
import type { DuePush, PushStore } from './push-store.js';

/** A push whose end was appended: not tried again while the projection catches up with its end. */
const DONE = Number.MAX_SAFE_INTEGER;
/** The longest the worker sleeps when nothing is due (it is woken by a fan-out before). */
const IDLE_MS = 1000;
/** Open fan-outs looked at per pass. */
const RESUME_BATCH = 16;

export interface PushDeliveryStats {
  /** Tries that failed and were scheduled again, since start. */
  readonly retries: number;
  readonly delivered: number;
  readonly abandoned: number;
  /** Deliveries under way now. */
  readonly inFlight: number;
}

/**
 * Delivers pushes, on the leader only (a standby's worker idles until it leads). Pending deliveries are
 * the `pending` rows of the pushes projection (pushes.sqlite, from the log, with a checkpoint): the worker
 * takes the due ones from an index, HUB_PUSH_CONCURRENCY at a time, posts each to the subscriber's
 * intermediate server and records the end as a command of its own: PushDelivered (any 2xx) or, once
 * HUB_PUSH_DEADLINE_MS after issue has passed, PushAbandoned. A failed try is scheduled again after an
 * exponential delay with jitter (HUB_PUSH_RETRY_BASE_MS … HUB_PUSH_RETRY_MAX_MS), kept beside the row.
 *
 * At-least-once: a hub killed after the receiver answered and before PushDelivered was durable posts the
 * push again after restart; the receiver de-duplicates by pushId. Nothing is lost: a push stays pending
 * in the projection until its end is in the log.
 */
@Injectable()
export class PushDelivery implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly #logger = new Logger('PushDelivery');
  readonly #inFlight = new Set<string>();
  #stopped = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #woken = false;
  #retries = 0;
  #delivered = 0;
  #abandoned = 0;
  #resumeChecked = false;
  #outcome: (outcome: 'delivered' | 'retry' | 'abandoned') => void = () => {};

  constructor(
    private readonly projection: PushProjection,
    private readonly fanOut: PushFanOut,
    private readonly sender: PushSender,
    private readonly views: LinkageViews,
    private readonly eventBus: EventBus,
    private readonly config: HubConfig,
    @Inject(LEDGER) private readonly ledger: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
  ) {
    fanOut.onIssued(() => this.wake());
  }

  onApplicationBootstrap(): void {
    this.#loop = this.#run();
  }

  async onApplicationShutdown(): Promise<void> {
    this.#stopped = true;
    this.wake();
    await this.#loop;
  }

  /** Looks for due pushes now (after a fan-out issued some, or a delivery ended). */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** Told of each try's outcome (the metrics count them). */
  onOutcome(listener: (outcome: 'delivered' | 'retry' | 'abandoned') => void): void {
    this.#outcome = listener;
  }

  get stats(): PushDeliveryStats {
    return { retries: this.#retries, delivered: this.#delivered, abandoned: this.#abandoned, inFlight: this.#inFlight.size };
  }

  /** Pushes not ended yet (the projection's pending rows). */
  async pending(): Promise<number> {
    return (await this.projection.current()).pendingCount();
  }

  #leads(): boolean {
    return this.leadership === null || this.leadership.acceptsCommands;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.#woken = false;
      let sleepMs = IDLE_MS;
      try {
        if (this.#leads()) {
          const store = await this.projection.current();
          await this.#resumeFanOuts(store);
          const now = this.clock().getTime();
          const free = this.config.pushes.concurrency - this.#inFlight.size;
          if (free > 0) for (const due of store.due(now, free, this.#inFlight)) this.#start(store, due);
          const next = store.nextDueMs();
          if (next !== undefined && next !== DONE) sleepMs = Math.min(IDLE_MS, Math.max(5, next - now));
        } else {
          // A standby resumes the fan-outs it finds open once it leads.
          this.#resumeChecked = false;
        }
      } catch (error) {
        if (!this.#stopped && !(error instanceof ProjectionStopping)) this.#logger.error(`push delivery pass failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (this.#stopped) break;
      if (this.#woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleepMs);
        timer.unref();
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    // Let the deliveries under way end (each records its own end or stays pending for the next run).
    while (this.#inFlight.size > 0) await new Promise((r) => setTimeout(r, 10));
  }

  /** Fan-outs a crash cut short (fewer pushes issued than announced), once per leadership. */
  async #resumeFanOuts(store: PushStore): Promise<void> {
    if (this.#resumeChecked) return;
    for (;;) {
      const open = store.openFanOuts(RESUME_BATCH).filter((u) => !this.fanOut.isInFlight(u.updateId));
      if (open.length === 0) break;
      for (const u of open) {
        await this.fanOut.resume(u.updateId);
        store.markResumed(u.updateId);
      }
      await this.projection.current();
    }
    this.#resumeChecked = true;
  }

  #start(store: PushStore, due: DuePush): void {
    this.#inFlight.add(due.pushId);
    void this.#deliver(store, due)
      .catch((error: unknown) => {
        // Not recorded (e.g. the hub stopped leading, or is closing): the push stays pending; try again a little later.
        if (this.#stopped) return;
        try {
          store.reschedule(due.pushId, due.tries, this.clock().getTime() + this.config.pushes.retryBaseMs, due.lastError);
        } catch {
          // The projection closed under it: the next run finds the push pending.
        }
        this.#logger.warn(`push ${due.pushId}: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => {
        this.#inFlight.delete(due.pushId);
        this.wake();
      });
  }

  async #deliver(store: PushStore, due: DuePush): Promise<void> {
    const events = await this.ledger.readStream(pushStreamId(due.pushId));
    const state = events.reduce<PushState>((s, e) => evolvePush(s, e), { status: 'none' });
    if (state.status !== 'issued') {
      store.reschedule(due.pushId, due.tries, DONE, null);
      return;
    }
    const issuedEvent = events[0] as RecordedEvent<PushIssuedData>;
    const now = this.clock();
    if (now.getTime() >= due.deliverByMs) {
      await this.#end(store, due, events, state, { type: 'AbandonPush', data: { attempts: due.tries, lastError: due.lastError ?? 'not delivered before the deadline', at: now.toISOString() } });
      this.#abandoned += 1;
      this.#outcome('abandoned');
      return;
    }
    const issued = state.issued;
    if (typeof issued.code !== 'string' || typeof issued.subscriptionId !== 'string') {
      // The person's key was shredded (an erasure): the push's fields no longer open, there is nothing to deliver.
      await this.#end(store, due, events, state, { type: 'AbandonPush', data: { attempts: due.tries, lastError: 'the person was erased', at: now.toISOString(), erased: true } });
      this.#abandoned += 1;
      this.#outcome('abandoned');
      return;
    }
    const subscriber = this.views.agency(issued.requesterAgencyId);
    const tries = due.tries + 1;
    let result;
    if (subscriber.status !== 'active') {
      await this.views.catchUp();
      const again = this.views.agency(issued.requesterAgencyId);
      result = again.status === 'active' ? await this.sender.send(again.agency.endpoint, bodyOf(issuedEvent)) : { ok: false as const, error: `the subscriber ${issued.requesterAgencyId} is ${again.status}` };
    } else {
      result = await this.sender.send(subscriber.agency.endpoint, bodyOf(issuedEvent));
    }
    if (result.ok) {
      await this.#end(store, due, events, state, { type: 'RecordDelivery', data: { attempts: tries, duplicate: result.duplicate, at: this.clock().toISOString() } });
      this.#delivered += 1;
      this.#outcome('delivered');
      return;
    }
    this.#retries += 1;
    this.#outcome('retry');
    const at = this.clock().getTime();
    const delay = pushRetryDelayMs(tries, { baseMs: this.config.pushes.retryBaseMs, maxMs: this.config.pushes.retryMaxMs }, Math.random());
    // No try is scheduled past the deadline: the pass at the deadline records the abandon.
    store.reschedule(due.pushId, tries, Math.min(at + delay, due.deliverByMs), result.error);
  }

  async #end(store: PushStore, due: DuePush, events: readonly RecordedEvent[], state: PushState, command: PushOutcomeCommand): Promise<void> {
    const decided = decidePushOutcome(command, state);
    const streamId = pushStreamId(due.pushId);
    if (decided.length > 0) {
      try {
        const result = await this.ledger.append({
          streamId,
          expectedRevision: events.length - 1,
          events: decided,
          serial: { allocate: true },
          metadata: { actor: 'hub:push-delivery', correlationId: `push-${due.pushId}` },
        });
        this.eventBus.publish(EventsAppended.of(streamId, result, decided.map((e) => e.type)));
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
    store.reschedule(due.pushId, command.data.attempts, DONE, null);
  }
}

/** The push as the receiver gets it: the PushIssued event (opened) and its serial. */
function bodyOf(event: RecordedEvent<PushIssuedData>): PushBody {
  const d = event.data;
  return {
    pushId: d.pushId,
    serial: event.serial ?? '',
    subscriptionId: d.subscriptionId,
    subscriberAgencyId: d.requesterAgencyId,
    code: d.code,
    providerAgencyId: d.providerAgencyId,
    procedureCode: d.procedureCode,
    itemCode: d.itemCode,
    updatedAt: d.updatedAt,
    issuedAt: d.issuedAt,
  };
}
