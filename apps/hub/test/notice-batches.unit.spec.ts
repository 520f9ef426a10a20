import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '#ledger';
import { batchNoticeSent, checkNoticeBatchAudience, decideNoticeBatchCompleted, noticeBatchStarted, noticeUndelivered, type AgencyId, type SubjectId } from '#linkage';
import { EventSealer, SealWorkers, SealedEventStore, SqliteKeyring, generateSealingKeysFile, inMemorySealer, parseSealingKeys } from '#sealing';
import { BoundedCache } from '../../../libs/sealing/src/keyring.js';
import { fanOutNoticeBatch } from '../src/notices/notice-batch.fanout.js';
import { NoticeBatchRecipients } from '../src/notices/notice-batch.store.js';
import { schemaValidator } from '../../../test/support/json-schema.js';

const SEALED_SECTION = 'schemas/events/sealed-section.v1.json';
const AGENCY = 'muroran-city' as AgencyId;
const BATCH = '0b7e6f0e-3d0a-4c55-9a4e-2f7a1c9e5b10';
const subject = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` as SubjectId;

describe('nationwide notice events: the stored forms match their schemas and hold nothing personal in clear (I10)', () => {
  const sealer = inMemorySealer();
  const at = '2026-12-05T01:00:00.000Z';
  it.each([
    ['notice-batch-started.v1', noticeBatchStarted({ batchId: BATCH, agencyId: AGENCY, audience: 'all', total: 3, title: '題', body: '本文', startedAt: at }), ['題', '本文']],
    ['notice-sent.v3', batchNoticeSent({ noticeId: '11111111-2222-4333-8444-555555555555', subjectId: subject(1), agencyId: AGENCY, title: '題', body: '本文', sentAt: at, batchId: BATCH }), ['題', '本文', subject(1)]],
    ['notice-undelivered.v1', noticeUndelivered({ noticeId: '11111111-2222-4333-8444-555555555555', batchId: BATCH, agencyId: AGENCY, reason: 'UNKNOWN_CODE', failedAt: at }), []],
    ['notice-batch-completed.v1', decideNoticeBatchCompleted({ total: 3, delivered: 2, failed: 1 }, { batchId: BATCH, agencyId: AGENCY, completedAt: at })!, []],
  ] as const)('%s', (file, event, secrets) => {
    const stored = sealer.seal('notice-x', event);
    const validate = schemaValidator(`schemas/events/${file}.json`, [SEALED_SECTION]);
    expect(validate(stored.data).errors).toBe('No errors');
    expect(stored.schemaVersion).toBe(Number(file.slice(-1)));
    for (const s of secrets) expect(JSON.stringify(stored).includes(s), s).toBe(false);
    expect(sealer.open({ ...stored, schemaVersion: stored.schemaVersion ?? 1, streamId: 'notice-x' }).event.data).toEqual(event.data);
  });

  it('the audience check: one of all / codes, 1–10,000 codes, none repeated', () => {
    expect(checkNoticeBatchAudience({ audience: 'all' })).toBeUndefined();
    expect(checkNoticeBatchAudience({ codes: ['a', 'b'] })).toBeUndefined();
    expect(checkNoticeBatchAudience({})?.detail).toContain('give the recipients');
    expect(checkNoticeBatchAudience({ audience: 'all', codes: ['a'] })?.detail).toContain('not both');
    expect(checkNoticeBatchAudience({ codes: [] })?.detail).toContain('at least one');
    expect(checkNoticeBatchAudience({ codes: Array.from({ length: 10_001 }, (_, i) => String(i)) })?.detail).toContain('at most 10000');
    expect(checkNoticeBatchAudience({ codes: ['a', 'b', 'a'] })?.detail).toBe('codes[2] repeats codes[0]: each person is listed once');
    expect(decideNoticeBatchCompleted({ total: 3, delivered: 1, failed: 1 }, { batchId: BATCH, agencyId: AGENCY, completedAt: at })).toBeUndefined();
  });
});

describe('the fan-out resumes from its cursor and records nobody twice', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('a run repeated over recipients already recorded (a cursor behind the log, as after a crash) appends nothing for them', async () => {
    dir = mkdtempSync(join(tmpdir(), 'notice-fanout-'));
    const raw = new SqliteEventStore({ path: join(dir, 'ledger.sqlite'), nodeId: 1 });
    const sealer = inMemorySealer();
    const store = new SealedEventStore(raw, sealer);
    const recipients = new NoticeBatchRecipients(join(dir, 'recipients.sqlite'));
    try {
      const people = Array.from({ length: 57 }, (_, i) => (i === 13 ? null : subject(i)));
      recipients.addList(BATCH, people);
      const options = { store, recipients, subjectOf: (s: Buffer | string) => s as SubjectId, handle: (v: string) => sealer.handle('notice-batch-recipient', v), now: () => new Date('2026-12-05T01:00:00Z'), chunk: 10, chunksInFlight: 2 };
      // The first run stops after the cursor reached 30 (as a kill would).
      const abort = new AbortController();
      const first = await fanOutNoticeBatch({ batchId: BATCH, agencyId: AGENCY, title: '題', body: '本文' }, { ...options, signal: abort.signal, onProgress: (p) => p.next >= 30 && abort.abort() });
      expect(first.next).toBeGreaterThanOrEqual(30);
      expect(first.next).toBeLessThan(57);
      const recordedFirst = await raw.head();
      // The crash lost the last cursor moves: the next run starts 20 recipients behind what the log holds.
      const db = (await import('better-sqlite3')).default(join(dir, 'recipients.sqlite'));
      db.prepare('UPDATE cursors SET next_seq = ? WHERE batch_id = ?').run(first.next - 20, BATCH);
      db.close();
      const second = await fanOutNoticeBatch({ batchId: BATCH, agencyId: AGENCY, title: '題', body: '本文' }, options);
      expect(second).toMatchObject({ next: 57, total: 57, recordedBefore: 20 });
      expect(first.delivered + first.failed + second.delivered + second.failed).toBe(57);
      const events = await raw.readAll();
      expect(events).toHaveLength(57);
      expect(recordedFirst).toBeLessThan(57);
      expect(new Set(events.map((e) => e.streamId)).size).toBe(57);
      expect(new Set(events.map((e) => e.serial)).size).toBe(57);
      expect(events.filter((e) => e.type === 'NoticeUndelivered').map((e) => (e.data as { reason: string }).reason)).toEqual(['UNKNOWN_CODE']);
      expect(events.filter((e) => e.type === 'NoticeSent')).toHaveLength(56);
    } finally {
      recipients.close();
      await raw.close();
    }
  });
});

describe('the fan-out with sealing in worker threads', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('records what the inline fan-out records: one sealed NoticeSent per person that opens to the batch text, an erased person SUBJECT_ERASED, nobody twice after a resume', async () => {
    dir = mkdtempSync(join(tmpdir(), 'notice-fanout-workers-'));
    const keys = parseSealingKeys(generateSealingKeysFile(new Date()));
    const ring = new SqliteKeyring({ path: join(dir, 'keyring.sqlite'), keys });
    const sealer = new EventSealer(keys, ring);
    const raw = new SqliteEventStore({ path: join(dir, 'ledger.sqlite'), nodeId: 1 });
    const store = new SealedEventStore(raw, sealer);
    const recipients = new NoticeBatchRecipients(join(dir, 'recipients.sqlite'));
    const workers = new SealWorkers({ keys, keyringPath: join(dir, 'keyring.sqlite'), threads: 2, sealer });
    try {
      const people = Array.from({ length: 57 }, (_, i) => (i === 13 ? null : subject(i)));
      ring.ensureSubjectKeys(people.filter((p): p is SubjectId => p !== null).slice(0, 40));
      ring.shredSubject(subject(21), new Date().toISOString());
      recipients.addList(BATCH, people);
      const options = { store, recipients, subjectOf: (s: Buffer | string) => s as SubjectId, handle: (v: string) => sealer.handle('notice-batch-recipient', v), now: () => new Date('2026-12-05T01:00:00Z'), chunk: 10, chunksInFlight: 3, workers: { seal: (r: Parameters<SealWorkers['seal']>[0]) => workers.seal(r), raw } };
      const abort = new AbortController();
      const first = await fanOutNoticeBatch({ batchId: BATCH, agencyId: AGENCY, title: '題', body: '本文' }, { ...options, signal: abort.signal, onProgress: (p) => p.next >= 30 && abort.abort() });
      expect(first.next).toBeGreaterThanOrEqual(30);
      const db = (await import('better-sqlite3')).default(join(dir, 'recipients.sqlite'));
      db.prepare('UPDATE cursors SET next_seq = ? WHERE batch_id = ?').run(first.next - 20, BATCH);
      db.close();
      const second = await fanOutNoticeBatch({ batchId: BATCH, agencyId: AGENCY, title: '題', body: '本文' }, options);
      expect(second).toMatchObject({ next: 57, total: 57, recordedBefore: 20 });
      expect(first.delivered + second.delivered).toBe(55);
      expect(first.failed + second.failed).toBe(2);
      const events = await raw.readAll();
      expect(events).toHaveLength(57);
      expect(new Set(events.map((e) => e.streamId)).size).toBe(57);
      expect(new Set(events.map((e) => e.serial)).size).toBe(57);
      expect(events.filter((e) => e.type === 'NoticeUndelivered').map((e) => (e.data as { reason: string }).reason).sort()).toEqual(['SUBJECT_ERASED', 'UNKNOWN_CODE']);
      const sent = events.filter((e) => e.type === 'NoticeSent');
      expect(sent).toHaveLength(55);
      const opened = sent.map((e) => sealer.open(e));
      expect(opened.every((o) => o.state === 'opened' && o.event.schemaVersion === 3)).toBe(true);
      expect(new Set(opened.map((o) => (o.event.data as { subjectId: string }).subjectId))).toEqual(new Set(people.filter((p, i) => p !== null && i !== 21)));
      for (const o of opened) expect(o.event.data).toMatchObject({ title: '題', body: '本文', batchId: BATCH, agencyId: AGENCY });
      const validate = schemaValidator('schemas/events/notice-sent.v3.json', [SEALED_SECTION]);
      for (const e of sent) expect(validate(e.data).errors).toBe('No errors');
      for (const e of sent) expect(JSON.stringify(e.data).includes('本文')).toBe(false);
    } finally {
      await workers.close();
      recipients.close();
      await raw.close();
      ring.close();
    }
  });
});

describe("the sealer's bounded caches over a population larger than they hold (a fan-out to a million people)", () => {
  it('never hold more than their bound, keep the newest entries, and stay cheap per insert once full', () => {
    const cache = new BoundedCache<string, number>(1000);
    for (let i = 0; i < 10_000; i++) cache.set(`k${i}`, i);
    let held = 0;
    for (let i = 0; i < 10_000; i++) if (cache.get(`k${i}`) !== undefined) held += 1;
    expect(held).toBeLessThanOrEqual(1000);
    expect(held).toBeGreaterThanOrEqual(875);
    for (let i = 9_000; i < 10_000; i++) if (i >= 9_875) expect(cache.get(`k${i}`)).toBe(i);
    // Evicting one entry per insert walked V8's holes left by earlier deletions: ≈ 200 µs per insert at 100,000.
    const big = new BoundedCache<string, number>(100_000);
    const started = performance.now();
    for (let i = 0; i < 400_000; i++) big.set(`k${i}`, i);
    expect((performance.now() - started) / 400_000).toBeLessThan(0.02);
  });
});
