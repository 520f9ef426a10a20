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
 * Told of every batch once it is durable or refused as a whole: how many appends and events it held and
 * how long its commit took (from the plan to the writer's answer), for metrics. Must not throw or block.
 */
export type BatchObserver = (appends: number, events: number, commitSeconds: number, failed: boolean) => void;

/**
 * An idle store given more appends than this at once commits them as two batches (see `flush`). Callers that
 * arrive together (a service's requests answered by one commit, then appending again together) would
 * otherwise move in lock step: every stage of theirs waiting for the whole group, the threads and the
 * processes they call taking turns instead of working at once. The first half going on one half-commit
 * sooner lets the groups drift apart. With 64 appends as the threshold, a linkage load of 64 connections
 * stayed one group; with 16 its max rose 8–18 % (load:linkage, run alternately; docs/throughput.md). A store
 * kept busy is never idle, so a bulk writer's batches are unchanged.
 */
const SPLIT_FROM = 16;

/** Events kept for subscribers beyond the ones being read (see `BatchedEventStore.page`). */
const SHARED_WINDOW = 8192;

/** Freezes an event and everything in it: events handed to several subscribers are shared. */
function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
}

/** Tells the observer of a batch; an observer that throws changes nothing of the appends' outcomes. */
function observe(observer: BatchObserver, appends: number, events: number, started: number, failed: boolean): void {
  try {
    observer(appends, events, (performance.now() - started) / 1000, failed);
  } catch {
    // metrics only
  }
}

/**
 * Group commit shared by the adapters: appends queue up while a commit is in flight and are then
 * written together. A subclass's `commitBatch` MUST NOT return before the batch is durable, so no
 * append resolves (and no position is reported) before it is durable.
 */
export abstract class BatchedEventStore implements EventStore {
  // Queued appends as three parallel arrays: no wrapper object per append. The queue starts at
  // `queueHead`: a batch is taken from the front by moving it, and the arrays are cut only once most of
  // them is taken (splicing the front of a long queue copied the rest each time: a bulk writer with
  // 18,000 appends queued spent more on that than on planning).
  private queue: AppendRequest[] = [];
  private resolvers: ((result: AppendResult) => void)[] = [];
  private rejecters: ((error: Error) => void)[] = [];
  private queueHead = 0;
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  private headWaiters: (() => void)[] = [];
  /** The events subscribers read last, from position `windowStart` on (see `page`). */
  private window: RecordedEvent[] = [];
  private windowStart = 0;
  private readonly reading = new Map<number, Promise<readonly RecordedEvent[]>>();
  /**
   * The stored texts of the events committed after the window, from position `textsStart + textsHead` on,
   * while anyone subscribes (see `committed`). Taken from the front by moving `textsHead`.
   */
  private texts: string[] = [];
  private textsStart = 0;
  private textsHead = 0;
  private subscribers = 0;
  private batchObserver: BatchObserver | undefined;

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

