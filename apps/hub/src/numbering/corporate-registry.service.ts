import { Inject, Injectable } from '@nestjs/common';
import type { EventStore } from '#ledger';
import { MAX_CORPORATE_LIMIT, SqliteCorporateRegistry, type CorporateSearch, type Corporation } from '#projections';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { FollowedProjection } from '../projections/followed-projection.js';
import { openCorporateRegistry } from '../projections/followed-stores.js';

/**
 * The public corporate number registry (法人番号公表): a projection of designations in its own SQLite
 * file beside the ledger (I8). Searches catch up to the head first, so a designation is found as soon as
 * it was acknowledged.
 */
@Injectable()
export class CorporateRegistry extends FollowedProjection<SqliteCorporateRegistry> {
  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    private readonly config: HubConfig,
  ) {
    super(events, 'CorporateRegistry');
  }


  protected open(): SqliteCorporateRegistry {
    return openCorporateRegistry(this.config.dataDir);
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
}
