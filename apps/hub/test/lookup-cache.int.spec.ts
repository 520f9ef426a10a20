import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { LookupSeal } from '../src/state/lookup-seal.js';
import { CATCH_UP_BATCH, LOOKUPS_CACHE_KIB, LOOKUPS_CATCH_UP_CACHE_KIB, SqliteLookupStore } from '../src/state/lookup-store.js';

/** Events of a type the look-ups do not fold: they only move the checkpoint (never opened). */
function unfolded(from: number, count: number): RecordedEvent[] {
  return Array.from({ length: count }, (_, k) => ({ position: from + k, type: 'QueryAnswered', streamId: `s-${from + k}`, data: {} }) as unknown as RecordedEvent);
}

describe('the look-ups page cache (I11: small in service, larger only during a long catch-up)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const open = (options: { cacheKiB?: number; catchUpCacheKiB?: number } = {}) => {
    const dir = mkdtempSync(join(tmpdir(), 'lookup-cache-'));
    dirs.push(dir);
    return new SqliteLookupStore({
      path: join(dir, 'lookups.db'),
      open: () => {
        throw new Error('no event of these types is opened');
      },
      seal: new LookupSeal((domain, value, bytes) => createHmac('sha256', 'k').update(`${domain}|${value}`).digest('hex').slice(0, bytes * 2)),
      ...options,
    });
  };

  it('opens with the service size, takes the catch-up size for full pages and goes back at the first short batch', async () => {
    const store = open();
    expect(store.cacheKiB).toBe(LOOKUPS_CACHE_KIB);
    await store.apply(unfolded(0, CATCH_UP_BATCH));
    expect(store.cacheKiB).toBe(LOOKUPS_CATCH_UP_CACHE_KIB);
    await store.apply(unfolded(CATCH_UP_BATCH, CATCH_UP_BATCH + 5));
    expect(store.cacheKiB).toBe(LOOKUPS_CATCH_UP_CACHE_KIB);
    await store.apply(unfolded(2 * CATCH_UP_BATCH + 5, 3));
    expect(store.cacheKiB).toBe(LOOKUPS_CACHE_KIB);
    expect(store.position).toBe(2 * CATCH_UP_BATCH + 7);
    await store.close();
  });

  it('takes the sizes it is given and refuses a size that is not a whole number of KiB ≥ 64', async () => {
    const store = open({ cacheKiB: 512, catchUpCacheKiB: 4096 });
    expect(store.cacheKiB).toBe(512);
    await store.apply(unfolded(0, CATCH_UP_BATCH));
    expect(store.cacheKiB).toBe(4096);
    await store.apply(unfolded(CATCH_UP_BATCH, 1));
    expect(store.cacheKiB).toBe(512);
    await store.close();
    expect(() => open({ cacheKiB: 10 })).toThrow(/cacheKiB must be an integer number of KiB, at least 64, got 10/);
    expect(() => open({ catchUpCacheKiB: 1.5 })).toThrow(/catchUpCacheKiB/);
  });
});
