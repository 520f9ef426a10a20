import { Inject, Injectable } from '@nestjs/common';
import type { EventStore } from '#ledger';
import { pushWithdrawn } from '#linkage';
import { EventSealer } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { FollowedProjection } from '../projections/followed-projection.js';
import { openSubscriptionIndex } from '../projections/followed-stores.js';
import { SqliteSubscriptionIndex } from './subscription-index.js';

/** One subscriber of a provider's item for a person: whom to push (the fan-out maps the person to the subscriber's own code). */
export interface ActiveSubscriber {
  readonly subscriptionId: string;
  readonly requesterAgencyId: string;
  readonly procedureCode: string;
}

/**
 * Who subscribed to what (issue 14): the subscription index (`subscriptions.sqlite`, a projection of the
 * subscription events with a stored checkpoint, I8, I11), followed live and caught up before every answer,
 * so an answer covers every subscription acknowledged before it was asked.
 *
 * `activeSubscribers` is what the fan-out of an update reads: the subscriptions to the provider's item
 * for the person that are active (not cancelled, expired or ended), not past their `expiresAt` (even
 * before the sweep records their expiry) and still allowed push by the table version in force now (even
 * before the sweep records their end).
 */
@Injectable()
export class SubscriptionDirectory extends FollowedProjection<SqliteSubscriptionIndex> {
  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly config: HubConfig,
    private readonly sealer: EventSealer,
    private readonly views: LinkageViews,
  ) {
    super(events, 'SubscriptionDirectory');
  }


  protected open(): SqliteSubscriptionIndex {
    return openSubscriptionIndex(this.config.dataDir, this.sealer);
  }

  /** The active subscribers of `providerAgencyId`'s `itemCode` for the person `subjectId`, oldest subscription first. */
  async activeSubscribers(providerAgencyId: string, subjectId: string, itemCode: string): Promise<readonly ActiveSubscriber[]> {
    const index = await this.current();
    const now = this.clock();
    const rows = index.activeSubscribers(providerAgencyId, subjectId, itemCode, now.getTime());
    if (rows.length === 0) return [];
    await this.views.catchUp();
    const policy = this.views.inForce(now.toISOString())?.policy;
    return rows
      .filter((r) => !pushWithdrawn(policy, { requesterKind: r.requesterKind, procedureCode: r.procedureCode, providerKind: r.providerKind, itemCodes: [itemCode] }).includes(itemCode))
      .map((r) => ({ subscriptionId: r.subscriptionId, requesterAgencyId: r.requesterAgencyId, procedureCode: r.procedureCode }));
  }
}
