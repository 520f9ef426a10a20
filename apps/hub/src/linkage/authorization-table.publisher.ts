import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import type { EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { AUTHORIZATION_TABLE } from './table-publications.js';
import { publishTableAtStart } from './table-publication.js';

/**
 * Publishes the configured authorization table (HUB_AUTHORIZATION_TABLE_FILE) at start when its version
 * is newer than every published one: publication is an event with its own serial, so the version in
 * force at any instant is rebuilt from the log. The same version with other content is refused: a
 * published version never changes (publish a new version instead). On KurrentDB only the leader
 * publishes: a standby checks the file at start and publishes it when it takes over (table-publication.ts).
 */
@Injectable()
export class AuthorizationTablePublisher implements OnModuleInit {
  private readonly logger = new Logger('AuthorizationTable');

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly config: HubConfig,
    private readonly eventBus: EventBus,
  ) {}

  async onModuleInit(): Promise<void> {
    const file = this.config.linkage.authorizationTableFile;
    if (file === undefined) return;
    await publishTableAtStart(AUTHORIZATION_TABLE, file, { store: this.store, eventBus: this.eventBus, logger: this.logger, now: this.clock });
  }
}
