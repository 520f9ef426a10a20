import { Inject, Injectable } from '@nestjs/common';
import type { EventStore } from '#ledger';
import { SqliteProvisionStore } from '#projections';
import { EventSealer, OpeningEventStore } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { FollowedProjection } from '../projections/followed-projection.js';
import { openProvisionRecords, PROVISION_OPENED_TYPES } from '../projections/followed-stores.js';

/**
 * The provision records (情報提供等記録) projection (I8): a SQLite file beside the ledger. Views catch up
 * to the head first, so a citizen sees an exchange as soon as it was acknowledged.
 */
@Injectable()
export class ProvisionRecords extends FollowedProjection<SqliteProvisionStore> {
  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    private readonly config: HubConfig,
    private readonly sealer: EventSealer,
  ) {
    // The fold files each query by its person's key id, read from the event's key reference without opening
    // it; only an erasure's subject (sealed for the hub, I10) is opened.
    super(new OpeningEventStore(events, sealer, PROVISION_OPENED_TYPES), 'ProvisionRecords');
  }


  protected open(): SqliteProvisionStore {
    return openProvisionRecords(this.config.dataDir, this.sealer);
  }
}
