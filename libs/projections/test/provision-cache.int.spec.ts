import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { PROVISION_CACHE_KIB, PROVISION_CATCH_UP_CACHE_KIB, SqliteProvisionStore } from '../src/sqlite-provision-store.js';

/** Events that are no provision change: they only move the checkpoint. */
function unrelated(from: number, count: number): RecordedEvent[] {
  return Array.from({ length: count }, (_, k) => ({ position: from + k, type: 'CorporateNumberAssigned', streamId: `s-${from + k}`, serial: `S-${from + k}`, data: {}, metadata: {} }) as unknown as RecordedEvent);
}

describe('the provision records page cache (I11: small in service, larger only for a catch-up)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'provision-cache-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('switches to the catch-up size for batches of 1,000 events or more and back at the first smaller one', async () => {
    const store = new SqliteProvisionStore({ path: join(dir, 'a.sqlite'), subjectRef: (s) => s });
    expect(store.pageCacheKiB).toBe(PROVISION_CACHE_KIB);
    await store.apply(unrelated(0, 1000));
    expect(store.pageCacheKiB).toBe(PROVISION_CATCH_UP_CACHE_KIB);
    await store.apply(unrelated(1000, 10));
    expect(store.pageCacheKiB).toBe(PROVISION_CACHE_KIB);
    await store.close();
  });

  it('takes the sizes it is given and refuses one below 64 KiB', async () => {
    const store = new SqliteProvisionStore({ path: join(dir, 'b.sqlite'), subjectRef: (s) => s, cacheKiB: 256, catchUpCacheKiB: 2048 });
    expect(store.pageCacheKiB).toBe(256);
    await store.apply(unrelated(0, 5000));
    expect(store.pageCacheKiB).toBe(2048);
    await store.close();
    expect(() => new SqliteProvisionStore({ path: join(dir, 'c.sqlite'), subjectRef: (s) => s, cacheKiB: 8 })).toThrow(/at least 64, got 8/);
  });
});
