import type { AppendRequest, AppendResult, EventStore, ReadAllOptions, ReadStreamOptions, RecordedEvent, SerialNumber, SerialStatus, StreamId, SubscribeOptions } from '#ledger';
import type { EventSealer } from './sealer.js';

/**
 * A read-only view of the stored log that opens the events of the given types (the ones a follower
 * folds) and passes every other event as stored. Opening costs a few microseconds an event; a follower
 * of the whole log pays it only for what it reads. An event whose key was shredded comes with its
 * personal fields gone and `data.sealed === 'shredded'` (isShredded).
 */
export class OpeningEventStore implements EventStore {
  constructor(
    private readonly raw: EventStore,
    private readonly sealer: EventSealer,
    private readonly types: ReadonlySet<string>,
  ) {}

  #open = (e: RecordedEvent): RecordedEvent => (this.types.has(e.type) ? this.sealer.open(e).event : e);

  /** On a shared key ring: the keys of the events this view opens are fetched first when the local copy lacks them. */
  async #opened(events: readonly RecordedEvent[]): Promise<readonly RecordedEvent[]> {
    const prepared = this.sealer.prepareOpen(events.filter((e) => this.types.has(e.type)));
    if (prepared !== undefined) await prepared;
    return events.map(this.#open);
  }

  append(request: AppendRequest): Promise<AppendResult> {
    void request;
    return Promise.reject(new Error('OpeningEventStore is a read-only view of the log: append through the sealed ledger'));
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
      const prepared = this.types.has(e.type) ? this.sealer.prepareOpen([e]) : undefined;
      if (prepared !== undefined) await prepared;
      yield this.#open(e);
    }
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
