import { Inject, Injectable } from '@nestjs/common';
import type { EventStore } from '#ledger';
import { EventSealer } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { FollowedProjection } from '../projections/followed-projection.js';
import { openPushes } from '../projections/followed-stores.js';
import { PushStore } from './push-store.js';

/**
 * The pushes projection (`pushes.sqlite` beside the ledger): followed live from its stored checkpoint
 * (I8, I11). It reads the log as stored: the fields it keeps are in clear, and the person is filed by the
 * id of their key (read from the event's key reference without opening it).
 */
@Injectable()
export class PushProjection extends FollowedProjection<PushStore> {
  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    private readonly config: HubConfig,
    private readonly sealer: EventSealer,
  ) {
    super(events, 'PushProjection');
  }


  protected open(): PushStore {
    return openPushes(this.config.dataDir, this.sealer);
  }

  /** The file's reference of a person (what `personPushes` is asked with). */
  personRef(subjectId: string): string {
    return this.sealer.personRef(subjectId);
  }
}
