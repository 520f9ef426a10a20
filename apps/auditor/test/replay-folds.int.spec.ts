import Database from 'better-sqlite3';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '#ledger';
import { corporateNumberDecider, corporateNumberFromBase, corporateNumberStreamId, type CorporateNumber } from '#numbering';
import { SqliteCorporateRegistry, SqliteNoticeInbox, catchUp } from '#projections';
import { SealedEventStore, type EventSealer } from '#sealing';
import { replayFold } from '../src/replay/replay-fold.js';
import { tamper, tmp } from './support/ledger-fixture.js';
import { people, readKey } from './support/read-key.js';

const root = tmp('auditor-replay-registry-');
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const NAMES = ['株式会社室蘭製作所', '合同会社ムロランテック', '札幌ABC株式会社'];

/** A hub's data dir: a ledger with three designations and two notices, its live registry and inbox beside it. */
async function dataDir(): Promise<{ ledger: string; registry: string; notices: string; numbers: CorporateNumber[]; sealer: EventSealer }> {
  const dir = join(root, `data-${++n}`);
  mkdirSync(dir);
  const ledger = join(dir, 'ledger.sqlite');
  const registry = join(dir, 'corporate-registry.sqlite');
  const notices = join(dir, 'notices.sqlite');
  const { sealer } = readKey(dir);
  const store = new SqliteEventStore({ path: ledger, nodeId: 1, synchronous: 'NORMAL' });
  const sealed = new SealedEventStore(store, sealer);
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
  for (const [i, subjectId] of ['6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5', '7f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d6'].entries()) {
    const data = { noticeId: `0193a1b2-0000-7000-8000-00000000000${i}`, subjectId, agencyId: 'muroran-city', title: `お知らせ ${i}`, body: '本文', sentAt: '2026-06-01T00:00:00.000Z' };
    await sealed.append({ streamId: `notice-${data.noticeId}`, expectedRevision: 'no_stream', serial: { allocate: true }, events: [{ type: 'NoticeSent', data, terminal: 'completed' }], metadata: { actor: 'agency:muroran-city', correlationId: `n${i}` } });
  }
  const live = new SqliteCorporateRegistry({ path: registry });
  const inbox = new SqliteNoticeInbox({ path: notices, ...people(sealer), open: (e) => sealer.open(e).event });
  await catchUp(store, live);
  await catchUp(store, inbox);
  await Promise.all([store.close(), live.close(), inbox.close()]);
  return { ledger, registry, notices, numbers, sealer };
}

describe('auditor replay: the corporate registry and the notice inbox', () => {
  it('rebuilds each from the raw events and finds it equal to the live one', async () => {
    const d = await dataDir();
    const registry = await replayFold('corporate-registry', d.ledger, d.registry, true);
    expect(registry).toMatchObject({ ok: true, liveRows: 3, rebuiltRows: 3, differingRows: 0, firstDifference: null, liveCheckpoint: 4, rebuiltCheckpoint: 4 });
    expect(registry.rebuiltDigest).toBe(registry.liveDigest);
    expect(await replayFold('notice-inbox', d.ledger, d.notices, true, d.sealer)).toMatchObject({ ok: true, liveRows: 2, rebuiltRows: 2, differingRows: 0 });
    // Without the read key the inbox (filed by sealed subjects) is skipped, and says why.
    expect(await replayFold('notice-inbox', d.ledger, d.notices, true)).toMatchObject({ ok: true, skipped: expect.stringContaining('--key-file') });
  });

  it('names the first differing corporation and field when an event of the log was changed', async () => {
    const d = await dataDir();
    const db = tamper(d.ledger);
    const row = db.prepare(`SELECT position, envelope FROM events WHERE stream_id = ?`).get(corporateNumberStreamId(d.numbers[1]!)) as { position: number; envelope: string };
    db.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(row.envelope.replace(NAMES[1]!, '合同会社ニセモノ'), row.position);
    db.close();
    const diff = await replayFold('corporate-registry', d.ledger, d.registry, true);
    expect(diff).toMatchObject({
      ok: false,
      differingRows: 1,
      firstDifference: { key: d.numbers[1], fields: ['name'], live: { name: NAMES[1] }, rebuilt: { name: '合同会社ニセモノ' } },
    });
  });

  it('finds a row removed from, or altered in, the live file', async () => {
    const d = await dataDir();
    const db = new Database(d.registry);
    db.prepare('DELETE FROM corporations WHERE corporate_number = ?').run(d.numbers[0]);
    db.close();
    const diff = await replayFold('corporate-registry', d.ledger, d.registry, true);
    expect(diff).toMatchObject({ ok: false, liveRows: 2, rebuiltRows: 3, differingRows: 1, firstDifference: { key: d.numbers[0], live: null } });

    const inbox = new Database(d.notices);
    inbox.prepare(`UPDATE notices SET agency_id = 'sapporo-city' WHERE notice_id = ?`).run('0193a1b2-0000-7000-8000-000000000001');
    inbox.close();
    expect(await replayFold('notice-inbox', d.ledger, d.notices, true, d.sealer)).toMatchObject({
      ok: false,
      differingRows: 1,
      firstDifference: { key: '0193a1b2-0000-7000-8000-000000000001', fields: ['agency_id'], live: { agency_id: 'sapporo-city' }, rebuilt: { agency_id: 'muroran-city' } },
    });
  });

  it('skips a missing file at the default path, and refuses a missing or foreign file that was named', async () => {
    const d = await dataDir();
    expect(await replayFold('corporate-registry', d.ledger, join(root, 'absent.sqlite'), false)).toMatchObject({ ok: true, skipped: expect.any(String) });
    await expect(replayFold('corporate-registry', d.ledger, join(root, 'absent.sqlite'), true)).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
    await expect(replayFold('notice-inbox', d.ledger, d.ledger, true, d.sealer)).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
    await expect(replayFold('notice-inbox', d.ledger, d.registry, true, d.sealer)).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
  });
});
