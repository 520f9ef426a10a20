import type { RecordedEvent } from './envelope.js';
import type { EventStore } from './event-store.port.js';

/**
 * A read model kept from the log with a stored checkpoint (I8): the code mapper, the provision records…
 * `apply` takes events in position order and MUST skip those at or before its checkpoint, so at-least-once
 * delivery is safe; a rebuild (reset, then apply everything) MUST equal the live projection.
 */
export interface LogProjection {
  apply(events: readonly RecordedEvent[]): Promise<void>;
  /** Position of the last applied event, -1 before any. */
  checkpoint(): Promise<number>;
  /** Drops everything and the checkpoint. */
  reset(): Promise<void>;
}

/*
 * The one catch-up / follow loop for every projection: the log is the source of truth, the checkpoint says
 * where to resume.
 */

export interface CatchUpOptions {
  /** Events read and applied per page (one transaction each). Default 5,000. */
  readonly pageSize?: number;
  /** Stop after this position (inclusive): the auditor rebuilds up to the live projection's checkpoint. */
  readonly toPosition?: number;
  /**
   * Stops between pages once aborted, after the first (the pages applied so far stay, with their
   * checkpoint): a hub asked to stop during a first catch-up over a long log closes within a page, not at
   * the log's head, while a request's catch-up of a few events still ends.
   */
  readonly signal?: AbortSignal;
}

/**
 * Applies every event after the projection's checkpoint, page by page, up to the store's head. Returns the
 * new checkpoint. Between full pages it lets the event loop turn: a store read and a projection's apply may
 * be synchronous underneath (SQLite), and a first catch-up over a long log must not leave health checks and
 * requests unanswered until it ends.
 */
export async function catchUp(store: Pick<EventStore, 'readAll'>, projection: LogProjection, options: CatchUpOptions = {}): Promise<number> {
  const pageSize = options.pageSize ?? 5000;
  const last = options.toPosition ?? Number.MAX_SAFE_INTEGER;
  let next = (await projection.checkpoint()) + 1;
  for (let pages = 0; next <= last && !(pages > 0 && options.signal?.aborted === true); pages++) {
    const page = await store.readAll({ fromPosition: next, maxCount: Math.min(pageSize, last - next + 1) });
    if (page.length === 0) break;
    await projection.apply(page);
    next = page[page.length - 1]!.position + 1;
    if (page.length === pageSize) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return next - 1;
}

/** Drops the projection and replays the log into it (I8). Returns the checkpoint reached. */
export async function rebuild(store: Pick<EventStore, 'readAll'>, projection: LogProjection, options: CatchUpOptions = {}): Promise<number> {
  await projection.reset();
  return catchUp(store, projection, options);
}

export interface FollowOptions {
  readonly signal: AbortSignal;
  /** Most events applied in one batch. Default 1,000. */
  readonly maxBatch?: number;
  /** Reports a failed batch; following stops at the next event after it (the checkpoint says where to resume). */
  readonly onError?: (error: unknown) => void;
  /** Called after each applied batch with the new checkpoint (for health and metrics). */
  readonly onApplied?: (checkpoint: number) => void;
}

/**
 * Keeps a projection current: catches up, then follows live appends through `subscribe`, applying
 * what arrived meanwhile as one batch. Resolves when the signal aborts, or at the first event after a
 * failed batch (the owner restarts it; the checkpoint says where to resume).
 */
export async function follow(store: Pick<EventStore, 'readAll' | 'subscribe'>, projection: LogProjection, options: FollowOptions): Promise<void> {
  const maxBatch = options.maxBatch ?? 1000;
  await catchUp(store, projection, { signal: options.signal });
  if (options.signal.aborted) return;
  const from = (await projection.checkpoint()) + 1;
  let buffer: RecordedEvent[] = [];
  let flushing: Promise<void> = Promise.resolve();
  let failed = false;
  const flush = (): void => {
    if (buffer.length === 0 || failed) return;
    const batch = buffer;
    buffer = [];
    flushing = flushing
      .then(async () => {
        if (failed) return;
        await projection.apply(batch);
        options.onApplied?.(batch[batch.length - 1]!.position);
      })
      .catch((error: unknown) => {
        failed = true;
        options.onError?.(error);
      });
  };
  let scheduled = false;
  for await (const event of store.subscribe({ fromPosition: from, signal: options.signal })) {
    if (failed) break;
    buffer.push(event);
    if (buffer.length >= maxBatch) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        flush();
      });
    }
  }
  flush();
  await flushing;
}
