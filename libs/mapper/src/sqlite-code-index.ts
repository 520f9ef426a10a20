import Database from 'better-sqlite3';
import type { RecordedEvent } from '#ledger';
import { isAgencyCode, type AgencyCode, type SubjectId } from '#linkage';
import { issuedCodeOf, pendingEvents, type IssuedCode } from './agency-code-events.js';
import type { CodeMapper, CodeMapperProjection, MappingEntry, Translation } from './code-mapper.port.js';
import { MapperError } from './errors.js';

/**
 * The code index's table: one row per issued code, the code's 16 bytes as its key and a unique index by
 * (subject, agency). Codes and subject ids are stored as their bytes (16 each), not as text.
 */
export const CODE_INDEX_DDL = `
CREATE TABLE IF NOT EXISTS agency_codes (
  code BLOB PRIMARY KEY,
  agency_id TEXT NOT NULL,
  subject BLOB NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS agency_codes_by_subject ON agency_codes (subject, agency_id);
`;
export const CODE_INDEX_TABLES: readonly string[] = ['agency_codes'];

const SUBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A canonical subject id as its 16 bytes (anything else as text, so that it still round-trips). */
export function subjectKey(subjectId: string): Buffer | string {
  return SUBJECT_ID.test(subjectId) ? Buffer.from(subjectId.replaceAll('-', ''), 'hex') : subjectId;
}

/** The subject id a stored key names. */
export function subjectOfKey(key: Buffer | string): SubjectId {
  if (typeof key === 'string') return key as SubjectId;
  const h = key.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as SubjectId;
}

/**
 * How subject ids and codes are stored. By default their plain bytes; the hub's lookup file enciphers
 * them (one AES block each, deterministic, so that they remain keys).
 */
export interface CodeIndexKeys {
  subject(subjectId: string): Buffer | string;
  subjectOf(stored: Buffer | string): SubjectId;
  code(code: string): Buffer;
  codeOf(stored: Buffer): AgencyCode;
}

export const PLAIN_CODE_INDEX_KEYS: CodeIndexKeys = {
  subject: subjectKey,
  subjectOf: subjectOfKey,
  code: (code) => Buffer.from(code, 'base64url'),
  codeOf: (stored) => stored.toString('base64url') as AgencyCode,
};

/**
 * Issued agency codes in SQLite tables of a database someone else owns (the hub's lookup file, or
 * SqliteCodeMapper's own): nothing of them is held in memory, so its size does not grow with the
 * population (I11). `record` is called inside the owner's transaction; lookups are synchronous
 * prepared-statement reads. Answers like InMemoryCodeMapper.
 */
export class SqliteCodeIndex implements CodeMapper {
  readonly #insert: Database.Statement;
  readonly #byCode: Database.Statement;
  readonly #bySubject: Database.Statement;
  readonly #forget: Database.Statement;
  readonly #all: Database.Statement;
  readonly #keys: CodeIndexKeys;

  /** Creates the table when missing. */
  constructor(db: Database.Database, keys: CodeIndexKeys = PLAIN_CODE_INDEX_KEYS) {
    this.#keys = keys;
    db.exec(CODE_INDEX_DDL);
    this.#insert = db.prepare('INSERT INTO agency_codes (code, agency_id, subject) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
    this.#byCode = db.prepare('SELECT agency_id AS agencyId, subject FROM agency_codes WHERE code = ?');
    this.#bySubject = db.prepare('SELECT code FROM agency_codes WHERE subject = ? AND agency_id = ?').pluck();
    this.#forget = db.prepare('DELETE FROM agency_codes WHERE subject = ?');
    this.#all = db.prepare('SELECT subject, agency_id AS agencyId, code FROM agency_codes');
  }

  /** Files one issued code; the same code again is a no-op, a conflicting one is refused (CODE_CONFLICT). */
  record(issued: IssuedCode): void {
    const { subjectId, agencyId, code } = issued;
    if (this.#insert.run(this.#keys.code(code), agencyId, this.#keys.subject(subjectId)).changes === 1) return;
    const owner = this.#owner(code);
    const held = this.codeForSync(subjectId, agencyId);
    if (owner?.subjectId === subjectId && owner.agencyId === agencyId && held === code) return;
    throw new MapperError('CODE_CONFLICT', `event at position ${issued.position} gives ${owner ? 'a code already held' : 'a second code for one (subject, agency)'}; the ledger's claims should have refused it`);
  }

  /** A subject id as this index stores it (the key of its rows; enciphered in the hub's lookup file). */
  storedSubject(subjectId: string): Buffer | string {
    return this.#keys.subject(subjectId);
  }

  /** The subject id a stored subject names (as read from this index's table by another statement). */
  subjectOfStored(stored: Buffer | string): SubjectId {
    return this.#keys.subjectOf(stored);
  }

  /** An erasure: the person's codes go (a rebuild, which cannot open their events, holds none either). */
  forget(subjectId: string): void {
    this.#forget.run(this.#keys.subject(subjectId));
  }

  #owner(code: string): { readonly agencyId: string; readonly subjectId: SubjectId } | undefined {
    const row = this.#byCode.get(this.#keys.code(code)) as { agencyId: string; subject: Buffer | string } | undefined;
    return row === undefined ? undefined : { agencyId: row.agencyId, subjectId: this.#keys.subjectOf(row.subject) };
  }

