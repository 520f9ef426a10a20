import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalize, type EventStore } from '#ledger';
import { SELF_DISCLOSURE_TABLE_STREAM, decideSelfDisclosureTables, selfDisclosureTablesDecider, type Evolvable, type SelfDisclosureTablePublished, type SelfDisclosureTablesState } from '#linkage';
import { HubConfig } from '../../config/hub-config.js';
import { EventsAppended } from '../../ledger/events-appended.event.js';
import { loadStream, type Fold } from '../../ledger/load-stream.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';

const tablesFold: Fold<SelfDisclosureTablesState, Evolvable<SelfDisclosureTablePublished>> = {
  initialState: selfDisclosureTablesDecider.initialState,
  evolve: selfDisclosureTablesDecider.evolve,
  types: new Set(['SelfDisclosureTablePublished']),
};

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
    const table: unknown = JSON.parse(readFileSync(file, 'utf8'));
    const digest = createHash('sha256').update(canonicalize(table) ?? '', 'utf8').digest('hex');
    const { state, expectedRevision } = await loadStream(this.store, SELF_DISCLOSURE_TABLE_STREAM, tablesFold);
    const version = (table as { version?: unknown }).version;
    const same = state.status === 'published' ? state.versions.find((v) => v.version === version) : undefined;
    if (same !== undefined) {
      if (same.digest !== digest) {
        throw new Error(`${file} holds self-disclosure table version ${String(version)} with content other than the published version (digest ${same.digest}); publish changes as a new version`);
      }
      return;
    }
    const latest = state.status === 'published' ? state.versions.at(-1)!.version : 0;
    if (typeof version === 'number' && version < latest) {
      this.logger.warn(`${file} holds version ${version}, older than the published version ${latest}: nothing published`);
      return;
    }
    const events = decideSelfDisclosureTables({ type: 'PublishSelfDisclosureTable', data: { table, digest, publishedAt: this.clock().toISOString() } }, state);
    const result = await this.store.append({
      streamId: SELF_DISCLOSURE_TABLE_STREAM,
      expectedRevision,
      events,
      serial: { allocate: true },
      metadata: { actor: 'system:self-disclosure-table', correlationId: `publish-${randomUUID()}` },
    });
    this.eventBus.publish(EventsAppended.of(SELF_DISCLOSURE_TABLE_STREAM, result, events.map((e) => e.type)));
    this.logger.log(`published self-disclosure table version ${String(version)} (serial ${result.serial})`);
  }
}
