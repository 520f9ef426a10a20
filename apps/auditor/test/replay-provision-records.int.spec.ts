import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { MerkleTreeProjection, SqliteEventStore } from '#ledger';
import { catchUp, SqliteProvisionStore } from '#projections';
import { OpeningEventStore, SealedEventStore, type EventSealer } from '#sealing';
import { NOW, richLog } from '../../../libs/projections/test/scenario.js';
import { replayProvisionRecords } from '../src/replay/replay-provision-records.js';
import { replayTree } from '../src/replay/replay-tree.js';
import { tamper, tmp } from './support/ledger-fixture.js';
import { people, readKey } from './support/read-key.js';

const root = tmp('auditor-replay-records-');
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/**
 * A hub's data dir: a ledger written through the linkage deciders and sealed as the hub seals (I10), its
 * tree, its live provision records (folded from opened events, filed by keyed references), and its keys.
 */
async function dataDir(): Promise<{ ledger: string; projections: string; keyFile: string; sealer: EventSealer }> {
  const dir = join(root, `data-${++n}`);
  mkdirSync(dir);
  const ledger = join(dir, 'ledger.sqlite');
  const projections = join(dir, 'projections.sqlite');
  const key = readKey(dir);
  let clock = Date.parse(NOW);
  const store = new SqliteEventStore({ path: ledger, nodeId: 1, now: () => new Date((clock += 3)), synchronous: 'NORMAL' });
  await richLog(new SealedEventStore(store, key.sealer));
  const live = new SqliteProvisionStore({ path: projections, ...people(key.sealer) });
  await catchUp(new OpeningEventStore(store, key.sealer, new Set(['KeysShredded'])), live);
  await Promise.all([store.close(), live.close()]);
  const tree = new MerkleTreeProjection({ source: ledger });
  tree.catchUp();
  tree.close();
  return { ledger, projections, keyFile: key.keyFile, sealer: key.sealer };
}

/** The serial and envelope position of the event of `type` for `queryId`. */
function eventOf(ledger: string, type: string, queryId: string): { position: number; serial: string; envelope: string } {
  const db = tamper(ledger);
  const row = db.prepare(`SELECT position, serial, envelope FROM events WHERE stream_id = ? AND envelope LIKE ?`).get(`query-${queryId}`, `%"type":"${type}"%`) as { position: number; serial: string; envelope: string };
  db.close();
  return row;
}

describe('auditor replay: provision records', () => {
  it('rebuilds the provision records from the raw events and finds them equal to the live projection', async () => {
    const d = await dataDir();
    const diff = await replayProvisionRecords(d.ledger, d.projections, true, d.sealer);
    expect(diff).toMatchObject({ ok: true, liveRecords: 14, rebuiltRecords: 14, differingRecords: 0, firstDifference: null });
    expect(diff.rebuiltDigest).toBe(diff.liveDigest);
    expect(diff.rebuiltCheckpoint).toBe(diff.liveCheckpoint);
    expect(replayTree(d.ledger).ok).toBe(true);
  });

  it('reports the first differing record when an event of the log was changed', async () => {
    const d = await dataDir();
    const e = eventOf(d.ledger, 'QueryCompleted', 'q-march');
    const db = tamper(d.ledger);
    db.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(e.envelope.replace('"outcome":"answered"', '"outcome":"refused-by-provider"'), e.position);
    db.close();
    const diff = await replayProvisionRecords(d.ledger, d.projections, true, d.sealer);
    expect(diff).toMatchObject({ ok: false, differingRecords: 1, firstDifference: { serial: e.serial, fields: ['status'], live: { status: 'answered' }, rebuilt: { status: 'refused-by-provider' } } });
    expect(diff.rebuiltDigest).not.toBe(diff.liveDigest);
  });

  it('reports a record the live projection lacks or altered', async () => {
    const d = await dataDir();
    const denied = eventOf(d.ledger, 'QueryDenied', 'q-stolen');
    const answered = eventOf(d.ledger, 'QueryAccepted', 'q-v2');
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(d.projections);
    db.prepare('DELETE FROM provision_records WHERE serial = ?').run(denied.serial);
    db.prepare(`UPDATE provision_records SET provider_name = '別の市' WHERE serial = ?`).run(answered.serial);
    db.close();
    const diff = await replayProvisionRecords(d.ledger, d.projections, true, d.sealer);
    expect(diff).toMatchObject({ ok: false, differingRecords: 2, liveRecords: 13, rebuiltRecords: 14 });
    // Serials are allocated in log order: the denial (earlier) is the first difference, missing from the live file.
    expect(denied.serial < answered.serial).toBe(true);
    expect(diff.firstDifference).toMatchObject({ serial: denied.serial, live: null, rebuilt: { queryId: 'q-stolen', status: 'denied' } });
  });

  it('skips a ledger with no projections file beside it, but refuses a missing file given explicitly', async () => {
    const d = await dataDir();
    rmSync(d.projections);
    expect(await replayProvisionRecords(d.ledger, d.projections, false, d.sealer)).toMatchObject({ ok: true, skipped: expect.any(String) });
    await expect(replayProvisionRecords(d.ledger, d.projections, true, d.sealer)).rejects.toThrow(expect.objectContaining({ code: 'SOURCE_UNREADABLE' }));
  });

  it('without the read key, says the records are folded from sealed fields and skips them', async () => {
    const d = await dataDir();
    expect(await replayProvisionRecords(d.ledger, d.projections, true)).toMatchObject({ ok: true, skipped: expect.stringContaining('--key-file') });
  });

  it('through the CLI: exit 0 when equal; exit 1 with the first differing serial (text and --json) after a change', async () => {
    const d = await dataDir();
    const run = promisify(execFile);
    const main = join(import.meta.dirname, '../src/main.ts');
    const node = [process.execPath, '--conditions=source', '--import', 'tsx', main] as const;
    const withKey = ['--key-file', d.keyFile];
    const ok = await run(node[0], [...node.slice(1), 'replay', '--db', d.ledger, ...withKey]);
    expect(ok.stdout).toContain('OK: the rebuilt provision records equal the live ones');
    const e = eventOf(d.ledger, 'ProvisionRefused', 'q-april');
    const db = tamper(d.ledger);
    db.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(e.envelope.replace('"reason":"NO_RECORD"', '"reason":"NOT_HELD"'), e.position);
    db.close();
    await expect(run(node[0], [...node.slice(1), 'replay', '--db', d.ledger, '--projections', d.projections, ...withKey])).rejects.toMatchObject({
      code: 1,
      stdout: expect.stringContaining(`DIFFERS: 1 record(s); the first, serial ${e.serial}, in reason:\n  reason: live "NO_RECORD" rebuilt "NOT_HELD"`),
    });
    const failed = (await run(node[0], [...node.slice(1), 'replay', '--db', d.ledger, '--json', ...withKey]).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => error,
    )) as { code: number; stdout: string };
    expect(failed.code).toBe(1);
    const report = JSON.parse(failed.stdout) as { ok: boolean; projections: { projection: string; ok: boolean; firstDifference?: { serial: string } }[] };
    expect(report.ok).toBe(false);
    expect(report.projections.find((p) => p.projection === 'provision-records')).toMatchObject({ ok: false, firstDifference: { serial: e.serial } });
  });
});
