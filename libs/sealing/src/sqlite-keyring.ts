import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { SealingError } from './errors.js';
import { BoundedCache, holdsKek, personKid, unwrapKey, wrapKey, type Keyring, type RingKey } from './keyring.js';
import { currentKekId, type SealingKeys } from './keys.js';

/** The key ring's file in the hub's data directory, beside the ledger. */
export const KEYRING_FILE = 'keyring.sqlite';
const LAYOUT = 'linkage-ledger/keyring/2';
/**
 * Unwrapped keys kept in memory by default (≈ 1 KiB of heap each with their ids and small Buffers, 2–3 KiB
 * of RSS): the people a busy hub serves again within a short while, not the population. A key not cached
 * costs one indexed read and one unwrap (≈ 10 µs).
 */
export const KEYRING_CACHE_KEYS = 4_096;
/**
 * The key ring file's page cache by default: the B-tree's upper levels (a 10,000,000-person ring's
 * interior pages take a few MB); the leaves are read from the operating system's file cache.
 */
export const KEYRING_PAGE_CACHE_KIB = 8 * 1024;

/** Key ids per query of `keysById` (below SQLite's limit on bound parameters). */
const KEYS_PER_READ = 500;

const DDL = `
CREATE TABLE IF NOT EXISTS keyring_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subject_keys (kid BLOB PRIMARY KEY, wrapped BLOB, created_at TEXT NOT NULL, shredded_at TEXT, kek TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epoch_keys (epoch INTEGER PRIMARY KEY, wrapped BLOB, created_at TEXT NOT NULL, shredded_at TEXT, kek TEXT);
CREATE INDEX IF NOT EXISTS subject_keys_shredded ON subject_keys (kid) WHERE wrapped IS NULL;
`;
/**
 * Each wrapped key names the key-encryption key it is wrapped under (`kek`; NULL: the key set's first KEK,
 * the only one before rotation). A ring file made before the column existed gains it at its first
 * writable open (NULL for every row: exactly what they are).
 */
const KEK_COLUMN = 'kek';

/** Rows re-wrapped per transaction by `rewrapPage` (one fsync each; a crash loses at most the batch in progress, which a rerun redoes). */
export const REWRAP_BATCH = 500;

/** What a key ring holds under each key-encryption key: live (not shredded) wraps, by KEK id. */
export interface WrapCounts {
  readonly personKeys: Readonly<Record<string, number>>;
  readonly periodKeys: Readonly<Record<string, number>>;
}

export interface SqliteKeyringOptions {
  readonly path: string;
  readonly keys: SealingKeys;
  /** Opened without writing (a supervisory auditor's copy): `create` is refused. */
  readonly readonly?: boolean;
  /**
   * A wrap under a key-encryption key the key set does not hold answers "not here" instead of failing
   * (a shared ring's local copy: the key is fetched again from the shared store, re-wrapped there).
   */
  readonly unknownKekIsMissing?: boolean;
  /** Unwrapped keys kept in memory; the ring itself is on disk (I11). Default KEYRING_CACHE_KEYS. */
  readonly cacheSize?: number;
  /** SQLite's page cache of the file (KiB). Default KEYRING_PAGE_CACHE_KIB. */
  readonly pageCacheKiB?: number;
  readonly now?: () => Date;
}

/**
 * The key ring in its own SQLite file (WAL, synchronous=FULL: a key is durable before it is used).
 * Rows hold no subject id (a row is named by the person's key id, a keyed digest) and no key in the clear
 * (each is wrapped under the key-encryption key). Shredding clears the wrapped key with `secure_delete`
 * on and truncates the WAL, so the bytes are gone from the file; the row stays as a tombstone, so an
 * erased person is never keyed anew. Tombstones and shredded years are held in memory: they are as
 * many as erasures and years, not as people.
 */
export class SqliteKeyring implements Keyring {
  readonly #db: Database.Database;
  #keys: SealingKeys;
  readonly #readonly: boolean;
  readonly #unknownKekIsMissing: boolean;
  readonly #now: () => Date;
  readonly #byKid: BoundedCache<string, Buffer | 'shredded'>;
  readonly #epochs = new Map<number, Buffer | 'shredded'>();
  readonly #tombstones = new Set<string>();
  readonly #shreddedEpochs = new Set<number>();
  readonly #stmt;

