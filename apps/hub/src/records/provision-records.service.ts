import { Inject, Injectable } from '@nestjs/common';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { PROJECTIONS_FILE, SqliteProvisionStore } from '#projections';
import { EventSealer, OpeningEventStore } from '#sealing';
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
    private readonly sealer: EventSealer,
  ) {
    // The fold reads the subject of QueryAccepted / QueryDenied and the erased person of KeysShredded: sealed in the log (I10).
    super(new OpeningEventStore(events, sealer, PROVISION_OPENED_TYPES), 'ProvisionRecords');
  }

  get path(): string {
    return join(this.config.dataDir, PROJECTIONS_FILE);
  }

  protected open(): SqliteProvisionStore {
    return new SqliteProvisionStore({ path: this.path, subjectRef: provisionSubjectRef(this.sealer) });
  }
}

/** The event types the provision records fold reads opened. */
export const PROVISION_OPENED_TYPES: ReadonlySet<string> = new Set(['QueryAccepted', 'QueryDenied', 'KeysShredded']);

/** What the projection file keeps for a person: a keyed handle, never the subject id (the auditor's replay uses the same). */
export function provisionSubjectRef(sealer: Pick<EventSealer, 'handle'>): (subjectId: string) => string {
  return (subjectId) => sealer.handle('provision-subject', subjectId);
}
