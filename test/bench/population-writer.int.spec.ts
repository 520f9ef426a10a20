import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { getPriority } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '#ledger';
import { EventSealer, KEYRING_FILE, SqliteKeyring } from '#sealing';
import { openFollowedStores } from '../../apps/hub/src/projections/followed-stores.js';
import { loadOrCreateSealingKeys } from '../../apps/hub/src/sealing/sealing-keys.js';
import { LOOKUPS_FILE } from '../../apps/hub/src/state/lookup-store.js';
import { registerAgency } from '../../apps/hub/test/support/linkage-fixture.js';
import { startTestHub } from '../../apps/hub/test/support/test-hub.js';
import { LookupFolder, MURORAN_CITY, PENSION, writePeople, writerFilterBytes } from '../../bench/support/population-log.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The projections the hub follows, by name. */
const FOLLOWED = ['ProvisionRecords', 'PushProjection', 'CorporateRegistry', 'NoticeInbox', 'NoticeBatchProgress', 'SubscriptionDirectory'];

/** The checkpoint of each projection file the hub follows, as the hub opens them. */
async function followedCheckpoints(dataDir: string): Promise<Record<string, number>> {
  const keys = loadOrCreateSealingKeys(join(dataDir, 'keys'));
  const ring = new SqliteKeyring({ path: join(dataDir, KEYRING_FILE), keys });
  const stores = openFollowedStores(dataDir, new EventSealer(keys, ring));
  try {
    return Object.fromEntries(await Promise.all(stores.map(async (s) => [s.name, await s.store.checkpoint()])));
  } finally {
    for (const s of stores) await s.store.close();
    ring.close();
  }
}

/** The rows digest of a data directory's look-ups file after folding the log up to its head with the hub's keys. */
async function lookupsDigest(dataDir: string): Promise<{ rows: number; hex: string; position: number }> {
  const keys = loadOrCreateSealingKeys(join(dataDir, 'keys'));
  const raw = new SqliteEventStore({ path: join(dataDir, 'ledger.sqlite'), nodeId: 1 });
  const ring = new SqliteKeyring({ path: join(dataDir, KEYRING_FILE), keys });
  const folder = new LookupFolder(dataDir, new EventSealer(keys, ring), raw);
  try {
    await folder.catchUp(await raw.head());
    return { ...(await folder.digest()), position: folder.position };
  } finally {
    await folder.close();
    ring.close();
    await raw.close();
  }
}

// The bulk writer of `npm run bench:population` (bench/support/population-log.ts) against a hub's own data
// directory: what it writes is what the hub reads, and the look-ups file it folds equals a rebuild (I8).
describe('the population writer', () => {
  it('writes numbered people through the ledger, folds the look-ups as a rebuild would, keeps the followed projections at its head, and leaves its niceness as it found it', async () => {
    const hub = await startTestHub();
    dirs.push(hub.dataDir);
    await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
    await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
    const nodeId = hub.config.nodeId;
    await hub.close();

    const before = getPriority();
    const people = 40;
    const written = await writePeople({ dataDir: hub.dataDir, nodeId, people, seedHex: randomBytes(32).toString('hex'), lookups: true, group: 16, groupsInFlight: 2, nice: Math.min(19, before + 2) });
    expect(getPriority()).toBe(before);
    expect(written.events).toBe(3 * people);
    expect(written.lastPosition - written.firstPosition + 1).toBe(3 * people);
    expect(written.phases?.writerBusy).toBeGreaterThan(0);

    // The file the writer folded (its checkpoint at the head) against one rebuilt from the log.
    const folded = await lookupsDigest(hub.dataDir);
    expect(folded.position).toBe(written.lastPosition);
    const copy = mkdtempSync(join(tmpdir(), 'population-writer-'));
    dirs.push(copy);
    cpSync(hub.dataDir, copy, { recursive: true });
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(copy, `${LOOKUPS_FILE}${suffix}`), { force: true });
    const rebuilt = await lookupsDigest(copy);
    expect(rebuilt).toEqual(folded);

    // Every projection the hub follows is at the head too: a first start reads none of the log again.
    expect(await followedCheckpoints(hub.dataDir)).toEqual(Object.fromEntries(FOLLOWED.map((name) => [name, written.lastPosition])));

    // The hub started on the written log resumes its look-ups at the head: nothing to read again.
    const again = await startTestHub({ dataDir: hub.dataDir });
    try {
      expect(await again.head()).toBe(written.lastPosition + 1);
      await expect.poll(() => again.logger.lines.map((l) => l.message).find((m) => m.includes('lookups caught up with the log at start')), { timeout: 30_000 }).toMatch(/, 0 events read in/);
    } finally {
      await again.close();
    }
  }, 300_000);

  it('sizes its ledger filters for the log it writes: 16 bits per key, from 4 MiB to 256 MiB each', () => {
    expect(writerFilterBytes(2_000)).toBe(4 * 1024 * 1024);
    expect(writerFilterBytes(1_000_000)).toBe(8 * 1024 * 1024);
    expect(writerFilterBytes(10_000_000)).toBe(64 * 1024 * 1024);
    expect(writerFilterBytes(200_000_000)).toBe(256 * 1024 * 1024);
  });
});
