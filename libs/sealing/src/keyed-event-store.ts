import type { AppendRequest, AppendResult, EventStore, ReadAllOptions, ReadStreamOptions, RecordedEvent, SerialNumber, SerialStatus, StreamId, SubscribeOptions } from '#ledger';
import type { EventSealer } from './sealer.js';

/**
 * The stored log (events still sealed) with, on a key ring shared by several hubs, every key its events
 * name made ready in the local copy before the events are handed out: a standby's folds then open what
 * the leader sealed, synchronously, without missing a key the leader made a moment before (the leader
 * makes each key durable in KurrentDB before the event sealed under it, so a read of the key after the
 * read of the event always finds it). On the hub's own ring it is a plain pass-through.
 * Appends pass as they are (the sealed ledger over this makes its keys ready itself).
 */
export class KeyedEventStore implements EventStore {
  constructor(
    /** What this wraps (named `raw`, as the sealed ledger names it, so wrappers can be looked through). */
    readonly raw: EventStore,
    private readonly sealer: EventSealer,
  ) {}

  async #ready<T extends readonly RecordedEvent[]>(events: T): Promise<T> {
    const prepared = this.sealer.prepareOpen(events);
    if (prepared !== undefined) await prepared;
    return events;
  }

  append(request: AppendRequest): Promise<AppendResult> {
    return this.raw.append(request);
  }
  async readStream(streamId: StreamId, options?: ReadStreamOptions): Promise<readonly RecordedEvent[]> {
    return this.#ready(await this.raw.readStream(streamId, options));
  }
  async readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]> {
    return this.#ready(await this.raw.readAll(options));
  }
  async readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]> {
    return this.#ready(await this.raw.readSerial(serial));
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
      yield e;
    }
  }
  close(): Promise<void> {
    return this.raw.close();
  }
}
