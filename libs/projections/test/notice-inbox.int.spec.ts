import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { EventId, RecordedEvent, SerialNumber } from '#ledger';
import { SqliteNoticeInbox } from '#projections';
import { EventSealer, InMemoryKeyring, generateSealingKeysFile, parseSealingKeys } from '#sealing';

const dir = mkdtempSync(join(tmpdir(), 'notice-inbox-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const ref = (subjectId: string) => createHash('sha256').update(`ref:${subjectId}`).digest('hex').slice(0, 32);
/** Events of logs written before sealing need no opening; sealed ones are opened by the sealer below. */
const open = (sealer?: EventSealer) =>
  new SqliteNoticeInbox({
    path: join(dir, `inbox-${++files}.sqlite`),
    subjectRef: sealer === undefined ? ref : (s) => sealer.personRef(s),
    ...(sealer === undefined ? {} : { personOf: (e: RecordedEvent) => sealer.referenceOf(e), open: (e: RecordedEvent) => sealer.open(e).event }),
  });

const ALICE = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5';
const BOB = '7f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d6';

function event(position: number, type: string, data: unknown): RecordedEvent {
  return {
    eventId: `e${position}` as EventId,
    type,
    schemaVersion: 1,
    streamId: `s${position}`,
    streamRevision: 0,
    position,
    serial: `2026060101${String(position).padStart(10, '0')}` as SerialNumber,
    terminal: 'completed',
    recordedAt: '2026-06-01T00:00:00.000Z',
    data,
    metadata: { actor: 'agency:muroran-city', correlationId: `c${position}` },
  };
}
const notice = (position: number, subjectId: string) =>
  event(position, 'NoticeSent', { noticeId: `n${position}`, subjectId, agencyId: 'muroran-city', sealed: { v: '1', ciphertext: `c${position}` }, sentAt: `2026-06-01T00:00:0${position}.000Z` });
const LOG = [notice(0, ALICE), event(1, 'QueryAccepted', {}), notice(2, BOB), notice(3, ALICE), notice(4, ALICE)];

describe('the notice inbox projection', () => {
  test('keeps each citizen\'s notices, sealed, newest first, paged', async () => {
    const inbox = open();
    await inbox.apply(LOG);
    const page = await inbox.notices(ALICE, { limit: 2 });
    expect(page.notices.map((n) => n.noticeId)).toEqual(['n4', 'n3']);
    expect(page.notices[0]).toEqual({ noticeId: 'n4', serial: LOG[4]!.serial, agencyId: 'muroran-city', schemaVersion: 1, sealed: { v: '1', ciphertext: 'c4' }, sentAt: '2026-06-01T00:00:04.000Z', readAt: null });
    expect((await inbox.notices(ALICE, { limit: 2, before: page.next! })).notices.map((n) => n.noticeId)).toEqual(['n0']);
    expect((await inbox.notices(BOB)).notices.map((n) => n.noticeId)).toEqual(['n2']);
    await expect(inbox.notices(ALICE, { limit: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await inbox.close();
  });

  test('I8: applied live in small batches, redelivered, or rebuilt at once, the result is the same', async () => {
    const live = open();
    for (let i = 0; i < LOG.length; i += 2) await live.apply(LOG.slice(0, i + 2)); // overlapping redeliveries
    const rebuilt = open();
    await rebuilt.apply(LOG);
    for (const subject of [ALICE, BOB]) expect(await rebuilt.notices(subject)).toEqual(await live.notices(subject));
    expect(await live.checkpoint()).toBe(4);
    await live.reset();
    expect(await live.checkpoint()).toBe(-1);
    expect((await live.notices(ALICE)).notices).toEqual([]);
    await Promise.all([live.close(), rebuilt.close()]);
  });

  test('NoticeRead marks the person\'s notice read once (the first time kept); unread counts every notice of theirs; others\' reads change nothing', async () => {
    const read = (position: number, noticeId: string, subjectId: string, readAt: string) => ({ ...event(position, 'NoticeRead', { noticeId, subjectId, readAt }), streamId: `notice-${noticeId}` });
    const log = [
      ...LOG,
      read(5, 'n3', ALICE, '2026-06-02T00:00:00.000Z'),
      // Bob reading Alice's notice (the hub never records it; the fold ignores it all the same).
      read(6, 'n0', BOB, '2026-06-02T00:00:01.000Z'),
      // A second read of n3: the first time stays.
      read(7, 'n3', ALICE, '2026-06-03T00:00:00.000Z'),
      read(8, 'unknown', ALICE, '2026-06-03T00:00:00.000Z'),
    ];
    const live = open();
    for (const e of log) await live.apply([e]);
    const page = await live.notices(ALICE);
    expect(page.notices.map((n) => [n.noticeId, n.readAt])).toEqual([['n4', null], ['n3', '2026-06-02T00:00:00.000Z'], ['n0', null]]);
    expect(page.unread).toBe(2);
    // unread counts every notice, not only the page's.
    expect((await live.notices(ALICE, { limit: 1 })).unread).toBe(2);
    expect(await live.notices(BOB)).toMatchObject({ unread: 1, notices: [{ noticeId: 'n2', readAt: null }] });
    expect(await live.notice(ALICE, 'n3')).toMatchObject({ noticeId: 'n3', readAt: '2026-06-02T00:00:00.000Z' });
    expect(await live.notice(BOB, 'n3')).toBeUndefined();
    expect(await live.notice(ALICE, 'nope')).toBeUndefined();
    // I8: rebuilt at once, the same rows and digest.
    const rebuilt = open();
    await rebuilt.apply(log);
    expect(await rebuilt.digest()).toEqual(await live.digest());
    for (const subject of [ALICE, BOB]) expect(await rebuilt.notices(subject)).toEqual(await live.notices(subject));
    await Promise.all([live.close(), rebuilt.close()]);
  });

  test('a file of the layout before read state (no read_at column) is made anew and refilled', async () => {
    const path = join(dir, `inbox-old-${++files}.sqlite`);
    const old = new Database(path);
    old.exec(`CREATE TABLE fold_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO fold_meta VALUES ('layout', 'the notice inbox/2'), ('checkpoint', '4');
      CREATE TABLE notices (position INTEGER PRIMARY KEY, notice_id TEXT NOT NULL UNIQUE, serial TEXT NOT NULL, subject_id TEXT NOT NULL, agency_id TEXT NOT NULL, schema_version INTEGER NOT NULL, sealed TEXT NOT NULL, sent_at TEXT NOT NULL, sent_ms INTEGER NOT NULL);
      CREATE INDEX notices_by_subject ON notices (subject_id, position);`);
    old.close();
    const inbox = new SqliteNoticeInbox({ path, subjectRef: ref });
    expect(await inbox.checkpoint()).toBe(-1);
    await inbox.apply(LOG);
    expect((await inbox.notices(ALICE)).unread).toBe(3);
    await inbox.close();
  });

  test('refuses a hole after its checkpoint (PROJECTION_GAP) and applies nothing of that batch', async () => {
    const inbox = open();
    await inbox.apply(LOG.slice(0, 2));
    await expect(inbox.apply([LOG[3]!])).rejects.toMatchObject({ code: 'PROJECTION_GAP' });
    expect(await inbox.checkpoint()).toBe(1);
    await inbox.close();
  });

  test('sealed notices (I10): the row keeps the event\'s sealed section and a keyed reference, never the subject or the text; an erasure forgets them', async () => {
    const keys = parseSealingKeys(generateSealingKeysFile(new Date()));
    const ring = new InMemoryKeyring(keys);
    const sealer = new EventSealer(keys, ring);
    const sealedNotice = (position: number, subjectId: string): RecordedEvent => {
      const stored = sealer.seal(`notice-n${position}`, { type: 'NoticeSent', data: { noticeId: `n${position}`, subjectId, agencyId: 'muroran-city', title: `お知らせ ${position}`, body: '本文', sentAt: `2026-06-01T00:00:0${position}.000Z` } });
      return { ...event(position, 'NoticeSent', stored.data), schemaVersion: stored.schemaVersion!, streamId: `notice-n${position}` };
    };
    const inbox = open(sealer);
    await inbox.apply([sealedNotice(0, ALICE), sealedNotice(1, BOB), sealedNotice(2, ALICE)]);
    const page = await inbox.notices(ALICE);
    expect(page.notices.map((n) => n.noticeId)).toEqual(['n2', 'n0']);
    const opened = sealer.open({ type: 'NoticeSent', schemaVersion: 2, streamId: 'notice-n2', data: { sealed: page.notices[0]!.sealed } });
    expect(opened.event.data).toMatchObject({ title: 'お知らせ 2', body: '本文', subjectId: ALICE });
    const path = (inbox as unknown as { db: Database.Database }).db.name;
    await inbox.close();
    const db = new Database(path, { readonly: true });
    const text = JSON.stringify(db.prepare('SELECT * FROM notices').all());
    db.close();
    for (const secret of [ALICE, BOB, 'お知らせ', '本文']) expect(text).not.toContain(secret);

    const again = open(sealer);
    const log = [sealedNotice(0, ALICE), sealedNotice(1, BOB)];
    const erasure = sealer.seal('keys-shredded', { type: 'KeysShredded', data: { shredId: 's1', scope: 'erasure', subject: ALICE, reason: 'test', shreddedAt: '2026-06-02T00:00:00.000Z' } });
    ring.shredSubject(ALICE);
    sealer.forgetDerived();
    await again.apply([...log, { ...event(2, 'KeysShredded', erasure.data), schemaVersion: 1, streamId: 'keys-shredded' }]);
    // A's notice was shredded before it was folded: skipped; B's stays.
    expect((await again.notices(ALICE)).notices).toEqual([]);
    expect((await again.notices(BOB)).notices.map((n) => n.noticeId)).toEqual(['n1']);
    await again.close();
  });
});
