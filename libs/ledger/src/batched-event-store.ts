import type { RecordedEvent } from './envelope.js';
import { LedgerClosedError } from './errors.js';
import type {
  AppendRequest,
  AppendResult,
  EventStore,
  ReadAllOptions,
  ReadStreamOptions,
  SerialStatus,
  SubscribeOptions,
} from './event-store.port.js';
import type { PlannedBatch } from './append-planner.js';
import type { SerialNumber } from './serial-number.js';

export type BatchOutcomes = PlannedBatch['outcomes'];


/**
 * Group commit shared by the adapters: appends queue up while a commit is in flight and are then
 * written together. A subclass's `commitBatch` MUST NOT return before the batch is durable, so no
 * append resolves (and no position is reported) before it is durable.
 */
export abstract class BatchedEventStore implements EventStore {
  // Queued appends as three parallel arrays: no wrapper object per append.
  private queue: AppendRequest[] = [];
  private resolvers: ((result: AppendResult) => void)[] = [];
  private rejecters: ((error: Error) => void)[] = [];
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  private headWaiters: (() => void)[] = [];

  /**
   * How many batches may be committing at once. Above 1, a subclass MUST plan each batch when
   * `commitBatch` is called (synchronously, in call order) so that batches apply in that order.
   */
  protected readonly maxInFlight: number = 1;

  /**
   * Upper bound on the events of one planned batch, to bound the latency of the appends queued behind
   * it; with maxInFlight above 1, a long queue becomes several batches planned one after the other.
   */
  protected readonly maxBatchEvents: number = 8192;

  protected abstract commitBatch(requests: readonly AppendRequest[]): BatchOutcomes | Promise<BatchOutcomes>;
  abstract readStream(streamId: string, options?: ReadStreamOptions): Promise<readonly RecordedEvent[]>;
  abstract readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]>;
  abstract readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]>;
  abstract serialStatus(serial: SerialNumber): Promise<SerialStatus | undefined>;
  abstract openSerials(): Promise<readonly SerialNumber[]>;
  abstract head(): Promise<number>;
  abstract idempotentOutcome(key: string): Promise<{ readonly requestDigest: string; readonly result: AppendResult } | undefined>;
  protected abstract closeStorage(): void | Promise<void>;

  append(request: AppendRequest): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new LedgerClosedError());
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push(request);
      this.resolvers.push(resolve);
      this.rejecters.push(reject);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // setImmediate lets every append issued in this turn of the event loop join the batch.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      // With nothing committing, split a long queue in two so the second half is planned while the
      // first commits: the pipeline fills at once instead of after one round trip.
      const limit = this.inFlight === 0 && this.maxInFlight > 1 && this.queue.length > 64 ? Math.ceil(this.queue.length / 2) : this.queue.length;
      let count = 0;
      let events = 0;
      while (count < limit && events < this.maxBatchEvents) {
        events += this.queue[count]!.events.length;
        count += 1;
      }
      let requests: AppendRequest[];
      let resolvers: ((result: AppendResult) => void)[];
      let rejecters: ((error: Error) => void)[];
      if (count === this.queue.length) {
        requests = this.queue;
        resolvers = this.resolvers;
        rejecters = this.rejecters;
        this.queue = [];
        this.resolvers = [];
        this.rejecters = [];
      } else {
        requests = this.queue.splice(0, count);
        resolvers = this.resolvers.splice(0, count);
        rejecters = this.rejecters.splice(0, count);
      }
      this.inFlight += 1;
      let committing: BatchOutcomes | Promise<BatchOutcomes>;
      try {
        committing = this.commitBatch(requests);
      } catch (error) {
        committing = Promise.reject(error as Error);
      }
      void Promise.resolve(committing)
        .then(
          (outcomes) => {
            for (let i = 0; i < outcomes.length; i++) {
              const outcome = outcomes[i]!;
              if (outcome instanceof Error) rejecters[i]!(outcome);
              else resolvers[i]!(outcome);
            }
          },
          (error: unknown) => {
            for (const reject of rejecters) reject(error as Error);
          },
        )
        .finally(() => {
          this.inFlight -= 1;
          this.notifyHead();
          this.schedule();
        });
    }
  }

  private notifyHead(): void {
    const waiters = this.headWaiters;
    this.headWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once the head may have moved past `position` (or the store closed / the signal aborted). */
  private async waitBeyond(position: number, signal?: AbortSignal): Promise<void> {
    if ((await this.head()) > position || this.closed || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.headWaiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async *subscribe(options: SubscribeOptions): AsyncIterable<RecordedEvent> {
    const pageSize = options.pageSize ?? 1000;
    let next = options.fromPosition;
    while (!options.signal?.aborted && !this.closed) {
      const page = await this.readAll({ fromPosition: next, maxCount: pageSize });
      for (const event of page) {
        if (options.signal?.aborted) return;
        yield event;
        next = event.position + 1;
      }
      if (page.length < pageSize) await this.waitBeyond(next, options.signal);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Let queued appends finish: a caller that was acknowledged MUST find its events after reopen.
    while (this.queue.length > 0 || this.inFlight > 0) {
      if (this.inFlight === 0) this.flush();
      await new Promise((r) => setImmediate(r));
    }
    this.closed = true;
    this.notifyHead();
    await this.closeStorage();
  }
}
