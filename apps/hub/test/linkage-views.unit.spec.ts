import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, RecordedEvent } from '#ledger';
import type { EventSealer } from '#sealing';
import type { HubConfig } from '../src/config/hub-config.js';
import { EventsAppended } from '../src/ledger/events-appended.event.js';
import { LinkageViews } from '../src/linkage/linkage-views.js';

/** A log of `size` events that no look-up folds (queries), read synchronously underneath as the SQLite store does. */
function logOf(size: number): EventStore & { readonly reads: number[] } {
  const reads: number[] = [];
  const event = (position: number) => ({ type: 'QueryAccepted', position, data: {} }) as unknown as RecordedEvent;
  return {
    reads,
    head: async () => size,
    readAll: async ({ fromPosition = 0, maxCount = size } = {}) => {
      const page: RecordedEvent[] = [];
      for (let p = fromPosition; p < Math.min(size, fromPosition + maxCount); p++) page.push(event(p));
      reads.push(page.length);
      return page;
    },
  } as unknown as EventStore & { readonly reads: number[] };
}

const sealer = { open: (e: RecordedEvent) => ({ state: 'clear', event: e }), handle: (_d: string, _v: string, bytes: number) => 'ab'.repeat(bytes) } as unknown as EventSealer;

describe('LinkageViews catching up', () => {
  const dirs: string[] = [];
  const views: LinkageViews[] = [];
  const make = (store: EventStore, bus = new Subject<unknown>()) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'linkage-views-'));
    dirs.push(dataDir);
    const v = new LinkageViews(store, bus as never, sealer, { dataDir } as HubConfig);
    views.push(v);
    return v;
  };
  afterEach(async () => {
    for (const v of views.splice(0)) await v.onApplicationShutdown();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('lets the event loop run between pages of a long catch-up (requests and timers are not starved until its end)', async () => {
    const store = logOf(40_000);
    const v = make(store);
    let positionWhenTimerRan: number | undefined;
    setImmediate(() => (positionWhenTimerRan = v.position));
    await v.catchUp();
    expect(v.position).toBe(40_000);
    expect(positionWhenTimerRan).toBeDefined();
    expect(positionWhenTimerRan!).toBeLessThan(40_000);
  });

  it('steps over what this process appended with no folded type, without reading it', async () => {
    const bus = new Subject<unknown>();
    const store = logOf(10);
    const v = make(store, bus);
    await v.catchUp();
    expect(v.position).toBe(10);
    const read = store.reads.reduce((a, b) => a + b, 0);
    // Positions 10..109: one append of queries by this process.
    (store as unknown as { head: () => Promise<number> }).head = async () => 110;
    bus.next(new EventsAppended('query-1', '20261205-01-000001' as never, 10, 109, ['QueryAccepted']));
    await v.catchUp();
    expect(v.position).toBe(110);
    expect(store.reads.reduce((a, b) => a + b, 0)).toBe(read);
  });
});
