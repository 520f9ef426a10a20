import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { CORPORATE_REGISTRY_FILE, MAX_CORPORATE_LIMIT, SqliteCorporateRegistry, catchUp, follow, type CorporateSearch, type Corporation } from '#projections';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';

/**
 * The public corporate number registry (法人番号公表): a projection of designations in its own SQLite
 * file beside the ledger (I8), followed live from its stored checkpoint and restarted after a failure.
 * Searches catch up to the head first, so a designation is found as soon as it was acknowledged.
 */
@Injectable()
export class CorporateRegistry implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('CorporateRegistry');
  readonly #abort = new AbortController();
  #store: SqliteCorporateRegistry | undefined;
  #following: Promise<void> | undefined;

  constructor(
    @Inject(EVENT_STORE) private readonly events: EventStore,
    private readonly config: HubConfig,
  ) {}

  get path(): string {
    return join(this.config.dataDir, CORPORATE_REGISTRY_FILE);
  }

  onModuleInit(): void {
    this.#store = new SqliteCorporateRegistry({ path: this.path });
    this.#following = this.#follow(this.#store);
  }

  async #follow(store: SqliteCorporateRegistry): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        await follow(this.events, store, { signal, onError: (e) => this.logger.error(`corporate registry stopped: ${e instanceof Error ? e.message : String(e)}`) });
      } catch (error) {
        if (!signal.aborted) this.logger.error(`corporate registry follower failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, 500).unref());
    }
  }

  /** The registry, caught up with every event acknowledged so far. */
  async current(): Promise<SqliteCorporateRegistry> {
    const store = this.#store;
    if (store === undefined) throw new Error('the corporate registry is not open yet');
    await catchUp(this.events, store);
    return store;
  }

  /**
   * Every match in corporate number order, a page at a time: each page is one read of the registry as
   * it is then, so a long download never holds the file open across writes.
   */
  async *each(criteria: Omit<CorporateSearch, 'limit' | 'after'>): AsyncGenerator<Corporation> {
    const store = await this.current();
    let after: string | undefined;
    do {
      const page = await store.search({ ...criteria, limit: MAX_CORPORATE_LIMIT, ...(after === undefined ? {} : { after }) });
      yield* page.corporations;
      after = page.next;
    } while (after !== undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    this.#abort.abort();
    await this.#following?.catch(() => {});
    await this.#store?.close();
  }
}
