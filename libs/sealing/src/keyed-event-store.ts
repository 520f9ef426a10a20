import type { RecordedEvent } from '#ledger';
import { EventStoreView } from './event-store-view.js';

/**
 * The stored log (events still sealed) with, on a key ring shared by several hubs, every key its events
 * name made ready in the local copy before the events are handed out: a standby's folds then open what
 * the leader sealed, synchronously, without missing a key the leader made a moment before (the leader
 * makes each key durable in KurrentDB before the event sealed under it, so a read of the key after the
 * read of the event always finds it). On the hub's own ring it is a plain pass-through.
 * Appends pass as they are (the sealed ledger over this makes its keys ready itself).
 */
export class KeyedEventStore extends EventStoreView {
  protected async view(events: readonly RecordedEvent[]): Promise<readonly RecordedEvent[]> {
    const prepared = this.sealer.prepareOpen(events);
    if (prepared !== undefined) await prepared;
    return events;
  }
}
