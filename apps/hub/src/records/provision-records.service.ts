import { Inject, Injectable } from '@nestjs/common';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { PROJECTIONS_FILE, SqliteProvisionStore } from '#projections';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { FollowedProjection } from '../projections/followed-projection.js';

/**
 * The provision records (情報提供等記録) projection (I8): a SQLite file beside the ledger. Views catch up
 * to the head first, so a citizen sees an exchange as soon as it was acknowledged.
 */
@Injectable()
export class ProvisionRecords extends FollowedProjection<SqliteProvisionStore> {
  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    private readonly config: HubConfig,
  ) {
    super(events, 'ProvisionRecords');
  }

  get path(): string {
    return join(this.config.dataDir, PROJECTIONS_FILE);
  }

  protected open(): SqliteProvisionStore {
    return new SqliteProvisionStore({ path: this.path });
  }
}