  constructor(options: SqliteKeyringOptions) {
    this.#keys = options.keys;
    this.#readonly = options.readonly === true;
    this.#unknownKekIsMissing = options.unknownKekIsMissing === true;
    this.#now = options.now ?? (() => new Date());
    const size = options.cacheSize ?? KEYRING_CACHE_KEYS;
    const pageCacheKiB = options.pageCacheKiB ?? KEYRING_PAGE_CACHE_KIB;
    if (!Number.isSafeInteger(pageCacheKiB) || pageCacheKiB < 64) throw new SealingError('INVALID_KEYS', `the key ring's page cache must be an integer number of KiB, at least 64, got ${pageCacheKiB}`);
    this.#byKid = new BoundedCache(size);
    this.#db = new Database(options.path, this.#readonly ? { readonly: true, fileMustExist: true } : {});
    try {
      this.#db.pragma('busy_timeout = 5000');
      if (!this.#readonly) {
        this.#db.pragma('journal_mode = WAL');
        this.#db.pragma('synchronous = FULL');
        this.#db.pragma('secure_delete = ON');
        // The index's upper levels in memory; bounded, so that memory does not grow with the population (I11).
        this.#db.pragma(`cache_size = -${pageCacheKiB}`);
        this.#db.exec(DDL);
        for (const table of ['subject_keys', 'epoch_keys']) {
          if (!this.#hasKekColumn(table)) this.#db.exec(`ALTER TABLE ${table} ADD COLUMN ${KEK_COLUMN} TEXT`);
        }
        this.#db.prepare(`INSERT OR IGNORE INTO keyring_meta (key, value) VALUES ('layout', ?), ('keyset', ?)`).run(LAYOUT, options.keys.kid);
      }
      const meta = new Map((this.#db.prepare('SELECT key, value FROM keyring_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
      if (meta.get('layout') !== LAYOUT) throw new SealingError('INVALID_KEYS', `${options.path} is not a key ring of layout ${LAYOUT}`);
      if (meta.get('keyset') !== options.keys.kid) {
        throw new SealingError('INVALID_KEYS', `${options.path} belongs to key set ${meta.get('keyset') ?? '(none)'}, not ${options.keys.kid}: give the sealing key file it was made with`);
      }
    } catch (error) {
      this.#db.close();
      if (error instanceof SealingError) throw error;
      throw new SealingError('INVALID_KEYS', `${options.path} is not a key ring: ${(error as Error).message}`);
    }
    // A read-only copy of a ring file made before the column existed: every row is under the first KEK.
    const kekOf = this.#hasKekColumn('subject_keys') ? KEK_COLUMN : `NULL AS ${KEK_COLUMN}`;
    this.#kekOf = kekOf;
    this.#stmt = {
      byKid: this.#db.prepare(`SELECT wrapped, ${kekOf} FROM subject_keys WHERE kid = ?`),
      epoch: this.#db.prepare(`SELECT wrapped, ${kekOf} FROM epoch_keys WHERE epoch = ?`),
      liveEpochs: this.#db.prepare('SELECT epoch FROM epoch_keys WHERE wrapped IS NOT NULL ORDER BY epoch').pluck(),
      ...(this.#readonly
        ? {}
        : {
            insertSubject: this.#db.prepare('INSERT OR IGNORE INTO subject_keys (kid, wrapped, created_at, kek) VALUES (?, ?, ?, ?)'),
            insertEpoch: this.#db.prepare('INSERT OR IGNORE INTO epoch_keys (epoch, wrapped, created_at, kek) VALUES (?, ?, ?, ?)'),
            rewrapSubject: this.#db.prepare('UPDATE subject_keys SET wrapped = ?, kek = ? WHERE kid = ? AND wrapped IS NOT NULL'),
            rewrapEpoch: this.#db.prepare('UPDATE epoch_keys SET wrapped = ?, kek = ? WHERE epoch = ? AND wrapped IS NOT NULL'),
            shredSubject: this.#db.prepare('UPDATE subject_keys SET wrapped = NULL, shredded_at = ? WHERE kid = ? AND wrapped IS NOT NULL'),
            shredEpochs: this.#db.prepare('UPDATE epoch_keys SET wrapped = NULL, shredded_at = ? WHERE epoch <= ? AND wrapped IS NOT NULL RETURNING epoch'),
            tombstoneSubject: this.#db.prepare('INSERT INTO subject_keys (kid, wrapped, created_at, shredded_at) VALUES (?, NULL, ?, ?) ON CONFLICT (kid) DO UPDATE SET wrapped = NULL, shredded_at = excluded.shredded_at WHERE wrapped IS NOT NULL'),
            tombstoneEpoch: this.#db.prepare('INSERT INTO epoch_keys (epoch, wrapped, created_at, shredded_at) VALUES (?, NULL, ?, ?) ON CONFLICT (epoch) DO UPDATE SET wrapped = NULL, shredded_at = excluded.shredded_at WHERE wrapped IS NOT NULL'),
            setMeta: this.#db.prepare('INSERT INTO keyring_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
          }),
    };
    // The shredded people only, through the partial index (subject_keys_shredded): the open reads the
    // erasures, not the population's keys (a scan of a 10,000,000-person ring was 5–10 s of every start).
    // A ring made before the index gets it at its first writable open (one scan, once).
    for (const kid of this.#db.prepare('SELECT kid FROM subject_keys WHERE wrapped IS NULL').pluck().all() as Buffer[]) this.#tombstones.add(kid.toString('hex'));
    for (const epoch of this.#db.prepare('SELECT epoch FROM epoch_keys WHERE wrapped IS NULL').pluck().all() as number[]) this.#shreddedEpochs.add(epoch);
  }

  readonly #kekOf: string;

  #hasKekColumn(table: string): boolean {
    return (this.#db.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[]).includes(KEK_COLUMN);
  }

  /** The `kek` column of a wrap made now: NULL for the key set's first KEK (as every row made before rotation). */
  #kekColumn(): string | null {
    const id = currentKekId(this.#keys);
    return id === this.#keys.kid ? null : id;
  }

  /** The key-encryption key id a row names (NULL: the key set's first KEK). */
  #kekIdOf(kek: string | null): string {
    return kek ?? this.#keys.kid;
  }

  /** A row's key, unwrapped; undefined when its KEK is not held and this ring answers that as "not here". */
  #unwrap(what: string, wrapped: Buffer, kek: string | null): Buffer | undefined {
    if (this.#unknownKekIsMissing && !holdsKek(this.#keys, kek)) return undefined;
    return unwrapKey(this.#keys, what, wrapped, kek);
  }

  subjectKey(subjectId: string, create: boolean): RingKey | 'shredded' | undefined {
    const kid = personKid(this.#keys, subjectId);
    let key = this.keyById(kid);
    if (key === undefined && create) {
      if (this.#stmt.insertSubject === undefined) throw new SealingError('INVALID_KEYS', 'this key ring is open read-only: it makes no keys');
      this.#stmt.insertSubject.run(kid, wrapKey(this.#keys, `subject|${kid.toString('hex')}`, randomBytes(32)), this.#now().toISOString(), this.#kekColumn());
      key = this.keyById(kid);
    }
    if (key === undefined || key === 'shredded') return key;
    return { kid, key };
  }

  ensureSubjectKeys(subjectIds: readonly string[]): void {
    const insert = this.#stmt.insertSubject;
    if (insert === undefined) throw new SealingError('INVALID_KEYS', 'this key ring is open read-only: it makes no keys');
    const at = this.#now().toISOString();
    // One transaction: one fsync for the whole batch; existing keys (and tombstones) are left as they are.
    this.#db.transaction(() => {
      for (const subjectId of subjectIds) {
        const kid = personKid(this.#keys, subjectId);
        insert.run(kid, wrapKey(this.#keys, `subject|${kid.toString('hex')}`, randomBytes(32)), at, this.#kekColumn());
      }
    })();
  }

  keyById(kid: Buffer): Buffer | 'shredded' | undefined {
    const hex = kid.toString('hex');
    if (this.#tombstones.has(hex)) return 'shredded';
    const cached = this.#byKid.get(hex);
    if (cached !== undefined) return cached;
    const row = this.#stmt.byKid.get(kid) as { wrapped: Buffer | null; kek: string | null } | undefined;
    if (row === undefined) return undefined;
    if (row.wrapped === null) {
      this.#tombstones.add(hex);
      return 'shredded';
    }
    const key = this.#unwrap(`subject|${hex}`, row.wrapped, row.kek);
    if (key === undefined) return undefined;
    this.#byKid.set(hex, key);
    return key;
  }

  /**
   * What `keyById` answers for each id, with the ids not in memory read in one query per 500 (a fan-out
   * to a million people seals for keys no cache holds: one indexed read per person cost more than the rest
   * of the key's handling). Each key is unwrapped as `keyById` unwraps it, and cached the same way (unless `cache: false`).
   */
  keysById(kids: readonly Buffer[], options: { readonly cache?: boolean } = {}): (Buffer | 'shredded' | undefined)[] {
    const cache = options.cache !== false;
    const out: (Buffer | 'shredded' | undefined)[] = new Array<Buffer | 'shredded' | undefined>(kids.length);
    const missing = new Map<string, number[]>();
    const wanted: Buffer[] = [];
    kids.forEach((kid, i) => {
      const hex = kid.toString('hex');
      if (this.#tombstones.has(hex)) out[i] = 'shredded';
      else {
        const cached = this.#byKid.get(hex);
        if (cached !== undefined) out[i] = cached;
        else {
          const places = missing.get(hex);
          if (places === undefined) {
            missing.set(hex, [i]);
            wanted.push(kid);
          } else places.push(i);
        }
      }
    });
    for (let at = 0; at < wanted.length; at += KEYS_PER_READ) {
      const slice = wanted.slice(at, at + KEYS_PER_READ);
      // Rows as arrays [kid, wrapped, kek]: no object per row.
      const rows = this.#readMany(slice.length).all(...slice) as [Buffer, Buffer | null, string | null][];
      for (const [kid, wrapped, kek] of rows) {
        const hex = kid.toString('hex');
        let found: Buffer | 'shredded' | undefined;
        if (wrapped === null) {
          this.#tombstones.add(hex);
          found = 'shredded';
        } else {
          found = this.#unwrap(`subject|${hex}`, wrapped, kek);
          if (cache && found !== undefined) this.#byKid.set(hex, found);
        }
        for (const i of missing.get(hex) ?? []) out[i] = found;
      }
    }
    return out;
  }

  readonly #readManyStmts = new Map<number, Database.Statement>();

  /** `SELECT … WHERE kid IN (?, …)` with n places, prepared once per n. */
  #readMany(n: number): Database.Statement {
    let stmt = this.#readManyStmts.get(n);
    if (stmt === undefined) {
      stmt = this.#db.prepare(`SELECT kid, wrapped, ${this.#kekOf} FROM subject_keys WHERE kid IN (${new Array(n).fill('?').join(', ')})`).raw();
      this.#readManyStmts.set(n, stmt);
    }
    return stmt;
  }

  isShredded(kid: Buffer): boolean {
    return this.#tombstones.has(kid.toString('hex'));
  }

  isEpochShredded(epoch: number): boolean {
    return this.#shreddedEpochs.has(epoch);
  }

  epochKey(epoch: number, create: boolean): Buffer | 'shredded' | undefined {
    const cached = this.#epochs.get(epoch);
    if (cached !== undefined) return cached;
    let row = this.#stmt.epoch.get(epoch) as { wrapped: Buffer | null; kek: string | null } | undefined;
    if (row === undefined && create) {
      if (this.#stmt.insertEpoch === undefined) throw new SealingError('INVALID_KEYS', 'this key ring is open read-only: it makes no keys');
      this.#stmt.insertEpoch.run(epoch, wrapKey(this.#keys, `epoch|${epoch}`, randomBytes(32)), this.#now().toISOString(), this.#kekColumn());
      row = this.#stmt.epoch.get(epoch) as { wrapped: Buffer | null; kek: string | null };
    }
    if (row === undefined) return undefined;
    const found = row.wrapped === null ? 'shredded' : this.#unwrap(`epoch|${epoch}`, row.wrapped, row.kek);
    if (found === undefined) return undefined;
    this.#epochs.set(epoch, found);
    if (found === 'shredded') this.#shreddedEpochs.add(epoch);
    return found;
  }

  shredSubject(subjectId: string, at: string): boolean {
    if (this.#stmt.shredSubject === undefined) throw new SealingError('INVALID_KEYS', 'this key ring is open read-only: it shreds nothing');
    const kid = personKid(this.#keys, subjectId);
    const changed = this.#stmt.shredSubject.run(at, kid).changes > 0;
    const hex = kid.toString('hex');
    this.#byKid.delete(hex);
    if (this.#stmt.byKid.get(kid) !== undefined) this.#tombstones.add(hex);
    if (changed) this.#forget();
    return changed;
  }

  shredEpochsThrough(throughEpoch: number, at: string): number[] {
    if (this.#stmt.shredEpochs === undefined) throw new SealingError('INVALID_KEYS', 'this key ring is open read-only: it shreds nothing');
    const epochs = (this.#stmt.shredEpochs.all(at, throughEpoch) as { epoch: number }[]).map((r) => r.epoch).sort((a, b) => a - b);
    for (const e of epochs) {
      this.#epochs.set(e, 'shredded');
      this.#shreddedEpochs.add(e);
    }
    if (epochs.length > 0) this.#forget();
    return epochs;
  }

  liveEpochs(): number[] {
    return this.#stmt.liveEpochs.all() as number[];
  }

  /** The years whose period key was shredded. */
  shreddedEpochs(): number[] {
    return [...this.#shreddedEpochs].sort((a, b) => a - b);
  }

  /**
   * Keeps a person key made elsewhere (a key ring shared through another store), as it was wrapped there.
   * A key already here, or a tombstone, stays as it is. Checked to unwrap under this ring's key set first.
   */
  storeWrapped(kid: Buffer, wrapped: Buffer, at: string, kek: string | null = null): void {
    this.#assertWritable('keeps no keys');
    const hex = kid.toString('hex');
    const key = unwrapKey(this.#keys, `subject|${hex}`, wrapped, kek);
    if (this.#stmt.insertSubject!.run(kid, wrapped, at, kek).changes > 0) return;
    // Already here: a wrap under a KEK this key set no longer holds is replaced by this one (the same key,
    // re-wrapped elsewhere); any other stays as it is.
    const row = this.#stmt.byKid.get(kid) as { wrapped: Buffer | null; kek: string | null } | undefined;
    if (row?.wrapped != null && !holdsKek(this.#keys, row.kek)) {
      this.#stmt.rewrapSubject!.run(wrapped, kek, kid);
      this.#byKid.set(hex, key);
    }
  }

  /** Keeps a period key made elsewhere, as it was wrapped there (as `storeWrapped`). */
  storeWrappedEpoch(epoch: number, wrapped: Buffer, at: string, kek: string | null = null): void {
    this.#assertWritable('keeps no keys');
    const key = unwrapKey(this.#keys, `epoch|${epoch}`, wrapped, kek);
    if (this.#stmt.insertEpoch!.run(epoch, wrapped, at, kek).changes > 0) return;
    const row = this.#stmt.epoch.get(epoch) as { wrapped: Buffer | null; kek: string | null } | undefined;
    if (row?.wrapped != null && !holdsKek(this.#keys, row.kek)) {
      this.#stmt.rewrapEpoch!.run(wrapped, kek, epoch);
      this.#epochs.set(epoch, key);
    }
  }

  /**
   * Replaces a person key's wrap by another wrap of the same key (a re-wrap made elsewhere, under the
   * KEK it names). Checked: the new wrap must open to the key the row holds (when this ring can open the
   * row). A shredded key stays shredded. Answers whether the row changed.
   */
  replaceWrapped(kid: Buffer, wrapped: Buffer, kek: string | null): boolean {
    this.#assertWritable('keeps no keys');
    const hex = kid.toString('hex');
    const key = unwrapKey(this.#keys, `subject|${hex}`, wrapped, kek);
    const row = this.#stmt.byKid.get(kid) as { wrapped: Buffer | null; kek: string | null } | undefined;
    if (row?.wrapped == null) return false;
    if (holdsKek(this.#keys, row.kek) && !unwrapKey(this.#keys, `subject|${hex}`, row.wrapped, row.kek).equals(key)) {
      throw new SealingError('INVALID_KEYS', `a re-wrap of person key ${hex} holds another key than the ring's: refused`);
    }
    return this.#stmt.rewrapSubject!.run(wrapped, kek, kid).changes > 0;
  }

  /** Replaces a period key's wrap by another wrap of the same key (as `replaceWrapped`). */
  replaceWrappedEpoch(epoch: number, wrapped: Buffer, kek: string | null): boolean {
    this.#assertWritable('keeps no keys');
    const key = unwrapKey(this.#keys, `epoch|${epoch}`, wrapped, kek);
    const row = this.#stmt.epoch.get(epoch) as { wrapped: Buffer | null; kek: string | null } | undefined;
    if (row?.wrapped == null) return false;
    if (holdsKek(this.#keys, row.kek) && !unwrapKey(this.#keys, `epoch|${epoch}`, row.wrapped, row.kek).equals(key)) {
      throw new SealingError('INVALID_KEYS', `a re-wrap of the period key of ${epoch} holds another key than the ring's: refused`);
    }
    return this.#stmt.rewrapEpoch!.run(wrapped, kek, epoch).changes > 0;
  }

  /** The key set this ring wraps and opens with. */
  get keys(): SealingKeys {
    return this.#keys;
  }

  /**
   * Goes on with another key set of the same keys (the same kid, locator, handle and hub keys) whose
   * key-encryption keys changed: a rotation's new KEK wraps every key made from now on; wraps under the
   * KEKs it still holds keep opening. The keys already unwrapped stay in memory (they did not change).
   */
  useKeys(next: SealingKeys): void {
    const k = this.#keys;
    if (next.kid !== k.kid || !next.locator.equals(k.locator) || !next.handle.equals(k.handle) || !next.hub.equals(k.hub)) {
      throw new SealingError('INVALID_KEYS', 'a key ring goes on only with the same key set (only its key-encryption keys may change)');
    }
    this.#keys = next;
  }

  /**
   * Re-wraps one page of keys under the current key-encryption key, in one transaction: the person keys
   * after `afterKid` in key id order (up to `limit` rows), and with `epochs` every period key. Rows
   * already under the current KEK and shredded rows are passed over. `onPage` runs inside the
   * transaction (a caller's progress is kept with the rows it covers). Answers the rows re-wrapped and
   * the last key id read (undefined at the end).
   */
  rewrapPage(afterKid: Buffer | undefined, limit: number, options: { readonly epochs?: boolean; readonly onPage?: (last: Buffer | undefined, rewrapped: { personKeys: number; periodKeys: number }) => void } = {}): { personKeys: number; periodKeys: number; last: Buffer | undefined } {
    this.#assertWritable('re-wraps nothing');
    const current = currentKekId(this.#keys);
    let personKeys = 0;
    let periodKeys = 0;
    let last: Buffer | undefined;
    this.#db.transaction(() => {
      const rows = this.#db.prepare(`SELECT kid, wrapped, kek FROM subject_keys WHERE kid > ? ORDER BY kid LIMIT ?`).all(afterKid ?? Buffer.alloc(0), limit) as { kid: Buffer; wrapped: Buffer | null; kek: string | null }[];
      for (const row of rows) {
        if (row.wrapped === null || this.#kekIdOf(row.kek) === current) continue;
        const what = `subject|${row.kid.toString('hex')}`;
        this.#stmt.rewrapSubject!.run(wrapKey(this.#keys, what, unwrapKey(this.#keys, what, row.wrapped, row.kek)), this.#kekColumn(), row.kid);
        personKeys++;
      }
      last = rows.length < limit ? undefined : rows.at(-1)!.kid;
      if (options.epochs === true) {
        for (const row of this.#db.prepare('SELECT epoch, wrapped, kek FROM epoch_keys WHERE wrapped IS NOT NULL').all() as { epoch: number; wrapped: Buffer; kek: string | null }[]) {
          if (this.#kekIdOf(row.kek) === current) continue;
          const what = `epoch|${row.epoch}`;
          this.#stmt.rewrapEpoch!.run(wrapKey(this.#keys, what, unwrapKey(this.#keys, what, row.wrapped, row.kek)), this.#kekColumn(), row.epoch);
          periodKeys++;
        }
      }
      options.onPage?.(last, { personKeys, periodKeys });
    })();
    return { personKeys, periodKeys, last };
  }

  /**
   * How many live (not shredded) wraps the ring holds under each key-encryption key. Reads every row
   * (one pass over the file: at population scale, minutes): a KEK no count names is used by no wrap here.
   */
  wrapCounts(): WrapCounts {
    const count = (table: string): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const [kek, n] of this.#db.prepare(`SELECT ${this.#kekOf}, count(*) FROM ${table} WHERE wrapped IS NOT NULL GROUP BY 1`).raw().all() as [string | null, number][]) {
        const id = this.#kekIdOf(kek);
        out[id] = (out[id] ?? 0) + n;
      }
      return out;
    };
    return { personKeys: count('subject_keys'), periodKeys: count('epoch_keys') };
  }

  /** After a re-wrap: the WAL moved into the file and truncated (secure_delete overwrote the old wraps' bytes). */
  forgetOldWraps(): void {
    this.#assertWritable('forgets nothing');
    this.#forget();
  }

  /**
   * Records a person key as shredded by its id, whether or not this ring held it (it was erased elsewhere):
   * the key is gone from the file and never made or kept anew. Answers whether this changed anything.
   */
  markShredded(kid: Buffer, at: string): boolean {
    const hex = kid.toString('hex');
    if (this.#tombstones.has(hex)) return false;
    this.#assertWritable('shreds nothing');
    const changed = this.#stmt.tombstoneSubject!.run(kid, at, at).changes > 0;
    this.#byKid.delete(hex);
    this.#tombstones.add(hex);
    this.#forget();
    return changed;
  }

  /** Records the period key of a year as shredded, whether or not this ring held it. */
  markEpochShredded(epoch: number, at: string): boolean {
    if (this.#shreddedEpochs.has(epoch)) return false;
    this.#assertWritable('shreds nothing');
    const changed = this.#stmt.tombstoneEpoch!.run(epoch, at, at).changes > 0;
    this.#epochs.set(epoch, 'shredded');
    this.#shreddedEpochs.add(epoch);
    this.#forget();
    return changed;
  }

  /**
   * One page of this ring's person keys as stored (wrapped; null once shredded), in key id order after
   * `afterKid` (a page at a time, so that a caller may write between pages).
   */
  subjectPage(afterKid: Buffer | undefined, limit: number): { kid: Buffer; wrapped: Buffer | null; kek: string | null }[] {
    return this.#db.prepare(`SELECT kid, wrapped, ${this.#kekOf} FROM subject_keys WHERE kid > ? ORDER BY kid LIMIT ?`).all(afterKid ?? Buffer.alloc(0), limit) as { kid: Buffer; wrapped: Buffer | null; kek: string | null }[];
  }

  /** Every period key of this ring as stored (wrapped; null once shredded): as many as years. */
  epochEntries(): { epoch: number; wrapped: Buffer | null; kek: string | null }[] {
    return this.#db.prepare(`SELECT epoch, wrapped, ${this.#kekOf} FROM epoch_keys ORDER BY epoch`).all() as { epoch: number; wrapped: Buffer | null; kek: string | null }[];
  }

  /** A value this ring keeps beside the keys (e.g. how far it has followed a shared copy). */
  meta(key: string): string | undefined {
    return (this.#db.prepare('SELECT value FROM keyring_meta WHERE key = ?').pluck().get(key) as string | undefined) ?? undefined;
  }

  setMeta(key: string, value: string): void {
    this.#assertWritable('keeps nothing');
    this.#stmt.setMeta!.run(key, value);
  }

  #assertWritable(what: string): void {
    if (this.#readonly) throw new SealingError('INVALID_KEYS', `this key ring is open read-only: it ${what}`);
  }

  /** After a shred: move the WAL into the file and truncate it, so no copy of the old key stays on disk. */
  #forget(): void {
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