  /** Installs (or with undefined removes) the one observer of committed batches (see BatchObserver). */
  observeBatches(observer: BatchObserver | undefined): void {
    this.batchObserver = observer;
  }

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
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queued() === 0) return;
    this.scheduled = true;
    // setImmediate lets every append issued in this turn of the event loop join the batch.
    setImmediate(() => this.flush());
  }

  /** Appends queued and not yet taken into a batch. */
  private queued(): number {
    return this.queue.length - this.queueHead;
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queued() > 0 && this.inFlight < this.maxInFlight) {
      // With nothing committing, split a queue of more than SPLIT_FROM appends in two: the second half is
      // planned while the first commits, and the first half's callers go on one half-commit sooner.
      const waiting = this.queued();
      const limit = this.inFlight === 0 && this.maxInFlight > 1 && waiting > SPLIT_FROM ? Math.ceil(waiting / 2) : waiting;
      const head = this.queueHead;
      let count = 0;
      let events = 0;
      while (count < limit && events < this.maxBatchEvents) {
        events += this.queue[head + count]!.events.length;
        count += 1;
      }
      let requests: AppendRequest[];
      let resolvers: ((result: AppendResult) => void)[];
      let rejecters: ((error: Error) => void)[];
      if (head === 0 && count === this.queue.length) {
        requests = this.queue;
        resolvers = this.resolvers;
        rejecters = this.rejecters;
        this.queue = [];
        this.resolvers = [];
        this.rejecters = [];
      } else {
        requests = this.queue.slice(head, head + count);
        resolvers = this.resolvers.slice(head, head + count);
        rejecters = this.rejecters.slice(head, head + count);
        this.queueHead = head + count;
        if (this.queueHead === this.queue.length) {
          this.queue = [];
          this.resolvers = [];
          this.rejecters = [];
          this.queueHead = 0;
        } else if (this.queueHead >= 1024 && 2 * this.queueHead >= this.queue.length) {
          // Most of the arrays is taken: keep the rest only (amortized over the batches taken meanwhile).
          this.queue = this.queue.slice(this.queueHead);
          this.resolvers = this.resolvers.slice(this.queueHead);
          this.rejecters = this.rejecters.slice(this.queueHead);
          this.queueHead = 0;
        }
      }
      this.inFlight += 1;
      const observer = this.batchObserver;
      const started = observer === undefined ? 0 : performance.now();
      let committing: BatchOutcomes | Promise<BatchOutcomes>;
      try {
        committing = this.commitBatch(requests);
      } catch (error) {
        committing = Promise.reject(error as Error);
      }
      void Promise.resolve(committing)
        .then(
          (outcomes) => {
            if (observer !== undefined) observe(observer, count, events, started, false);
            for (let i = 0; i < outcomes.length; i++) {
              const outcome = outcomes[i]!;
              if (outcome instanceof Error) rejecters[i]!(outcome);
              else resolvers[i]!(outcome);
            }
          },
          (error: unknown) => {
            if (observer !== undefined) observe(observer, count, events, started, true);
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

  /**
   * A subclass tells of a batch once it is durable: its events' stored texts (`canonical`: the text `readAll` parses),
   * from `firstPosition` on, in order. While anyone subscribes, `page` parses them from here instead of
   * reading back from storage what was just written (the hub's followers, woken by each commit, read it back
   * at every commit: 4 % of its main thread at a low rate). Kept only while someone subscribes: a
   * store nobody follows keeps nothing. Bounded: a follower that falls further behind reads from storage.
   */
  protected committed(firstPosition: number, events: readonly { readonly canonical: string }[]): void {
    // With no subscriber the texts were dropped when the last one ended.
    if (this.subscribers === 0) return;
    if (firstPosition !== this.textsStart + this.texts.length) {
      this.dropTexts();
      this.textsStart = firstPosition;
    }
    for (let i = 0; i < events.length; i++) this.texts.push(events[i]!.canonical);
    const kept = this.texts.length - this.textsHead;
    if (kept > 2 * SHARED_WINDOW) this.takeTexts(kept - SHARED_WINDOW);
  }

  private dropTexts(): void {
    this.textsStart += this.texts.length;
    this.texts = [];
    this.textsHead = 0;
  }

  /** Forgets the first `n` texts kept. */
  private takeTexts(n: number): void {
    this.textsHead += n;
    if (this.textsHead === this.texts.length) this.dropTexts();
    else if (this.textsHead >= 1024 && 2 * this.textsHead >= this.texts.length) {
      this.texts = this.texts.slice(this.textsHead);
      this.textsStart += this.textsHead;
      this.textsHead = 0;
    }
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

  /**
   * A page for a subscriber. The followers of one process (projections, the code mapper) read the same
   * new events one after another: they share one read and parse of each page, and a window of the
   * events last read, frozen so that no subscriber can change what another sees.
   */
  private async page(from: number, pageSize: number): Promise<readonly RecordedEvent[]> {
    const start = this.windowStart;
    const end = start + this.window.length;
    if (from >= start && from < end) return this.window.slice(from - start, Math.min(end, from + pageSize) - start);
    const first = this.textsStart + this.textsHead;
    if (from >= first && from < this.textsStart + this.texts.length) return this.parseKept(from, pageSize);
    // Subscribers woken by the same commit ask for the same page at once: one read serves them all.
    let reading = this.reading.get(from);
    if (reading === undefined) {
      reading = this.readShared(from, pageSize).finally(() => this.reading.delete(from));
      this.reading.set(from, reading);
    }
    const page = await reading;
    return page.length <= pageSize ? page : page.slice(0, pageSize);
  }

  /**
   * A page parsed from the texts of the last commits (`committed`). `page` looks in the window first and the
   * texts begin where the window ends, so the page always extends the window or starts it again.
   */
  private parseKept(from: number, pageSize: number): readonly RecordedEvent[] {
    const offset = from - this.textsStart;
    const count = Math.min(this.texts.length - offset, pageSize);
    const page = new Array<RecordedEvent>(count);
    for (let i = 0; i < count; i++) page[i] = JSON.parse(this.texts[offset + i]!) as RecordedEvent;
    // The window then holds them (and `toWindow` forgets their texts).
    this.toWindow(from, page);
    return page;
  }

  private async readShared(from: number, pageSize: number): Promise<readonly RecordedEvent[]> {
    const page = await this.readAll({ fromPosition: from, maxCount: pageSize });
    this.toWindow(from, page);
    return page;
  }

  /** Freezes a page read or parsed for subscribers and keeps it in the window. */
  private toWindow(from: number, page: readonly RecordedEvent[]): void {
    if (page.length === 0) return;
    for (const event of page) deepFreeze(event);
    // Extend the window when the page continues it, start it again when the page is past it.
    const endNow = this.windowStart + this.window.length;
    if (from === endNow) for (const event of page) this.window.push(event);
    else if (from > endNow) {
      this.window = [...page];
      this.windowStart = from;
    }
    if (this.window.length > 2 * SHARED_WINDOW) {
      const drop = this.window.length - SHARED_WINDOW;
      this.window = this.window.slice(drop);
      this.windowStart += drop;
    }
    // Texts the window now holds parsed are not parsed again.
    const covered = this.windowStart + this.window.length - (this.textsStart + this.textsHead);
    if (covered > 0) this.takeTexts(Math.min(covered, this.texts.length - this.textsHead));
  }

  async *subscribe(options: SubscribeOptions): AsyncIterable<RecordedEvent> {
    const pageSize = options.pageSize ?? 1000;
    let next = options.fromPosition;
    this.subscribers += 1;
    try {
      while (!options.signal?.aborted && !this.closed) {
        const page = await this.page(next, pageSize);
        for (const event of page) {
          if (options.signal?.aborted) return;
          yield event;
          next = event.position + 1;
        }
        if (page.length < pageSize) await this.waitBeyond(next, options.signal);
      }
    } finally {
      this.subscribers -= 1;
      if (this.subscribers === 0) this.dropTexts();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Let queued appends finish: a caller that was acknowledged MUST find its events after reopen.
    while (this.queued() > 0 || this.inFlight > 0) {
      if (this.inFlight === 0) this.flush();
      await new Promise((r) => setImmediate(r));
    }
    this.closed = true;
    this.notifyHead();
    await this.closeStorage();
  }
}
