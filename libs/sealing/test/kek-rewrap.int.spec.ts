import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  KurrentKeyring,
  SqliteKeyring,
  currentKekId,
  generateSealingKekFile,
  generateSealingKeysFile,
  heldKekIds,
  personKid,
  readSealingKeys,
  retireSealingKeks,
  sealingKekFileName,
  wrapKey,
  writeSecretFileExclusive,
  type KurrentKeyClient,
  type SealingKeys,
} from '#sealing';
import { announceKurrentServer, startKurrentTestServer } from '../../ledger/test/fixtures/kurrentdb-test-server.js';

announceKurrentServer('KEK re-wrap tests');

const dirs: string[] = [];
const disposers: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const d of disposers) await d();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** A keys dir with a sealing key file (0600). */
function keysDir(): { dir: string; path: string; keys: SealingKeys } {
  const dir = tmp('kek-keys-');
  const path = join(dir, 'sealing.key.json');
  writeSecretFileExclusive(path, generateSealingKeysFile(new Date('2026-12-01T00:00:00Z')));
  return { dir, path, keys: readSealingKeys(path) };
}

/** Stores a new KEK beside the key file and answers the key set with it as the current KEK. */
function rotateFile(dir: string, path: string, keys: SealingKeys, at: string): SealingKeys {
  const made = generateSealingKekFile(keys.kid, new Date(at));
  writeSecretFileExclusive(join(dir, sealingKekFileName(made.kid)), made.file);
  const next = readSealingKeys(path);
  expect(currentKekId(next)).toBe(made.kid);
  return next;
}

function rewrapAll(ring: SqliteKeyring): { personKeys: number; periodKeys: number } {
  let after: Buffer | undefined;
  let personKeys = 0;
  let periodKeys = 0;
  let first = true;
  do {
    const page = ring.rewrapPage(after, 2, { epochs: first });
    first = false;
    personKeys += page.personKeys;
    periodKeys += page.periodKeys;
    after = page.last;
  } while (after !== undefined);
  return { personKeys, periodKeys };
}

describe('the SQLite key ring under a KEK rotation', () => {
  it('a ring file of before the kek column opens read-only and gains the column at its first writable open, its rows under the first KEK', () => {
    const { keys } = keysDir();
    const dir = tmp('kek-legacy-');
    const path = join(dir, 'keyring.sqlite');
    const db = new Database(path);
    db.exec(`CREATE TABLE keyring_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE subject_keys (kid BLOB PRIMARY KEY, wrapped BLOB, created_at TEXT NOT NULL, shredded_at TEXT) WITHOUT ROWID;
      CREATE TABLE epoch_keys (epoch INTEGER PRIMARY KEY, wrapped BLOB, created_at TEXT NOT NULL, shredded_at TEXT);`);
    db.prepare(`INSERT INTO keyring_meta VALUES ('layout', 'linkage-ledger/keyring/2'), ('keyset', ?)`).run(keys.kid);
    const kid = personKid(keys, 'subject-legacy');
    const key = Buffer.alloc(32, 7);
    db.prepare('INSERT INTO subject_keys (kid, wrapped, created_at) VALUES (?, ?, ?)').run(kid, wrapKey(keys, `subject|${kid.toString('hex')}`, key), '2026-01-01T00:00:00Z');
    db.close();
    const readonly = new SqliteKeyring({ path, keys, readonly: true });
    expect(readonly.keyById(kid)).toEqual(key);
    readonly.close();
    const writable = new SqliteKeyring({ path, keys });
    expect(writable.keyById(kid)).toEqual(key);
    expect(writable.wrapCounts()).toEqual({ personKeys: { [keys.kid]: 1 }, periodKeys: {} });
    writable.close();
  });

  it('re-wraps every live key under the new KEK (the same keys, shredded ones left shredded), retires the old KEK, and a key set without the new KEK opens nothing', () => {
    const { dir, path, keys } = keysDir();
    const ringPath = join(tmp('kek-ring-'), 'keyring.sqlite');
    const ring = new SqliteKeyring({ path: ringPath, keys });
    const people = Array.from({ length: 7 }, (_, i) => `subject-${i}`);
    const before = new Map(people.map((p) => [p, (ring.subjectKey(p, true) as { key: Buffer }).key]));
    const year = ring.epochKey(2026, true) as Buffer;
    ring.shredSubject('subject-3', '2026-12-02T00:00:00Z');
    const original = readFileSync(path, 'utf8');

    const next = rotateFile(dir, path, keys, '2026-12-03T00:00:00Z');
    ring.useKeys(next);
    // A key made now is wrapped under the new KEK at once.
    const late = (ring.subjectKey('subject-late', true) as { key: Buffer }).key;
    expect(ring.wrapCounts().personKeys).toEqual({ [keys.kid]: 6, [next.kekId!]: 1 });
    expect(rewrapAll(ring)).toEqual({ personKeys: 6, periodKeys: 1 });
    expect(ring.wrapCounts()).toEqual({ personKeys: { [next.kekId!]: 7 }, periodKeys: { [next.kekId!]: 1 } });
    ring.forgetOldWraps();
    // Nothing left to do on a rerun.
    expect(rewrapAll(ring)).toEqual({ personKeys: 0, periodKeys: 0 });
    ring.close();

    // The old KEK retired from the key file; the ring opens with the new one alone, every key the same.
    expect(retireSealingKeks(path, [keys.kid])).toEqual([keys.kid]);
    const after = readSealingKeys(path);
    expect(heldKekIds(after)).toEqual([next.kekId]);
    const reopened = new SqliteKeyring({ path: ringPath, keys: after, readonly: true });
    for (const p of people) {
      const found = reopened.subjectKey(p, false);
      if (p === 'subject-3') expect(found).toBe('shredded');
      else expect((found as { key: Buffer }).key).toEqual(before.get(p));
    }
    expect((reopened.subjectKey('subject-late', false) as { key: Buffer }).key).toEqual(late);
    expect(reopened.epochKey(2026, false)).toEqual(year);
    reopened.close();

    // The key file as it was before (the first KEK only) opens nothing of the re-wrapped ring.
    const oldDir = tmp('kek-old-');
    writeFileSync(join(oldDir, 'sealing.key.json'), original, { mode: 0o600 });
    const stale = new SqliteKeyring({ path: ringPath, keys: readSealingKeys(join(oldDir, 'sealing.key.json')), readonly: true });
    expect(() => stale.subjectKey('subject-0', false)).toThrow(expect.objectContaining({ code: 'INVALID_KEYS' }));
    stale.close();
  });

  it('a re-wrap of another key than the row holds is refused', () => {
    const { dir, path, keys } = keysDir();
    const ring = new SqliteKeyring({ path: join(tmp('kek-ring-'), 'keyring.sqlite'), keys });
    const kid = (ring.subjectKey('subject-x', true) as { kid: Buffer }).kid;
    const next = rotateFile(dir, path, keys, '2026-12-03T00:00:00Z');
    ring.useKeys(next);
    const forged = wrapKey(next, `subject|${kid.toString('hex')}`, Buffer.alloc(32, 1));
    expect(() => ring.replaceWrapped(kid, forged, next.kekId!)).toThrow(expect.objectContaining({ code: 'INVALID_KEYS' }));
    ring.close();
  });
});

