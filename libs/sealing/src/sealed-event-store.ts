import type { AppendRequest, AppendResult, EventStore, ReadAllOptions, ReadStreamOptions, RecordedEvent, SerialNumber, SerialStatus, StreamId, SubscribeOptions } from '#ledger';
import type { EventSealer } from './sealer.js';

/**
 * The ledger as command handlers see it: an append seals each event's personal fields before the store
 * writes it (so the stored text, the Merkle leaf input, is publishable, I10), and reads give events
 * opened again. Followers of the whole log read the raw store and open only the types they fold.
 */
export class SealedEventStore implements EventStore {
  constructor(
    readonly raw: EventStore,
    readonly sealer: EventSealer,
  ) {}

  append(request: AppendRequest): Promise<AppendResult> {
    // On a shared key ring the keys are made durable (in KurrentDB) before anything is sealed under them.
    const prepared = this.sealer.prepareSeal(request.events);
    if (prepared === undefined) return this.raw.append(this.#sealed(request));
    return prepared.then(() => this.raw.append(this.#sealed(request)));
  }

  #sealed(request: AppendRequest): AppendRequest {
    return { ...request, events: request.events.map((e) => this.sealer.seal(request.streamId, e)) };
  }

  async readStream(streamId: StreamId, options?: ReadStreamOptions): Promise<readonly RecordedEvent[]> {
    return this.#opened(await this.raw.readStream(streamId, options));
  }

  async readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]> {
    return this.#opened(await this.raw.readAll(options));
  }

  async readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]> {
    return this.#opened(await this.raw.readSerial(serial));
  }

  async #opened(events: readonly RecordedEvent[]): Promise<readonly RecordedEvent[]> {
    const prepared = this.sealer.prepareOpen(events);
    if (prepared !== undefined) await prepared;
    return events.map((e) => this.sealer.open(e).event);
  }

  serialStatus(serial: SerialNumber): Promise<SerialStatus | undefined> {
    return this.raw.serialStatus(serial);
  }

  openSerials(): Promise<readonly SerialNumber[]> {
    return this.raw.openSerials();
  }

  idempotentOutcome(key: string): ReturnType<EventStore['idempotentOutcome']> {
    return this.raw.idempotentOutcome(key);
  }

  head(): Promise<number> {
    return this.raw.head();
  }

  async *subscribe(options: SubscribeOptions): AsyncIterable<RecordedEvent> {
    for await (const e of this.raw.subscribe(options)) {
      const prepared = this.sealer.prepareOpen([e]);
      if (prepared !== undefined) await prepared;
      yield this.sealer.open(e).event;
    }
  }

  close(): Promise<void> {
    return this.raw.close();
  }
}