  resolveSync(agencyId: string, code: string): SubjectId | undefined {
    if (!isAgencyCode(code)) return undefined;
    const owner = this.#owner(code);
    return owner !== undefined && owner.agencyId === agencyId ? owner.subjectId : undefined;
  }

  codeForSync(subjectId: string, agencyId: string): AgencyCode | undefined {
    const key = this.#bySubject.get(this.#keys.subject(subjectId), agencyId) as Buffer | undefined;
    return key === undefined ? undefined : this.#keys.codeOf(key);
  }

  translateSync(fromAgencyId: string, code: string, toAgencyId: string): Translation {
    const subjectId = this.resolveSync(fromAgencyId, code);
    if (subjectId === undefined) return { status: 'unknown-code' };
    const target = this.codeForSync(subjectId, toAgencyId);
    return target === undefined ? { status: 'no-target-code', subjectId } : { status: 'translated', subjectId, code: target };
  }

  async resolve(agencyId: string, code: string): Promise<SubjectId | undefined> {
    return this.resolveSync(agencyId, code);
  }

  async resolveMany(agencyId: string, codes: readonly string[]): Promise<(SubjectId | undefined)[]> {
    return codes.map((c) => this.resolveSync(agencyId, c));
  }

  async codeFor(subjectId: string, agencyId: string): Promise<AgencyCode | undefined> {
    return this.codeForSync(subjectId, agencyId);
  }

  async codeForMany(agencyId: string, subjectIds: readonly string[]): Promise<(AgencyCode | undefined)[]> {
    return subjectIds.map((s) => this.codeForSync(s, agencyId));
  }

  async translate(fromAgencyId: string, code: string, toAgencyId: string): Promise<Translation> {
    return this.translateSync(fromAgencyId, code, toAgencyId);
  }

  async translateMany(fromAgencyId: string, codes: readonly string[], toAgencyId: string): Promise<Translation[]> {
    return codes.map((c) => this.translateSync(fromAgencyId, c, toAgencyId));
  }

  /** Every mapping, sorted by subject, then agency (for comparing with a rebuild; reads the whole table). */
  entries(): MappingEntry[] {
    const rows = this.#all.all() as { subject: Buffer | string; agencyId: string; code: Buffer }[];
    return rows
      .map((r) => ({ subjectId: this.#keys.subjectOf(r.subject), agencyId: r.agencyId, code: this.#keys.codeOf(r.code) }))
      .sort((a, b) => (a.subjectId < b.subjectId ? -1 : a.subjectId > b.subjectId ? 1 : a.agencyId < b.agencyId ? -1 : a.agencyId > b.agencyId ? 1 : 0));
  }
}

/**
 * A code mapper in its own SQLite file (or `:memory:`), a projection of AgencyCodeIssued events with a
 * stored checkpoint (I8), each batch one transaction. Feed it opened events (OpeningEventStore).
 */
export class SqliteCodeMapper implements CodeMapper, CodeMapperProjection {
  readonly #db: Database.Database;
  readonly #index: SqliteCodeIndex;
  readonly #checkpoint: Database.Statement;
  readonly #setCheckpoint: Database.Statement;

  constructor(path = ':memory:') {
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.exec('CREATE TABLE IF NOT EXISTS code_mapper_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;');
    this.#index = new SqliteCodeIndex(this.#db);
    this.#checkpoint = this.#db.prepare(`SELECT value FROM code_mapper_meta WHERE key = 'checkpoint'`).pluck();
    this.#setCheckpoint = this.#db.prepare(`INSERT INTO code_mapper_meta (key, value) VALUES ('checkpoint', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
  }

  #stored(): number {
    const v = this.#checkpoint.get() as string | undefined;
    return v === undefined ? -1 : Number(v);
  }

  async apply(events: readonly RecordedEvent[]): Promise<void> {
    const pending = pendingEvents(events, this.#stored());
    if (pending.length === 0) return;
    this.#db.transaction(() => {
      for (const e of pending) {
        const issued = issuedCodeOf(e);
        if (issued !== undefined) this.#index.record(issued);
      }
      this.#setCheckpoint.run(String(pending[pending.length - 1]!.position));
    })();
  }

  async checkpoint(): Promise<number> {
    return this.#stored();
  }

  async reset(): Promise<void> {
    this.#db.exec(`DELETE FROM agency_codes; DELETE FROM code_mapper_meta WHERE key = 'checkpoint';`);
  }

  async entries(): Promise<MappingEntry[]> {
    return this.#index.entries();
  }

  resolve(agencyId: string, code: string): Promise<SubjectId | undefined> {
    return this.#index.resolve(agencyId, code);
  }

  resolveMany(agencyId: string, codes: readonly string[]): Promise<(SubjectId | undefined)[]> {
    return this.#index.resolveMany(agencyId, codes);
  }

  codeFor(subjectId: string, agencyId: string): Promise<AgencyCode | undefined> {
    return this.#index.codeFor(subjectId, agencyId);
  }

  codeForMany(agencyId: string, subjectIds: readonly string[]): Promise<(AgencyCode | undefined)[]> {
    return this.#index.codeForMany(agencyId, subjectIds);
  }

  translate(fromAgencyId: string, code: string, toAgencyId: string): Promise<Translation> {
    return this.#index.translate(fromAgencyId, code, toAgencyId);
  }

  translateMany(fromAgencyId: string, codes: readonly string[], toAgencyId: string): Promise<Translation[]> {
    return this.#index.translateMany(fromAgencyId, codes, toAgencyId);
  }

  close(): void {
    this.#db.close();
  }
}