describe('the shared key ring (KurrentDB) under a KEK rotation', () => {
  it('a hub that was down while the leader re-wrapped and retired the old KEK reads its keys again from KurrentDB, under the new KEK', async () => {
    const started = await startKurrentTestServer();
    disposers.push(() => started.dispose());
    const client = started.connect() as unknown as KurrentKeyClient;
    const logStream = `kek-${Date.now()}`;
    const { dir, path, keys } = keysDir();
    const dirB = tmp('kek-b-');
    // The standby's own keys dir: a copy of the shared one as it was then (its file still holds the first KEK).
    copyFileSync(path, join(dirB, 'sealing.key.json'));
    const a = new KurrentKeyring({ client, local: new SqliteKeyring({ path: join(tmp('kek-a-'), 'keyring.sqlite'), keys }), keys, logStream });
    let b = new KurrentKeyring({ client, local: new SqliteKeyring({ path: join(dirB, 'keyring.sqlite'), keys, unknownKekIsMissing: true }), keys, logStream });
    const people = ['p-1', 'p-2', 'p-3'];
    await a.prepareSeal(people, [2026]);
    await b.follow();
    const kids = people.map((p) => personKid(keys, p));
    const before = kids.map((k) => b.keyById(k) as Buffer);
    expect(before.every((k) => Buffer.isBuffer(k))).toBe(true);
    b.close();

    // The leader rotates while b is down: new KEK, every key re-wrapped in KurrentDB and in its copy, the old KEK retired.
    const next = rotateFile(dir, path, keys, '2026-12-03T00:00:00Z');
    a.useKeys(next);
    await a.follow();
    let after: Buffer | undefined;
    let first = true;
    let rewrapped = 0;
    do {
      const page = await a.rewrapPage(after, 2, { epochs: first });
      first = false;
      rewrapped += page.personKeys + page.periodKeys;
      after = page.last;
    } while (after !== undefined);
    expect(rewrapped).toBe(4);
    retireSealingKeks(path, [keys.kid]);
    a.close();

    // b comes back with the keys dir as it is now (the new KEK only) and its old copy (rows under the retired KEK).
    copyFileSync(path, join(dirB, 'sealing.key.json'));
    copyFileSync(join(dir, sealingKekFileName(next.kekId!)), join(dirB, sealingKekFileName(next.kekId!)));
    const keysB = readSealingKeys(join(dirB, 'sealing.key.json'));
    expect(heldKekIds(keysB)).toEqual([next.kekId]);
    b = new KurrentKeyring({ client, local: new SqliteKeyring({ path: join(dirB, 'keyring.sqlite'), keys: keysB, unknownKekIsMissing: true }), keys: keysB, logStream });
    // A row under the retired KEK answers "not here", and is read again from KurrentDB (its last event: the re-wrap).
    expect(b.local.keyById(kids[0]!)).toBeUndefined();
    await b.prepareOpen(kids, [2026]);
    expect(kids.map((k) => b.keyById(k))).toEqual(before);
    // Following from where it stopped replaces the rest: no wrap under the retired KEK is left in its copy.
    await b.follow();
    expect(b.local.wrapCounts()).toEqual({ personKeys: { [next.kekId!]: 3 }, periodKeys: { [next.kekId!]: 1 } });
    b.close();
  });
});
