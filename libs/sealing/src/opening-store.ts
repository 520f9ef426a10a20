import type { AppendRequest, AppendResult, EventStore, RecordedEvent } from '#ledger';
import { EventStoreView } from './event-store-view.js';
import type { EventSealer } from './sealer.js';

/**
 * A read-only view of the stored log that opens the events of the given types (the ones a follower
 * folds) and passes every other event as stored. Opening costs a few microseconds an event; a follower
 * of the whole log pays it only for what it reads. An event whose key was shredded comes with its
 * personal fields gone and `data.sealed === 'shredded'` (isShredded).
 */
export class OpeningEventStore extends EventStoreView {
  constructor(
    raw: EventStore,
    sealer: EventSealer,
    private readonly types: ReadonlySet<string>,
  ) {
    super(raw, sealer);
  }

  /** On a shared key ring: the keys of the events this view opens are fetched first when the local copy lacks them. */
  protected async view(events: readonly RecordedEvent[]): Promise<readonly RecordedEvent[]> {
    const opened = events.filter((e) => this.types.has(e.type));
    if (opened.length === 0) return events;
    const prepared = this.sealer.prepareOpen(opened);
    if (prepared !== undefined) await prepared;
    return events.map((e) => (this.types.has(e.type) ? this.sealer.open(e).event : e));
  }

  override append(request: AppendRequest): Promise<AppendResult> {
    void request;
    return Promise.reject(new Error('OpeningEventStore is a read-only view of the log: append through the sealed ledger'));
  }

  /** A view: the store beneath is its owner's to close. */
  override close(): Promise<void> {
    return Promise.resolve();
  }
}
