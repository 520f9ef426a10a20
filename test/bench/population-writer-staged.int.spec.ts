import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore, type EventId, type RecordedEvent, type SerialNumber } from '#ledger';
import { EventSealer, KEYRING_FILE, SqliteKeyring } from '#sealing';
import { loadOrCreateSealingKeys } from '../../apps/hub/src/sealing/sealing-keys.js';
import { LOOKUPS_FILE } from '../../apps/hub/src/state/lookup-store.js';
import { registerAgency } from '../../apps/hub/test/support/linkage-fixture.js';
import { startTestHub } from '../../apps/hub/test/support/test-hub.js';
import { LOOKUPS_STAGE_FILE, LookupFolder, MURORAN_CITY, PENSION, writePeople } from '../../bench/support/population-log.js';

const dirs: string[] = [];
let registered: { dataDir: string; nodeId: number };

beforeAll(async () => {
  const hub = await startTestHub();
  dirs.push(hub.dataDir);
  await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  registered = { dataDir: hub.dataDir, nodeId: hub.config.nodeId };
  await hub.close();
}, 120_000);

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh copy of the registered hub's data directory. */
function copyOfHub(): string {
  const dir = mkdtempSync(join(tmpdir(), 'population-staged-'));
  dirs.push(dir);
  cpSync(registered.dataDir, dir, { recursive: true });
  return dir;
}

async function withFolder<T>(dataDir: string, run: (folder: LookupFolder, raw: SqliteEventStore) => Promise<T>): Promise<T> {
  const keys = loadOrCreateSealingKeys(join(dataDir, 'keys'));
  const raw = new SqliteEventStore({ path: join(dataDir, 'ledger.sqlite'), nodeId: registered.nodeId });
  const ring = new SqliteKeyring({ path: join(dataDir, KEYRING_FILE), keys });
  const folder = new LookupFolder(dataDir, new EventSealer(keys, ring), raw);
  try {
    return await run(folder, raw);
  } finally {
    await folder.close();
    ring.close();
    await raw.close();
  }
}

/** The rows digest of a data directory's look-ups file after folding the log up to its head with the hub's keys. */
function lookupsDigest(dataDir: string): Promise<{ rows: number; hex: string; position: number }> {
  return withFolder(dataDir, async (folder, raw) => {
    await folder.catchUp(await raw.head());
    return { ...(await folder.digest()), position: folder.position };
  });
}

/** The same log's look-ups rebuilt by the hub's fold from the log alone (the file deleted first). */
function rebuiltDigest(dataDir: string): Promise<{ rows: number; hex: string; position: number }> {
  const copy = mkdtempSync(join(tmpdir(), 'population-staged-rebuilt-'));
  dirs.push(copy);
  cpSync(dataDir, copy, { recursive: true });
  for (const suffix of ['', '-wal', '-shm']) rmSync(join(copy, `${LOOKUPS_FILE}${suffix}`), { force: true });
  return lookupsDigest(copy);
}

// The bulk writer's staged look-ups (bench/support/population-log.ts): folded by the hub's own store group by
// group into memory, staged, then built into lookups.db in key order once the log is written. The file must
// hold what the hub's fold of the log holds (I8).
describe('the population writer with staged look-ups', () => {
  it('builds a lookups.db with the rows digest of one rebuilt from the log, its checkpoint at the head, in WAL mode, the staging file gone', async () => {
    const dataDir = copyOfHub();
    const people = 3000;
    const written = await writePeople({ dataDir, nodeId: registered.nodeId, people, seedHex: randomBytes(32).toString('hex'), lookups: true, lookupsFold: 'staged', group: 500, groupsInFlight: 3 });
    expect(written.events).toBe(3 * people);
    expect(written.phases?.lookupsBuildSeconds).toBeGreaterThan(0);
    expect(existsSync(join(dataDir, LOOKUPS_STAGE_FILE))).toBe(false);

    const db = new Database(join(dataDir, LOOKUPS_FILE), { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      // The build itself moved the checkpoint to the head: the hub's first start has nothing to fold.
      expect(db.prepare(`SELECT value FROM fold_meta WHERE key = 'checkpoint'`).pluck().get()).toBe(String(written.lastPosition));
      expect(db.prepare('SELECT count(*) FROM numbers').pluck().get()).toBe(people);
      expect(db.prepare('SELECT count(*) FROM agency_codes').pluck().get()).toBe(2 * people);
      // The secondary indexes are there again, as the hub's layout makes them.
      expect(db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`).pluck().all()).toEqual(
        expect.arrayContaining(['agency_codes_by_subject', 'citizen_secrets_by_subject', 'numbers_by_subject']),
      );
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }

    const folded = await lookupsDigest(dataDir);
    expect(folded.position).toBe(written.lastPosition);
    expect(folded.rows).toBeGreaterThan(3 * people);
    expect(await rebuiltDigest(dataDir)).toEqual(folded);
  }, 300_000);

  it('folds group by group into lookups.db itself when told to (direct), with the same rows as a rebuild', async () => {
    const dataDir = copyOfHub();
    const written = await writePeople({ dataDir, nodeId: registered.nodeId, people: 300, seedHex: randomBytes(32).toString('hex'), lookups: true, lookupsFold: 'direct', group: 100, groupsInFlight: 2 });
    expect(written.phases?.lookupsBuildSeconds).toBeLessThan(0.05); // nothing to build
    const folded = await lookupsDigest(dataDir);
    expect(folded.position).toBe(written.lastPosition);
    expect(await rebuiltDigest(dataDir)).toEqual(folded);
  }, 300_000);

  it("refuses an event the writer does not append, and a gap, leaving lookups.db at its checkpoint before the stage", async () => {
    const dataDir = copyOfHub();
    await withFolder(dataDir, async (folder, raw) => {
      const head = await raw.head();
      await folder.catchUp(head);
      const before = await folder.digest();
      folder.stage(join(dataDir, LOOKUPS_STAGE_FILE));
      const event = (position: number, type: string): RecordedEvent => ({
        eventId: `e-${position}` as EventId,
        type,
        schemaVersion: 1,
        streamId: `s-${position}`,
        streamRevision: 0,
        position,
        serial: 'serial' as SerialNumber,
        terminal: 'completed',
        recordedAt: new Date(0).toISOString(),
        data: { agencyId: 'x' },
        metadata: { actor: 'test', correlationId: 'c' },
      });
      await expect(folder.fold([event(head, 'AgencyRegistered')])).rejects.toThrow(/takes only the writer's own events, not AgencyRegistered/);
      await expect(folder.fold([event(head + 5, 'IndividualNumberIssued')])).rejects.toMatchObject({ code: 'PROJECTION_GAP' });
      await folder.build();
      expect(folder.position).toBe(head - 1);
      expect(await folder.digest()).toEqual(before);
      expect(existsSync(join(dataDir, LOOKUPS_STAGE_FILE))).toBe(false);
    });
  }, 120_000);
});
