import { describe, expect, it } from 'vitest';
import { catchUp, follow, type LogProjection, type RecordedEvent } from '#ledger';

/** A log whose reads answer at once (as SQLite's synchronous reads do underneath a promise). */
function syncLog(length: number): { readAll: (o: { fromPosition: number; maxCount: number }) => Promise<RecordedEvent[]>; reads: number } {
  const log = {
    reads: 0,
    readAll: ({ fromPosition, maxCount }: { fromPosition: number; maxCount: number }) => {
      log.reads++;
      const end = Math.min(length, fromPosition + maxCount);
      return Promise.resolve(Array.from({ length: Math.max(0, end - fromPosition) }, (_, i) => ({ position: fromPosition + i }) as unknown as RecordedEvent));
    },
  };
  return log;
}

function counting(): LogProjection & { applied: number } {
  let checkpoint = -1;
  const p = {
    applied: 0,
    apply: (events: readonly RecordedEvent[]) => {
      for (const e of events) if (e.position > checkpoint) checkpoint = e.position;
      p.applied += events.length;
      return Promise.resolve();
    },
    checkpoint: () => Promise.resolve(checkpoint),
    reset: () => {
      checkpoint = -1;
      return Promise.resolve();
    },
  };
  return p;
}

describe('catchUp', () => {
  it('applies every event after the checkpoint, page by page, and returns the new checkpoint', async () => {
    const log = syncLog(12_345);
    const projection = counting();
    expect(await catchUp(log, projection, { pageSize: 1000 })).toBe(12_344);
    expect(projection.applied).toBe(12_345);
    expect(log.reads).toBe(14);
  });

  it('lets the event loop turn between full pages: a timer (a health check, a request) runs during a long catch-up', async () => {
    const log = syncLog(50_000);
    const projection = counting();
    let appliedWhenTimerRan: number | undefined;
    setTimeout(() => (appliedWhenTimerRan = projection.applied), 0);
    await catchUp(log, projection, { pageSize: 500 });
    expect(projection.applied).toBe(50_000);
    expect(appliedWhenTimerRan).toBeDefined();
    expect(appliedWhenTimerRan).toBeLessThan(50_000);
  });

  it('stops at toPosition', async () => {
    const projection = counting();
    expect(await catchUp(syncLog(10_000), projection, { pageSize: 300, toPosition: 4_999 })).toBe(4_999);
    expect(projection.applied).toBe(5_000);
  });

  it('stops between pages once its signal aborts, keeping what it applied (a stopping hub does not wait for the head)', async () => {
    const log = syncLog(1_000_000);
    const projection = counting();
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 0);
    const reached = await catchUp(log, projection, { pageSize: 500, signal: abort.signal });
    expect(projection.applied).toBeGreaterThan(0);
    expect(projection.applied).toBeLessThan(1_000_000);
    expect(reached).toBe(projection.applied - 1);
    expect(await projection.checkpoint()).toBe(reached);
  });
});

describe('follow', () => {
  it('returns soon after its signal aborts during its first catch-up, without reading to the head or subscribing', async () => {
    const log = syncLog(1_000_000);
    const projection = counting();
    const abort = new AbortController();
    let subscribed = false;
    const store = { readAll: log.readAll, subscribe: () => ((subscribed = true), (async function* () {})()) };
    setTimeout(() => abort.abort(), 0);
    await follow(store, projection, { signal: abort.signal });
    expect(projection.applied).toBeLessThan(1_000_000);
    expect(subscribed).toBe(false);
  });
});
