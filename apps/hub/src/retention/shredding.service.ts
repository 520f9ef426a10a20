import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import type { EventStore } from '#ledger';
import { KEYS_SHREDDED_STREAM, type KeysShreddedData, type SubjectId } from '#linkage';
import { EventSealer } from '#sealing';
import { HubProblem } from '../http/hub-problem.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import type { Caller } from '../ledger/idempotency.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { IdentifierVault } from '../vault/identifier-vault.js';

/** Provision records are kept seven years (情報提供等記録): a year's records go once seven full years have passed. */
export const RETENTION_YEARS = 7;
const JST_MS = 9 * 3600 * 1000;

export interface ShredOutcome {
  readonly serial: string;
  readonly scope: 'retention' | 'erasure';
  readonly epochs?: readonly number[];
  readonly throughEpoch?: number;
  readonly shreddedAt: string;
}

/**
 * Crypto-shredding (I10): a retention sweep destroys the period keys of every year whose records are past
 * their seven years; an erasure destroys one person's key. Either is first recorded in the log as a
 * KeysShredded event of its own serial, then carried out on the key ring, so that a crash between the two
 * is finished at the next start (every KeysShredded is re-applied; shredding is idempotent). The log, its
 * tree and every checkpoint stay as they were; what the keys opened is gone, and the projections forget it.
 */
@Injectable()
export class Shredding implements OnModuleInit {
  readonly #logger = new Logger('Shredding');

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly sealer: EventSealer,
    private readonly vault: IdentifierVault,
    private readonly views: LinkageViews,
    private readonly eventBus: EventBus,
  ) {}

  /** Finishes any shredding a crash interrupted after its event was appended. */
  async onModuleInit(): Promise<void> {
    const events = await this.store.readStream(KEYS_SHREDDED_STREAM);
    for (const e of events) this.#apply(e.data as KeysShreddedData);
    if (events.length > 0) this.#logger.log(`key ring holds the ${events.length} shredding(s) of the log`);
  }

  /** The latest year whose records are past retention at `now` (Japan time). */
  static retainedThrough(now: Date): number {
    return new Date(now.getTime() + JST_MS).getUTCFullYear() - RETENTION_YEARS - 1;
  }

  async sweep(reason: string, caller: Caller): Promise<ShredOutcome> {
    const now = this.clock();
    const throughEpoch = Shredding.retainedThrough(now);
    const epochs = this.sealer.keyring.liveEpochs().filter((e) => e <= throughEpoch);
    const data: KeysShreddedData = { shredId: randomUUID(), scope: 'retention', throughEpoch, epochs, reason, shreddedAt: now.toISOString() };
    const serial = await this.#append(data, caller);
    this.#apply(data);
    return { serial, scope: 'retention', throughEpoch, epochs, shreddedAt: data.shreddedAt };
  }

  async erase(individualNumber: string, reason: string, caller: Caller): Promise<ShredOutcome> {
    const holder = this.views.holderOf(this.vault.digest('individual-number', individualNumber)) ?? (await this.views.catchUp(), this.views.holderOf(this.vault.digest('individual-number', individualNumber)));
    if (holder === undefined) throw new HubProblem('UNKNOWN_INDIVIDUAL_NUMBER', 'no person holds this individual number (or their key was shredded already); check it');
    const now = this.clock();
    const data: KeysShreddedData = { shredId: randomUUID(), scope: 'erasure', subject: holder.subjectId as SubjectId, reason, shreddedAt: now.toISOString() };
    const serial = await this.#append(data, caller);
    this.#apply(data);
    return { serial, scope: 'erasure', shreddedAt: data.shreddedAt };
  }

  async #append(data: KeysShreddedData, caller: Caller): Promise<string> {
    const events = [{ type: 'KeysShredded', schemaVersion: 1, data, terminal: 'completed' as const }];
    const result = await this.store.append({ streamId: KEYS_SHREDDED_STREAM, expectedRevision: 'any', events, serial: { allocate: true }, metadata: { actor: caller.actor, correlationId: caller.correlationId } });
    this.eventBus.publish(EventsAppended.of(KEYS_SHREDDED_STREAM, result, ['KeysShredded']));
    return result.serial;
  }

  #apply(data: KeysShreddedData): void {
    const ring = this.sealer.keyring;
    if (data.scope === 'retention' && data.throughEpoch !== undefined) ring.shredEpochsThrough(data.throughEpoch, data.shreddedAt);
    else if (data.scope === 'erasure' && typeof data.subject === 'string') ring.shredSubject(data.subject, data.shreddedAt);
    this.sealer.forgetDerived();
  }
}
