import type { AppendRequest, AppendResult, RecordedEvent } from '#ledger';
import { EventStoreView } from './event-store-view.js';

/**
 * The ledger as command handlers see it: an append seals each event's personal fields before the store
 * writes it (so the stored text, the Merkle leaf input, is publishable, I10), and reads give events
 * opened again. Followers of the whole log read the raw store and open only the types they fold.
 */
export class SealedEventStore extends EventStoreView {
  override append(request: AppendRequest): Promise<AppendResult> {
    // On a shared key ring the keys are made durable (in KurrentDB) before anything is sealed under them.
    const prepared = this.sealer.prepareSeal(request.events);
    if (prepared === undefined) return this.raw.append(this.#sealed(request));
    return prepared.then(() => this.raw.append(this.#sealed(request)));
  }

  #sealed(request: AppendRequest): AppendRequest {
    return { ...request, events: request.events.map((e) => this.sealer.seal(request.streamId, e)) };
  }

  protected async view(events: readonly RecordedEvent[]): Promise<readonly RecordedEvent[]> {
    const prepared = this.sealer.prepareOpen(events);
    if (prepared !== undefined) await prepared;
    return events.map((e) => this.sealer.open(e).event);
  }
}
