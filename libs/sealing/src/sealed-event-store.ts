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
    return this.raw.append({ ...request, events: request.events.map((e) => this.sealer.seal(request.streamId, e)) });
  }

  async readStream(streamId: StreamId, options?: ReadStreamOptions): Promise<readonly RecordedEvent[]> {
    return (await this.raw.readStream(streamId, options)).map((e) => this.sealer.open(e).event);
  }

  async readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]> {
    return (await this.raw.readAll(options)).map((e) => this.sealer.open(e).event);
  }

  async readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]> {
    return (await this.raw.readSerial(serial)).map((e) => this.sealer.open(e).event);
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
    for await (const e of this.raw.subscribe(options)) yield this.sealer.open(e).event;
  }

  close(): Promise<void> {
    return this.raw.close();
  }
}
