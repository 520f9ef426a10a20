import type { EventStore, RecordedEvent } from '#ledger';
import type { CodeMapperProjection } from './code-mapper.port.js';

export interface CatchUpOptions {
  /** Events read per page. Default 5,000. */
  readonly pageSize?: number;
}

/** Applies every event after the projection's checkpoint, page by page, up to the store's head. Returns the new checkpoint. */
export async function catchUp(store: EventStore, projection: CodeMapperProjection, options: CatchUpOptions = {}): Promise<number> {
  const pageSize = options.pageSize ?? 5000;
  let next = (await projection.checkpoint()) + 1;
  for (;;) {
    const page = await store.readAll({ fromPosition: next, maxCount: pageSize });
    if (page.length === 0) return next - 1;
    await projection.apply(page);
    next = page[page.length - 1]!.position + 1;
  }
}

/** Drops the projection and replays the whole log into it (I8). Returns the checkpoint reached. */
export async function rebuildFrom(store: EventStore, projection: CodeMapperProjection, options: CatchUpOptions = {}): Promise<number> {
  await projection.reset();
  return catchUp(store, projection, options);
}

export interface FollowOptions {
  readonly signal: AbortSignal;
  /** Most events applied in one batch. Default 1,000. */
  readonly maxBatch?: number;
  /** Reports a failed batch; following stops at the next event after it (the checkpoint says where to resume). */
  readonly onError?: (error: unknown) => void;
}

/**
 * Keeps a projection current: catches up, then follows live appends through `subscribe`, applying
 * what arrived meanwhile as one batch. Resolves when the signal aborts, or at the first event after a
 * failed batch (the runner's owner restarts it; the checkpoint says where to resume).
 */
export async function follow(store: EventStore, projection: CodeMapperProjection, options: FollowOptions): Promise<void> {
  const maxBatch = options.maxBatch ?? 1000;
  await catchUp(store, projection);
  const from = (await projection.checkpoint()) + 1;
  let buffer: RecordedEvent[] = [];
  let flushing: Promise<void> = Promise.resolve();
  let failed = false;
  const flush = (): void => {
    if (buffer.length === 0) return;
    const batch = buffer;
    buffer = [];
    flushing = flushing.then(() => projection.apply(batch)).catch((error: unknown) => {
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
