import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore, type AppendRequest, type AppendResult, type EventStore } from '#ledger';
import type { AgencyId, SubjectId } from '#linkage';
import { SealedEventStore, inMemorySealer } from '#sealing';
import { fanOutNoticeBatch, type FanoutProgress } from '../src/notices/notice-batch.fanout.js';
import { NoticeBatchRecipients } from '../src/notices/notice-batch.store.js';

const AGENCY = 'muroran-city' as AgencyId;
const BATCH = '6a1d0c4e-2b7f-4e19-8d3a-5c0b9e7f1a22';
const subject = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` as SubjectId;
const TEXT = { batchId: BATCH, agencyId: AGENCY, title: '題', body: '本文' };

describe('the notice fan-out, chunk by chunk', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function setUp(people: readonly (SubjectId | null)[]) {
    dir = mkdtempSync(join(tmpdir(), 'notice-fanout-chunks-'));
    const raw = new SqliteEventStore({ path: join(dir, 'ledger.sqlite'), nodeId: 1 });
    const sealer = inMemorySealer();
    const recipients = new NoticeBatchRecipients(join(dir, 'recipients.sqlite'));
    recipients.addList(BATCH, people);
    const base = { recipients, subjectOf: (s: Buffer | string) => s as SubjectId, handle: (v: string) => sealer.handle('notice-batch-recipient', v), now: () => new Date('2026-12-05T01:00:00Z'), prepare: (s: readonly SubjectId[]) => sealer.prepareSubjects(s), chunk: 10, chunksInFlight: 2 };
    return { raw, sealer, recipients, base, close: async () => (recipients.close(), await raw.close()) };
  }

  it('a ledger failure on one append fails the run after the rest of its chunk settled, and the cursor stops before that chunk', async () => {
    const { raw, sealer, recipients, base, close } = await setUp(Array.from({ length: 45 }, (_, i) => subject(i)));
    try {
      // The 23rd append (chunk 20–29) fails as a full disk would; every other append goes through.
      let n = 0;
      const sealed = new SealedEventStore(raw, sealer);
      // The fan-out only appends.
      const failing = {
        append(request: AppendRequest): Promise<AppendResult> {
          if (++n === 23) return Promise.reject(Object.assign(new Error('disk full'), { code: 'WRITE_FAILED' }));
          return sealed.append(request);
        },
      } as Partial<EventStore> as EventStore;
      const progress: FanoutProgress[] = [];
      await expect(fanOutNoticeBatch(TEXT, { ...base, store: failing, onProgress: (p) => progress.push(p) })).rejects.toThrow('disk full');
      expect(recipients.cursor(BATCH)?.next).toBe(20);
      expect(progress.map((p) => p.next)).toEqual([10, 20]);
      // The chunk's other nine appends ended in the log before the run gave up (none left in flight).
      const events = await raw.readAll();
      expect(events.filter((e) => e.type === 'NoticeSent').length).toBeGreaterThanOrEqual(29);
      expect(new Set(events.map((e) => e.streamId)).size).toBe(events.length);
      // A run resumed from the cursor records the rest, nobody twice.
      const again = await fanOutNoticeBatch(TEXT, { ...base, store: new SealedEventStore(raw, sealer) });
      expect(again.next).toBe(45);
      const all = await raw.readAll();
      expect(all).toHaveLength(45);
      expect(new Set(all.map((e) => e.streamId)).size).toBe(45);
      expect(again.delivered + again.recordedBefore).toBe(25);
    } finally {
      await close();
    }
  });

  it('inline: an unknown code and a person erased after the list was taken each end in NoticeUndelivered; the rest in one sealed NoticeSent each', async () => {
    const people = Array.from({ length: 33 }, (_, i) => (i === 4 ? null : subject(i)));
    const { raw, sealer, base, close } = await setUp(people);
    try {
      sealer.keyring.subjectKey(subject(17), true);
      sealer.keyring.shredSubject(subject(17), new Date().toISOString());
      const done = await fanOutNoticeBatch(TEXT, { ...base, store: new SealedEventStore(raw, sealer) });
      expect(done).toMatchObject({ next: 33, total: 33, delivered: 31, failed: 2, recordedBefore: 0 });
      const events = await raw.readAll();
      expect(events).toHaveLength(33);
      expect(new Set(events.map((e) => e.serial)).size).toBe(33);
      expect(events.filter((e) => e.type === 'NoticeUndelivered').map((e) => (e.data as { reason: string }).reason).sort()).toEqual(['SUBJECT_ERASED', 'UNKNOWN_CODE']);
      const sent = events.filter((e) => e.type === 'NoticeSent');
      for (const e of sent) expect(JSON.stringify(e)).not.toContain('00000000-0000-4000-8000-');
      const opened = sent.map((e) => sealer.open(e).event.data as { subjectId: string; title: string });
      expect(new Set(opened.map((d) => d.subjectId)).size).toBe(31);
      expect(opened.every((d) => d.title === '題')).toBe(true);
    } finally {
      await close();
    }
  });
});
