import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import type { EventStore } from '#ledger';
import { HubConfig } from '../../config/hub-config.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { SELF_DISCLOSURE_TABLE } from '../table-publications.js';
import { publishTableAtStart } from '../table-publication.js';


/**
 * Publishes the configured self-disclosure table (HUB_SELF_DISCLOSURE_TABLE_FILE) at start when its
 * version is newer than every published one, as the authorization table is: an event with its own serial
 * (SelfDisclosureTablePublished), so the version in force at any instant is rebuilt from the log and the
 * auditor judges every self-information request against it. A published version never changes.
 */
@Injectable()
export class SelfDisclosureTablePublisher implements OnModuleInit {
  private readonly logger = new Logger('SelfDisclosureTable');

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly config: HubConfig,
    private readonly eventBus: EventBus,
  ) {}

  async onModuleInit(): Promise<void> {
    const file = this.config.linkage.selfDisclosureTableFile;
    if (file === undefined) return;
    await publishTableAtStart(SELF_DISCLOSURE_TABLE, file, { store: this.store, eventBus: this.eventBus, logger: this.logger, now: this.clock });
  }
}
