/**
 * The projections a hub follows (apps/hub/src/projections/followed-stores.ts: provision records, pushes,
 * corporate registry, notices, notice batches, subscriptions) kept at the head of a log the population
 * writer appends in bulk, as a live hub keeps them while it appends: after each durable group, every
 * committed event past their checkpoints is read from the log once and applied to each file by the hub's
 * own fold (those types the hub gives a fold opened, opened with the hub's keys). A hub started on the
 * log then resumes each from its checkpoint instead of reading the whole log at its first start.
 */
import type { RecordedEvent, SqliteEventStore } from '#ledger';
import type { EventSealer } from '#sealing';
import { openFollowedStores, type OpenedFollowedStore } from '../../apps/hub/src/projections/followed-stores.js';

/** Events read per page. */
const PAGE = 5000;

export class FollowedFolder {
  readonly #stores: readonly OpenedFollowedStore[];
  #next: number | undefined;

  constructor(
    dataDir: string,
    private readonly sealer: EventSealer,
    private readonly raw: SqliteEventStore,
  ) {
    this.#stores = openFollowedStores(dataDir, sealer);
  }

  /** Applies every committed event before `head` (exclusive) that a file has not folded yet. */
  async catchUp(head: number): Promise<void> {
    this.#next ??= Math.min(...(await Promise.all(this.#stores.map((s) => s.store.checkpoint())))) + 1;
    while (this.#next < head) {
      const page = await this.raw.readAll({ fromPosition: this.#next, maxCount: Math.min(PAGE, head - this.#next) });
      if (page.length === 0) break;
      // Each fold skips what it has folded already (at or before its checkpoint).
      for (const { store, opens } of this.#stores) await store.apply(opens === undefined ? page : this.#opened(page, opens));
      this.#next = page[page.length - 1]!.position + 1;
    }
  }

  #opened(page: readonly RecordedEvent[], opens: ReadonlySet<string>): readonly RecordedEvent[] {
    return page.some((e) => opens.has(e.type)) ? page.map((e) => (opens.has(e.type) ? this.sealer.open(e).event : e)) : page;
  }

  /** Each file's checkpoint, by the hub's name of its projection. */
  async checkpoints(): Promise<Record<string, number>> {
    return Object.fromEntries(await Promise.all(this.#stores.map(async (s) => [s.name, await s.store.checkpoint()] as const)));
  }

  async close(): Promise<void> {
    for (const { store } of this.#stores) await store.close();
  }
}
