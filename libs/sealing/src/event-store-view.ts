import type { AppendRequest, AppendResult, EventStore, ReadAllOptions, ReadStreamOptions, RecordedEvent, SerialNumber, SerialStatus, StreamId, SubscribeOptions } from '#ledger';
import type { EventSealer } from './sealer.js';

/**
 * A view of the stored log that hands out every event read (a page, or one event of a subscription) as
 * `view` makes it: opened, or with its keys made ready. Everything else passes to the store beneath.
 */
export abstract class EventStoreView implements EventStore {
  constructor(
    /** What this wraps (named `raw`, so that wrappers can be looked through). */
    readonly raw: EventStore,
    readonly sealer: EventSealer,
  ) {}

  /** What a reader gets of events as stored. */
  protected abstract view(events: readonly RecordedEvent[]): Promise<readonly RecordedEvent[]>;

  append(request: AppendRequest): Promise<AppendResult> {
    return this.raw.append(request);
  }
  async readStream(streamId: StreamId, options?: ReadStreamOptions): Promise<readonly RecordedEvent[]> {
    return this.view(await this.raw.readStream(streamId, options));
  }
  async readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]> {
    return this.view(await this.raw.readAll(options));
  }
  async readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]> {
    return this.view(await this.raw.readSerial(serial));
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
    for await (const e of this.raw.subscribe(options)) yield (await this.view([e]))[0]!;
  }
  close(): Promise<void> {
    return this.raw.close();
  }
}
