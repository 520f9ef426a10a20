import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Database from 'better-sqlite3';
import { EventSealer, SqliteKeyring, generateSealingKeysFile, parseSealingKeys } from '#sealing';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'keyring-'));
  dirs.push(d);
  return d;
}
const keys = parseSealingKeys(generateSealingKeysFile(new Date()));
const subject = '5b0c1c8e-9a43-4d0e-8f65-0c3f2a1b9d77';

/** Every byte of the key ring's files (database, WAL), as one buffer. */
function filesOf(d: string): Buffer {
  return Buffer.concat(readdirSync(d).map((f) => readFileSync(join(d, f))));
}

describe('SqliteKeyring', () => {
  it('keeps a key made with create across a reopen, and finds it by its id', () => {
    const d = dir();
    const ring = new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys });
    const made = ring.subjectKey(subject, true);
    if (made === undefined || made === 'shredded') throw new Error('no key made');
    expect(ring.subjectKey(subject, true)).toEqual(made);
    ring.close();
    const again = new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys });
    expect(again.subjectKey(subject, false)).toEqual(made);
    expect(again.keyById(made.kid)).toEqual(made.key);
    expect(again.subjectKey('0f6a2d55-1c2b-4e7a-9b1d-3a4c5e6f7a8b', false)).toBeUndefined();
    again.close();
  });

  it('keysById answers what keyById answers for each id, over more ids than one query takes, from a reopened ring', () => {
    const d = dir();
    const ring = new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys, cacheSize: 100 });
    const subjects = Array.from({ length: 1203 }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
    const made = subjects.map((s) => ring.subjectKey(s, true) as { kid: Buffer; key: Buffer });
    ring.shredSubject(subjects[7]!, new Date().toISOString());
    ring.close();
    const again = new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys, cacheSize: 100 });
    const unknown = Buffer.alloc(16, 0xab);
    // Repeated ids, a shredded one and an unknown one, in an order that is not the file's.
    const kids = [...made.map((m) => m.kid).reverse(), made[3]!.kid, unknown, made[3]!.kid];
    const many = again.keysById(kids);
    expect(many).toHaveLength(kids.length);
    expect(many[made.length - 1 - 7]).toBe('shredded');
    expect(many[kids.length - 2]).toBeUndefined();
    expect(many[kids.length - 1]).toEqual(made[3]!.key);
    const fresh = new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys, cacheSize: 100 });
    expect(many).toEqual(kids.map((k) => fresh.keyById(k)));
    expect(many.filter((k) => Buffer.isBuffer(k))).toHaveLength(1202 + 2);
    again.close();
    fresh.close();
  });

  it('a sealer prepared for a chunk of people seals from the keys read at once, as it would have sealed without', () => {
    const d = dir();
    const path = join(d, 'keyring.sqlite');
    const ring = new SqliteKeyring({ path, keys });
    const [a, b, c] = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];
    ring.subjectKey(a!, true);
    ring.subjectKey(b!, true);
    ring.shredSubject(b!, new Date().toISOString());
    const sealer = new EventSealer(keys, ring);
    const event = (subjectId: string) => ({ type: 'NoticeSent', schemaVersion: 2, data: { noticeId: '0f6a2d55-1c2b-4e7a-9b1d-3a4c5e6f7a8b', subjectId, agencyId: 'muroran-city', title: 'お知らせ', body: '本文', sentAt: '2026-12-05T00:00:00.000Z' } });
    sealer.prepareSubjects([a!, b!, c!]);
    const one = vi.spyOn(ring, 'keyById');
    const sealed = sealer.seal('notice-1', event(a!));
    expect(one).not.toHaveBeenCalled();
    expect(JSON.stringify(sealed)).not.toContain(a!);
    // The shredded person is still refused; the person with no key yet gets one made by seal itself.
    expect(() => sealer.seal('notice-2', event(b!))).toThrow(/shredded/);
    const made = sealer.seal('notice-3', event(c!));
    // The chunk's keys are the chunk's only: after the next chunk is prepared, a sealing for the first reads the ring again.
    sealer.prepareSubjects([c!]);
    sealer.seal('notice-4', event(a!));
    expect(one).toHaveBeenCalled();
    ring.close();
    const again = new SqliteKeyring({ path, keys });
    const opener = new EventSealer(keys, again);
    const stored = (streamId: string, e: typeof sealed) => ({ type: e.type, schemaVersion: e.schemaVersion ?? 1, streamId, data: e.data });
    expect(opener.open(stored('notice-1', sealed)).event.data).toMatchObject({ subjectId: a, title: 'お知らせ', body: '本文' });
    expect(opener.open(stored('notice-3', made)).event.data).toMatchObject({ subjectId: c });
    again.close();
  });

  it('holds no subject id and no key in the clear', () => {
    const d = dir();
    const ring = new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys });
    const made = ring.subjectKey(subject, true) as { key: Buffer };
    const period = ring.epochKey(2026, true) as Buffer;
    const bytes = filesOf(d);
    expect(bytes.includes(Buffer.from(subject))).toBe(false);
    expect(bytes.includes(made.key)).toBe(false);
    expect(bytes.includes(period)).toBe(false);
    ring.close();
  });

  it('shreds a person: the key is gone from every file, stays gone after a reopen, and is never made anew', () => {
    const d = dir();
    const path = join(d, 'keyring.sqlite');
    const ring = new SqliteKeyring({ path, keys });
    const made = ring.subjectKey(subject, true) as { kid: Buffer; key: Buffer };
    ring.close();
    const db = new Database(path, { readonly: true });
    const wrapped = db.prepare('SELECT wrapped FROM subject_keys WHERE kid = ?').pluck().get(made.kid) as Buffer;
    db.close();
    expect(filesOf(d).includes(wrapped)).toBe(true);
    const again = new SqliteKeyring({ path, keys });
    expect(again.shredSubject(subject, '2026-12-04T00:00:00.000Z')).toBe(true);
    expect(again.shredSubject(subject, '2026-12-04T00:00:00.000Z')).toBe(false);
    expect(again.subjectKey(subject, true)).toBe('shredded');
    expect(again.keyById(made.kid)).toBe('shredded');
    expect(filesOf(d).includes(wrapped)).toBe(false);
    again.close();
    const third = new SqliteKeyring({ path, keys });
    expect(third.subjectKey(subject, true)).toBe('shredded');
    third.close();
    expect(filesOf(d).includes(wrapped)).toBe(false);
  });

  it('shreds the period keys of every year up to one', () => {
    const d = dir();
    const ring = new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys });
    for (const y of [2017, 2018, 2019, 2026]) ring.epochKey(y, true);
    expect(ring.shredEpochsThrough(2018, '2026-12-04T00:00:00.000Z')).toEqual([2017, 2018]);
    expect(ring.shredEpochsThrough(2018, '2026-12-04T00:00:00.000Z')).toEqual([]);
    expect(ring.liveEpochs()).toEqual([2019, 2026]);
    expect(ring.epochKey(2018, true)).toBe('shredded');
    ring.close();
  });

  it('refuses a key file of another key set', () => {
    const d = dir();
    new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys }).close();
    const other = parseSealingKeys(generateSealingKeysFile(new Date()));
    expect(() => new SqliteKeyring({ path: join(d, 'keyring.sqlite'), keys: other })).toThrow(/belongs to key set/);
  });

  it('opens without reading the population\'s keys: the shredded people are read through a partial index, which a ring made before it gets at its first writable open', () => {
    const d = dir();
    const path = join(d, 'keyring.sqlite');
    const ring = new SqliteKeyring({ path, keys });
    const subjects = Array.from({ length: 50 }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
    for (const s of subjects) ring.subjectKey(s, true);
    ring.shredSubject(subjects[9]!, new Date().toISOString());
    ring.close();
    const plan = (): string => {
      const db = new Database(path, { readonly: true });
      try {
        return (db.prepare('EXPLAIN QUERY PLAN SELECT kid FROM subject_keys WHERE wrapped IS NULL').all() as { detail: string }[]).map((r) => r.detail).join('; ');
      } finally {
        db.close();
      }
    };
    expect(plan()).toMatch(/USING (COVERING )?INDEX subject_keys_shredded$/);
    // A ring file from before the index: the open reads the whole table until the index is made.
    const old = new Database(path);
    old.exec('DROP INDEX subject_keys_shredded');
    old.close();
    expect(plan()).toBe('SCAN subject_keys');
    const reopened = new SqliteKeyring({ path, keys });
    expect(reopened.isShredded((reopened.subjectKey(subjects[3]!, false) as { kid: Buffer }).kid)).toBe(false);
    expect(reopened.subjectKey(subjects[9]!, false)).toBe('shredded');
    reopened.close();
    expect(plan()).toMatch(/USING (COVERING )?INDEX subject_keys_shredded$/);
  });
});
