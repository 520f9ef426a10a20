import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { PROJECTIONS_FILE, SqliteProvisionStore, catchUp, follow, type ProvisionRecordStore } from '#projections';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';

/**
 * The provision records (情報提供等記録) projection (I8): a SQLite file beside the ledger, followed live
 * from its stored checkpoint and restarted after a failure. Views catch up to the head first, so a
 * citizen sees an exchange as soon as it was acknowledged.
 */
@Injectable()
export class ProvisionRecords implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('ProvisionRecords');
  readonly #abort = new AbortController();
  #store: SqliteProvisionStore | undefined;
  #following: Promise<void> | undefined;

  constructor(
    @Inject(EVENT_STORE) private readonly events: EventStore,
    private readonly config: HubConfig,
  ) {}

  get path(): string {
    return join(this.config.dataDir, PROJECTIONS_FILE);
  }

  onModuleInit(): void {
    this.#store = new SqliteProvisionStore({ path: this.path });
    this.#following = this.#follow(this.#store);
  }

  async #follow(store: SqliteProvisionStore): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        await follow(this.events, store, { signal, onError: (e) => this.logger.error(`provision records stopped: ${e instanceof Error ? e.message : String(e)}`) });
      } catch (error) {
        if (!signal.aborted) this.logger.error(`provision records follower failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, 500).unref());
    }
  }

  /** The store, caught up with every event acknowledged so far. */
  async current(): Promise<ProvisionRecordStore> {
    const store = this.#store;
    if (store === undefined) throw new Error('provision records are not open yet');
    await catchUp(this.events, store);
    return store;
  }

  async onApplicationShutdown(): Promise<void> {
    this.#abort.abort();
    await this.#following?.catch(() => {});
    await this.#store?.close();
  }
}
