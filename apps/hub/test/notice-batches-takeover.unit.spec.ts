import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore, type RecordedEvent } from '#ledger';
import { batchNoticeId, noticeBatchStarted, noticeBatchStreamId, type AgencyId, type SubjectId } from '#linkage';
import { SealedEventStore, inMemorySealer } from '#sealing';
import { FakeKurrentDb } from '../../../libs/ledger/test/fixtures/fake-kurrentdb.js';
import { fanOutNoticeBatch } from '../src/notices/notice-batch.fanout.js';
import { KurrentRecipientLists, LIST_PAGE_SIZE, sharedListStreamOf, type ListPage } from '../src/notices/notice-batch-shared-lists.js';
import { NoticeBatchRecipients, SqliteNoticeBatches, seqOfBatchNoticeId } from '../src/notices/notice-batch.store.js';

const AGENCY = 'muroran-city' as AgencyId;
const BATCH = '0b7e6f0e-3d0a-4c55-9a4e-2f7a1c9e5b10';
const AT = '2026-12-05T01:00:00.000Z';
const subject = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` as SubjectId;
/** A notice id in the fan-out's layout: keyed prefix (12 hex), the place (12 hex), keyed tail (8 hex). */
const idOf = (seq: number) => batchNoticeId(`a1b2c3d4e5f6${seq.toString(16).padStart(12, '0')}0badf00d`);

describe("the progress projection keeps the log's cursor of each batch", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads the place a notice id carries', () => {
    expect(seqOfBatchNoticeId(idOf(0))).toBe(0);
    expect(seqOfBatchNoticeId(idOf(1_234_567))).toBe(1_234_567);
    expect(seqOfBatchNoticeId('not-a-notice-id')).toBeUndefined();
  });

  it('moves past a place only once every place below it is recorded (places recorded out of order wait)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'notice-progress-'));
    const fold = new SqliteNoticeBatches({ path: join(dir, 'notice-batches.sqlite') });
    try {
      let position = 0;
      const ev = (type: string, data: Record<string, unknown>, schemaVersion = 1): RecordedEvent => ({ type, data, schemaVersion, position: position++, serial: `s${position}`, streamId: `x-${position}` }) as unknown as RecordedEvent;
      await fold.apply([ev('NoticeBatchStarted', { batchId: BATCH, agencyId: AGENCY, audience: 'codes', total: 7, startedAt: AT })]);
      const logged: number[] = [];
      for (const seq of [0, 2, 3, 1, 6, 4, 5]) {
        const event = seq === 6 ? ev('NoticeUndelivered', { noticeId: idOf(seq), batchId: BATCH, agencyId: AGENCY, reason: 'UNKNOWN_CODE', failedAt: AT }) : ev('NoticeSent', { noticeId: idOf(seq), agencyId: AGENCY, sentAt: AT, batchId: BATCH }, 3);
        await fold.apply([event]);
        logged.push(fold.batch(BATCH)!.logged);
      }
      expect(logged).toEqual([1, 1, 1, 4, 4, 5, 7]);
      expect(fold.batch(BATCH)).toMatchObject({ delivered: 6, failed: 1, total: 7, logged: 7 });
      // Another batch's notices, and a single notice (v2), move nothing of this one.
      await fold.apply([ev('NoticeSent', { noticeId: idOf(7), agencyId: AGENCY, sentAt: AT }, 2)]);
      expect(fold.batch(BATCH)!.logged).toBe(7);
    } finally {
      await fold.close();
    }
  });

  it("the fan-out's notice ids carry the places the projection reads: a run cut short, folded, gives a cursor no further than what is recorded; a second hub resumes there and records each remaining person once", async () => {
    dir = mkdtempSync(join(tmpdir(), 'notice-takeover-'));
    const raw = new SqliteEventStore({ path: join(dir, 'ledger.sqlite'), nodeId: 1 });
    const sealer = inMemorySealer();
    const store = new SealedEventStore(raw, sealer);
    const first = new NoticeBatchRecipients(join(dir, 'first.sqlite'));
    const second = new NoticeBatchRecipients(join(dir, 'second.sqlite'));
    const fold = new SqliteNoticeBatches({ path: join(dir, 'notice-batches.sqlite') });
    try {
      const people = Array.from({ length: 83 }, (_, i) => (i === 41 ? null : subject(i)));
      await store.append({ streamId: noticeBatchStreamId(BATCH), expectedRevision: 'no_stream', events: [noticeBatchStarted({ batchId: BATCH, agencyId: AGENCY, audience: 'codes', total: people.length, title: '題', body: '本文', startedAt: AT })], serial: { allocate: true }, metadata: { actor: `agency:${AGENCY}`, correlationId: 'test' } });
      first.addList(BATCH, people);
      const options = { store, subjectOf: (s: Buffer | string) => s as SubjectId, handle: (v: string) => sealer.handle('notice-batch-recipient', v), now: () => new Date(AT), chunk: 10, chunksInFlight: 3 };
      const abort = new AbortController();
      const cut = await fanOutNoticeBatch({ batchId: BATCH, agencyId: AGENCY, title: '題', body: '本文' }, { ...options, recipients: first, signal: abort.signal, onProgress: (p) => p.next >= 30 && abort.abort() });
      expect(cut.next).toBeLessThan(people.length);
      await fold.apply(await raw.readAll());
      const row = fold.batch(BATCH)!;
      // Every place below the log's cursor is recorded, and it is at least as far as the first hub's own cursor.
      expect(row.logged).toBeGreaterThanOrEqual(cut.next);
      expect(row.logged).toBe(row.delivered + row.failed);
      const places = (await raw.readAll()).filter((e) => e.streamId.startsWith('notice-') && !e.streamId.startsWith('notice-batch-')).map((e) => seqOfBatchNoticeId((e.data as { noticeId: string }).noticeId)!);
      expect([...places].sort((x, y) => x - y)).toEqual(Array.from({ length: places.length }, (_, i) => i));

      // The second hub: the list (from elsewhere) and the log's cursor, nothing of the first hub's file.
      second.importPage(BATCH, 0, people);
      second.completeImport(BATCH, row.logged, people.length);
      const rest = await fanOutNoticeBatch({ batchId: BATCH, agencyId: AGENCY, title: '題', body: '本文' }, { ...options, recipients: second });
      expect(rest).toMatchObject({ next: people.length, total: people.length, recordedBefore: 0 });
      await fold.apply(await raw.readAll());
      expect(fold.batch(BATCH)).toMatchObject({ delivered: 82, failed: 1, logged: 83 });
      const events = (await raw.readAll()).filter((e) => e.type === 'NoticeSent' || e.type === 'NoticeUndelivered');
      expect(events).toHaveLength(83);
      expect(new Set(events.map((e) => e.streamId)).size).toBe(83);
    } finally {
      first.close();
      second.close();
      await fold.close();
      await raw.close();
    }
  });
});

describe('the shared recipient lists (a stream beside the KurrentDB log)', () => {
  const key = Buffer.alloc(32, 7);

  it('give back the list as it was filed, page by page; hold nothing readable; are gone once dropped', async () => {
    const db = new FakeKurrentDb();
    const lists = new KurrentRecipientLists(db, 'ledger', key);
    const total = 2 * LIST_PAGE_SIZE + 123;
    const at = (i: number): SubjectId | null => (i % 97 === 0 ? null : i === 5 ? ('a-subject-id-of-another-shape' as SubjectId) : subject(i));
    function* pages() {
      for (let from = 0; from < total; from += 1000) yield Array.from({ length: Math.min(1000, total - from) }, (_, k) => at(from + k));
    }
    await lists.put(BATCH, total, pages());
    const stream = sharedListStreamOf('ledger', BATCH);
    const stored: Buffer[] = [];
    for await (const e of db.readStream(stream, { fromRevision: 0n, maxCount: 100n })) stored.push(Buffer.from(e.event!.data as Uint8Array));
    expect(stored).toHaveLength(4);
    const text = Buffer.concat(stored).toString('latin1');
    for (const i of [1, 2, 1000, 40_000]) expect(text.includes(Buffer.from(subject(i).replaceAll('-', ''), 'hex').toString('latin1'))).toBe(false);
    expect(text.includes('a-subject-id-of-another-shape')).toBe(false);

    const read = (await lists.read(BATCH))!;
    expect(read.total).toBe(total);
    const back: (SubjectId | null)[] = [];
    const froms: number[] = [];
    for await (const page of read.pages as AsyncIterable<ListPage>) {
      froms.push(page.from);
      back.push(...page.subjects);
    }
    expect(froms).toEqual([0, LIST_PAGE_SIZE, 2 * LIST_PAGE_SIZE]);
    expect(back).toEqual(Array.from({ length: total }, (_, i) => at(i)));

    // Another hub's key (not the shared one) opens nothing.
    const other = await new KurrentRecipientLists(db, 'ledger', Buffer.alloc(32, 8)).read(BATCH);
    await expect((async () => {
      for await (const page of other!.pages) void page;
    })()).rejects.toThrow();

    await lists.drop(BATCH);
    expect(await lists.read(BATCH)).toBeUndefined();
    await lists.drop(BATCH);
    expect(await lists.read('0b7e6f0e-0000-4c55-9a4e-2f7a1c9e5b10')).toBeUndefined();
  });

  it('a list cut short (no end event: the accepting hub died while filing it) reads as none, and a count that does not add up is refused', async () => {
    const db = new FakeKurrentDb();
    const lists = new KurrentRecipientLists(db, 'ledger', key);
    await expect(lists.put(BATCH, 10, [[subject(1), subject(2)]])).rejects.toThrow(/gave 2 recipients, not 10/);
    expect(await lists.read(BATCH)).toBeUndefined();
  });
});
