import Database from 'better-sqlite3';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '#ledger';
import { corporateNumberDecider, corporateNumberFromBase, corporateNumberStreamId, type CorporateNumber } from '#numbering';
import { SqliteCorporateRegistry, catchUp } from '#projections';
import { replayCorporateRegistry } from '../src/replay/replay-corporate-registry.js';
import { tamper, tmp } from './support/ledger-fixture.js';

const root = tmp('auditor-replay-registry-');
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const NAMES = ['株式会社室蘭製作所', '合同会社ムロランテック', '札幌ABC株式会社'];

/** A hub's data dir: a ledger with three designations and its live corporate registry beside it. */
async function dataDir(): Promise<{ ledger: string; registry: string; numbers: CorporateNumber[] }> {
  const dir = join(root, `data-${++n}`);
  mkdirSync(dir);
  const ledger = join(dir, 'ledger.sqlite');
  const registry = join(dir, 'corporate-registry.sqlite');
  const store = new SqliteEventStore({ path: ledger, nodeId: 1, synchronous: 'NORMAL' });
  const numbers: CorporateNumber[] = [];
  for (const [i, name] of NAMES.entries()) {
    const corporateNumber = corporateNumberFromBase(`43000100000${i}`);
    numbers.push(corporateNumber);
    const events = corporateNumberDecider.decide(
      { type: 'DesignateCorporateNumber', data: { corporateNumber, name, location: '北海道室蘭市幸町1番2号', kind: 'stock-company', designatedAt: '2026-04-01T00:00:00.000Z' } },
      corporateNumberDecider.initialState(),
    );
    await store.append({ streamId: corporateNumberStreamId(corporateNumber), expectedRevision: 'no_stream', serial: { allocate: true }, events, metadata: { actor: 'operator:nta', correlationId: `c${i}` } });
  }
  const live = new SqliteCorporateRegistry({ path: registry });
  await catchUp(store, live);
  await Promise.all([store.close(), live.close()]);
  return { ledger, registry, numbers };
}

describe('auditor replay: corporate registry', () => {
  it('rebuilds the registry from the raw events and finds it equal to the live one', async () => {
    const d = await dataDir();
    const diff = await replayCorporateRegistry(d.ledger, d.registry, true);
    expect(diff).toMatchObject({ ok: true, liveCorporations: 3, rebuiltCorporations: 3, differingCorporations: 0, firstDifference: null, liveCheckpoint: 2, rebuiltCheckpoint: 2 });
    expect(diff.rebuiltDigest).toBe(diff.liveDigest);
  });

  it('names the first differing corporation and field when an event of the log was changed', async () => {
    const d = await dataDir();
    const db = tamper(d.ledger);
    const row = db.prepare(`SELECT position, envelope FROM events WHERE stream_id = ?`).get(corporateNumberStreamId(d.numbers[1]!)) as { position: number; envelope: string };
    db.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(row.envelope.replace(NAMES[1]!, '合同会社ニセモノ'), row.position);
    db.close();
    const diff = await replayCorporateRegistry(d.ledger, d.registry, true);
    expect(diff).toMatchObject({
      ok: false,
      differingCorporations: 1,
      firstDifference: { corporateNumber: d.numbers[1], fields: ['name'], live: { name: NAMES[1] }, rebuilt: { name: '合同会社ニセモノ' } },
    });
  });

  it('finds a row altered or removed in the live file', async () => {
    const d = await dataDir();
    const db = new Database(d.registry);
    db.prepare('DELETE FROM corporations WHERE corporate_number = ?').run(d.numbers[2]);
    db.close();
    const diff = await replayCorporateRegistry(d.ledger, d.registry, true);
    expect(diff).toMatchObject({ ok: false, liveCorporations: 2, rebuiltCorporations: 3, differingCorporations: 1, firstDifference: { corporateNumber: d.numbers[2], live: null } });
  });

  it('skips a missing file at the default path, and refuses a missing or foreign file that was named', async () => {
    const d = await dataDir();
    expect(await replayCorporateRegistry(d.ledger, join(root, 'absent.sqlite'), false)).toMatchObject({ ok: true, skipped: expect.any(String) });
    await expect(replayCorporateRegistry(d.ledger, join(root, 'absent.sqlite'), true)).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
    await expect(replayCorporateRegistry(d.ledger, d.ledger, true)).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
  });
});
