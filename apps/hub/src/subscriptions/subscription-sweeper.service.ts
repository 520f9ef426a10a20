import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import type { EventStore } from '#ledger';
import { decideSubscription, pushWithdrawn, subscriptionStreamId, type SubscriptionCommand } from '#linkage';
import { HubConfig } from '../config/hub-config.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { loadStream } from '../ledger/load-stream.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { SubscriptionDirectory } from './subscription-directory.js';
import { SUBSCRIPTION_FOLD } from './subscriptions.service.js';

/** Subscriptions looked at per batch of a sweep. */
const BATCH = 500;

export interface SweepResult {
  readonly expired: number;
  readonly ended: number;
}

/**
 * The hub's own subscription work (issue 14), on the leader only: every interval
 * (HUB_SUBSCRIPTION_SWEEP_MS, default a minute) it records SubscriptionExpired for each active subscription
 * past its `expiresAt`, and, when the table version in force is not the one it last swept under (and once
 * after start or takeover), SubscriptionEnded (TABLE_WITHDREW_PUSH) for each active subscription whose
 * items that version no longer allows to push. One append with a serial of its own per subscription, so a
 * crash in the middle leaves every recorded end complete and the next sweep does the rest (the index says
 * what is still active). A subscription cancelled meanwhile is skipped (its stream moved on).
 */
@Injectable()
export class SubscriptionSweeper implements OnModuleInit, OnApplicationShutdown {
  readonly #logger = new Logger('SubscriptionSweeper');
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<SweepResult> | undefined;
  /** The table version in force at the last complete withdrawal check (not per person: one number). */
  #sweptVersion: number | undefined;

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly directory: SubscriptionDirectory,
    private readonly views: LinkageViews,
    private readonly eventBus: EventBus,
    private readonly config: HubConfig,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
  ) {
    leadership?.onRoleChange(() => {
      this.#sweptVersion = undefined;
    });
  }

  onModuleInit(): void {
    const interval = this.config.subscriptions.sweepIntervalMs;
    this.#timer = setInterval(() => void this.sweep().catch((error: unknown) => this.#logger.error(`subscription sweep failed: ${error instanceof Error ? error.message : String(error)}`)), interval);
    this.#timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /** One sweep (a sweep already running is awaited instead of starting another); nothing on a standby. */
  sweep(): Promise<SweepResult> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  #leads(): boolean {
    return this.leadership === null || this.leadership.acceptsCommands;
  }

  async #sweep(): Promise<SweepResult> {
    if (!this.#leads()) return { expired: 0, ended: 0 };
    const now = this.clock();
    const at = now.toISOString();
    let expired = 0;
    let ended = 0;
    const index = await this.directory.current();
    // Expiries: the due ones, earliest first, until none is left (each recorded one leaves the index's range).
    for (let round = 0; round < 10_000; round++) {
      const due = index.due(now.getTime(), BATCH);
      if (due.length === 0) break;
      let progressed = 0;
      for (const subscriptionId of due) {
        if (await this.#record(subscriptionId, { type: 'ExpireSubscription', data: { subscriptionId, expiredAt: at } })) {
          expired += 1;
          progressed += 1;
        }
      }
      await this.directory.current();
      if (progressed === 0) break;
    }
    // Withdrawals: only when the version in force changed since the last complete check.
    await this.views.catchUp();
    const inForce = this.views.inForce(at);
    const version = inForce?.table.version ?? 0;
    // No version in force (none published yet): nothing is judged, nothing ended.
    if (inForce !== undefined && version !== this.#sweptVersion) {
      for (const row of index.activeTableRows()) {
        let after = '';
        for (;;) {
          const batch = index.activeOfRow(row, after, BATCH);
          if (batch.length === 0) break;
          after = batch.at(-1)!.subscriptionId;
          for (const s of batch) {
            const withdrawn = pushWithdrawn(inForce?.policy, { ...row, itemCodes: s.itemCodes });
            if (withdrawn.length === 0) continue;
            const command: SubscriptionCommand = { type: 'EndSubscription', data: { subscriptionId: s.subscriptionId, reason: 'TABLE_WITHDREW_PUSH', tableVersion: version, withdrawnItems: withdrawn, endedAt: at } };
            if (await this.#record(s.subscriptionId, command)) ended += 1;
          }
        }
      }
      this.#sweptVersion = version;
    }
    if (expired + ended > 0) this.#logger.log(`subscription sweep: ${expired} expired, ${ended} ended by table version ${version}`);
    return { expired, ended };
  }

  /** Decides on the subscription's stream and appends under a serial of its own; false when nothing was recorded. */
  async #record(subscriptionId: string, command: SubscriptionCommand): Promise<boolean> {
    const streamId = subscriptionStreamId(subscriptionId);
    const { state, expectedRevision } = await loadStream(this.store, streamId, SUBSCRIPTION_FOLD);
    const events = decideSubscription(command, state);
    if (events.length === 0) return false;
    try {
      const result = await this.store.append({ streamId, expectedRevision, events, serial: { allocate: true }, metadata: { actor: 'system:subscriptions', correlationId: `subscriptions-${randomUUID()}` } });
      this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
      return true;
    } catch (error) {
      // Cancelled (or ended by another sweep) meanwhile: its stream moved on, nothing to record.
      if ((error as { code?: unknown } | null)?.code === 'WRONG_EXPECTED_REVISION') return false;
      throw error;
    }
  }
}
