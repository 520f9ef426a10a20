import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventStore, RecordedEvent } from '#ledger';
import type { EventSealer } from '#sealing';
import { toProblem } from '../src/http/problem.js';
import { FollowedProjection, ProjectionStopping, type FollowedStore } from '../src/projections/followed-projection.js';
import { openFollowedStores } from '../src/projections/followed-stores.js';

/** A log far longer than any catch-up in a test gets through, read synchronously underneath as SQLite is. */
const HEAD = 1_000_000_000;
const endless = {
  head: async () => HEAD,
  readAll: async ({ fromPosition = 0, maxCount = 1000 } = {}) =>
    Array.from({ length: Math.min(maxCount, HEAD - fromPosition) }, (_, i) => ({ type: 'IndividualNumberIssued', position: fromPosition + i }) as unknown as RecordedEvent),
  subscribe: () => (async function* () {})(),
} as unknown as EventStore;

class CountingStore implements FollowedStore {
  position = -1;
  closed = false;
  async apply(events: readonly RecordedEvent[]): Promise<void> {
    for (const e of events) if (e.position > this.position) this.position = e.position;
  }
  async checkpoint(): Promise<number> {
    return this.position;
  }
  async reset(): Promise<void> {
    this.position = -1;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

class Followed extends FollowedProjection<CountingStore> {
  readonly store = new CountingStore();
  constructor() {
    super(endless, 'Followed');
  }
  protected open(): CountingStore {
    return this.store;
  }
}

describe('a followed projection while the hub stops', () => {
  it('stops its first catch-up over a long log between pages, keeps the checkpoint reached and closes its store', async () => {
    const projection = new Followed();
    projection.onModuleInit();
    await new Promise((r) => setTimeout(r, 50));
    const during = projection.store.position;
    expect(during).toBeGreaterThan(0);
    projection.onModuleDestroy();
    await projection.onApplicationShutdown();
    expect(projection.store.closed).toBe(true);
    expect(projection.store.position).toBeLessThan(HEAD - 1);
  });

  it("refuses a reader's catch-up cut short by the stop (ProjectionStopping), rather than finishing it or answering from behind the head", async () => {
    const projection = new Followed();
    projection.onModuleInit();
    const reader = projection.current();
    await new Promise((r) => setTimeout(r, 20));
    projection.onModuleDestroy();
    const refused = await reader.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ProjectionStopping);
    // A request caught by the stop is told to come back: 503 SERVICE_UNAVAILABLE, not an internal error.
    const { problem, unexpected } = toProblem(refused, { instance: '/v1/citizens/me/records', correlationId: 'c' });
    expect(unexpected).toBe(false);
    expect(problem).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(problem.detail).toMatch(/^the hub is shutting down \(Followed had caught up to position \d+, not to the log's head\); send the request again later$/);
    await projection.onApplicationShutdown();
  });
});

describe('the followed projections', () => {
  it('are all opened by openFollowedStores, which a bulk writer uses to keep them at its head (a new one left out would be read from the start at a first start)', async () => {
    const src = join(import.meta.dirname, '../src');
    const followed = (readdirSync(src, { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(join(src, f), 'utf8').matchAll(/class (\w+) extends FollowedProjection</g)].map((m) => m[1]!));
    const dir = mkdtempSync(join(tmpdir(), 'followed-stores-'));
    try {
      const stores = openFollowedStores(dir, {} as EventSealer);
      for (const s of stores) await s.store.close();
      expect(stores.map((s) => s.name).sort()).toEqual(followed.sort());
      expect(followed.length).toBeGreaterThanOrEqual(6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
