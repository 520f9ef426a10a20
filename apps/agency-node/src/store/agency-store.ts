import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AgencyProblem } from '../http/agency-problem.js';
import { MeshStore } from './mesh-store.js';
import { RecordWriter, type RecordRowValues } from './record-writer.js';

export type Role = 'provided' | 'requested';
/** provided: answered | refused. requested: answered | refused-by-provider | denied | failed. */
export type RecordOutcome = 'answered' | 'refused' | 'refused-by-provider' | 'denied' | 'failed';

export interface Person {
  readonly localId: string;
  readonly agencyCode: string | null;
  readonly restricted: boolean;
}

/** One line of the agency's own provision record (情報提供等記録): who asked whom, for what, and why. */
export interface ProvisionRecord {
  readonly id: number;
  readonly role: Role;
  readonly serial: string;
  readonly queryId: string | null;
  /** The requester (role provided) or the provider (role requested). */
  readonly counterpartAgencyId: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly localId: string | null;
  readonly outcome: RecordOutcome;
  readonly reason: string | null;
  /** Hex SHA-256 of the answer bytes as they crossed the hub (sealed, when encrypted). */
  readonly answerDigest: string | null;
  readonly answerSize: number | null;
  readonly encrypted: boolean | null;
  readonly recordedAt: string;
}

/** A stored line with what a retry of its serial is checked against and answered with. */
export type StoredProvisionRecord = ProvisionRecord & { requestDigest: string | null; responseJson: string | null };

export type NewProvisionRecord = Omit<ProvisionRecord, 'id'> & {
  /** Provided role: digest of the request fields, so a retry can be told from another request reusing the serial. */
  readonly requestDigest?: string | null;
  /** Provided role: the exact response body sent, replayed to a retry of the same serial. */
  readonly responseJson?: string | null;
};

export interface CopyRecord {
  readonly localId: string;
  readonly restricted?: boolean;
  readonly items: Readonly<Record<string, unknown>>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS persons (
  local_id TEXT PRIMARY KEY,
  agency_code TEXT UNIQUE,
  restricted INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
  code_acquired_at TEXT
);
CREATE TABLE IF NOT EXISTS copies (
  local_id TEXT NOT NULL REFERENCES persons (local_id),
  item_code TEXT NOT NULL,
  value_json TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (local_id, item_code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held_items (item_code TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provision_records (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  role TEXT NOT NULL CHECK (role IN ('provided', 'requested')),
  serial TEXT NOT NULL,
  query_id TEXT,
  counterpart_agency_id TEXT NOT NULL,
  procedure_code TEXT NOT NULL,
  item_codes TEXT NOT NULL,
  local_id TEXT,
  outcome TEXT NOT NULL,
  reason TEXT,
  answer_digest TEXT,
  answer_size INTEGER,
  encrypted INTEGER,
  request_digest TEXT,
  response_json TEXT,
  recorded_at TEXT NOT NULL,
  UNIQUE (role, serial)
);
-- The provision record is kept (7 years) as written: corrections would be new lines, never edits.
CREATE TRIGGER IF NOT EXISTS provision_records_no_update BEFORE UPDATE ON provision_records
  BEGIN SELECT RAISE(ABORT, 'provision records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS provision_records_no_delete BEFORE DELETE ON provision_records
  BEGIN SELECT RAISE(ABORT, 'provision records are append-only'); END;
`;

interface RecordRow {
  id: number;
  role: Role;
  serial: string;
  query_id: string | null;
  counterpart_agency_id: string;
  procedure_code: string;
  item_codes: string;
  local_id: string | null;
  outcome: RecordOutcome;
  reason: string | null;
  answer_digest: string | null;
  answer_size: number | null;
  encrypted: number | null;
  request_digest: string | null;
  response_json: string | null;
  recorded_at: string;
}

/** Local ids are the agency's own (e.g. 宛名番号); 11 or 12 digits would be a resident record code or a My Number. */
const LOCAL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PERSONAL_IDENTIFIER_SHAPE = /^(?:\d{11}|\d{12})$/;
const ITEM_CODE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

export function isLocalId(x: unknown): x is string {
  return typeof x === 'string' && LOCAL_ID.test(x) && !PERSONAL_IDENTIFIER_SHAPE.test(x);
}

/**
 * The agency's own SQLite file (WAL): persons keyed by the agency's local id, their copies (副本), the
 * items it holds, and its provision record. It MUST NOT hold a My Number.
 */
export class AgencyStore {
  private readonly db: Database.Database;
  readonly #path: string;
  /** The provider path's group-commit writer, started at its first record. */
  #writer: RecordWriter | undefined;
  /** Statements of the provision hot path, prepared once. */
  readonly #statements = new Map<string, Database.Statement>();
  /** The public service mesh's tables (pushes received, copy updates and their reports), on this connection. */
  readonly mesh: MeshStore;

  constructor(path: string) {
    this.#path = path;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    // The copies are personal data: owner-only, like the keys (SQLite gives the -wal and -shm files the same mode).
    chmodSync(path, 0o600);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    this.mesh = new MeshStore(this.db);
  }

  /** Runs `fn` in one IMMEDIATE transaction on the main connection (all or nothing, durable at commit). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** The stored value of one copy (its JSON text), or undefined. */
  copyJson(localId: string, itemCode: string): string | undefined {
    return (this.#statement('SELECT value_json FROM copies WHERE local_id = ? AND item_code = ?').get(localId, itemCode) as { value_json: string } | undefined)?.value_json;
  }

  /** Writes one copy (a new value replaces the old) and holds its item; call inside transaction() for several. */
  upsertCopy(localId: string, itemCode: string, value: unknown, now: Date): void {
    this.#statement(
      `INSERT INTO copies (local_id, item_code, value_json, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (local_id, item_code) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`,
    ).run(localId, itemCode, JSON.stringify(value), now.toISOString());
    this.#statement('INSERT OR IGNORE INTO held_items (item_code) VALUES (?)').run(itemCode);
  }

  /** Closes both connections (the record writer's last): SQLite removes the WAL when the last one closes. */
  async close(): Promise<void> {
    if (this.db.open) this.db.close();
    await this.#writer?.close();
  }

  #statement(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  ping(): boolean {
    return this.db.open && this.db.prepare('SELECT 1 AS one').get() !== undefined;
  }

  counts(): { persons: number; heldItems: number; records: number } {
    const one = (sql: string): number => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      persons: one('SELECT count(*) AS n FROM persons'),
      heldItems: one('SELECT count(*) AS n FROM held_items'),
      records: one('SELECT count(*) AS n FROM provision_records'),
    };
  }

  /** Upserts persons and their copies and adds every item named to the items held, in one transaction. */
  loadCopies(records: readonly CopyRecord[], now: Date): { persons: number; copies: number; heldItems: readonly string[] } {
    records.forEach((r, i) => validateCopyRecord(r, i));
    const upsertPerson = this.db.prepare(
      `INSERT INTO persons (local_id, restricted) VALUES (?, ?)
       ON CONFLICT (local_id) DO UPDATE SET restricted = coalesce(?, restricted)`,
    );
    const upsertCopy = this.db.prepare(
      `INSERT INTO copies (local_id, item_code, value_json, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (local_id, item_code) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`,
    );
    const hold = this.db.prepare('INSERT OR IGNORE INTO held_items (item_code) VALUES (?)');
    let copies = 0;
    this.db.transaction(() => {
      for (const r of records) {
        const restricted = r.restricted === undefined ? null : r.restricted ? 1 : 0;
        upsertPerson.run(r.localId, restricted ?? 0, restricted);
        for (const [item, value] of Object.entries(r.items)) {
          upsertCopy.run(r.localId, item, JSON.stringify(value), now.toISOString());
          hold.run(item);
          copies++;
        }
      }
    })();
    return { persons: records.length, copies, heldItems: this.heldItems() };
  }

  heldItems(): string[] {
    return (this.db.prepare('SELECT item_code FROM held_items ORDER BY item_code').all() as { item_code: string }[]).map((r) => r.item_code);
  }

  holdsAll(itemCodes: readonly string[]): boolean {
    const stmt = this.#statement('SELECT 1 FROM held_items WHERE item_code = ?');
    return itemCodes.every((c) => stmt.get(c) !== undefined);
  }

  person(localId: string): Person | undefined {
    const row = this.db.prepare('SELECT local_id, agency_code, restricted FROM persons WHERE local_id = ?').get(localId) as
      | { local_id: string; agency_code: string | null; restricted: number }
      | undefined;
    return row && { localId: row.local_id, agencyCode: row.agency_code, restricted: row.restricted === 1 };
  }

  personByCode(code: string): Person | undefined {
    const row = this.#statement('SELECT local_id, agency_code, restricted FROM persons WHERE agency_code = ?').get(code) as
      | { local_id: string; agency_code: string; restricted: number }
      | undefined;
    return row && { localId: row.local_id, agencyCode: row.agency_code, restricted: row.restricted === 1 };
  }

  /** The copies of these items for this person, or undefined if any is missing. */
  copies(localId: string, itemCodes: readonly string[]): Map<string, unknown> | undefined {
    const stmt = this.#statement('SELECT value_json FROM copies WHERE local_id = ? AND item_code = ?');
    const out = new Map<string, unknown>();
    for (const item of itemCodes) {
      const row = stmt.get(localId, item) as { value_json: string } | undefined;
      if (row === undefined) return undefined;
      out.set(item, JSON.parse(row.value_json) as unknown);
    }
    return out;
  }

  /** Stores the agency code the hub issued for this person. One code belongs to one person. */
  setAgencyCode(localId: string, code: string, acquiredAt: string): void {
    const holder = this.personByCode(code);
    if (holder !== undefined && holder.localId !== localId) {
      throw new AgencyProblem(
        'CODE_ALREADY_ASSIGNED',
        `the hub returned a code that is already stored for local id ${holder.localId}: the two local ids are the same person; merge them before acquiring again`,
      );
    }
    const changed = this.db.prepare('UPDATE persons SET agency_code = ?, code_acquired_at = ? WHERE local_id = ?').run(code, acquiredAt, localId).changes;
    if (changed === 0) throw new AgencyProblem('PERSON_NOT_FOUND', `no person with local id ${localId}; load them first (load-copies)`);
  }

  /** Appends a record line; a second line for the same role and serial is ignored (a retry). Returns the stored line. */
  record(r: NewProvisionRecord): StoredProvisionRecord {
    this.db
      .prepare(
        `INSERT OR IGNORE INTO provision_records
         (role, serial, query_id, counterpart_agency_id, procedure_code, item_codes, local_id, outcome, reason,
          answer_digest, answer_size, encrypted, request_digest, response_json, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...rowValues(r));
    return this.recordFor(r.role, r.serial)!;
  }

  /**
   * Like record(), but committed by a writer thread in a group transaction with the other lines waiting
   * (one fsync for all of them, beside the main thread). Resolves once the line is durable: `inserted` when this
   * line is the one stored (nothing is read back), else the line stored before for that role and serial (a
   * retry, or another request under the same serial), which stays as it was.
   */
  async recordDurably(r: NewProvisionRecord): Promise<{ readonly inserted: true } | { readonly inserted: false; readonly stored: StoredProvisionRecord }> {
    this.#writer ??= new RecordWriter(this.#path);
    if (await this.#writer.write(rowValues(r))) return { inserted: true };
    return { inserted: false, stored: this.recordFor(r.role, r.serial)! };
  }

  recordFor(role: Role, serial: string): StoredProvisionRecord | undefined {
    const row = this.#statement('SELECT * FROM provision_records WHERE role = ? AND serial = ?').get(role, serial) as RecordRow | undefined;
    return row && { ...toRecord(row), requestDigest: row.request_digest, responseJson: row.response_json };
  }

  /** Newest first; `before` is the id of the last line of the previous page. */
  records(options: { limit: number; before?: number; role?: Role }): ProvisionRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM provision_records
         WHERE (@before IS NULL OR id < @before) AND (@role IS NULL OR role = @role)
         ORDER BY id DESC LIMIT @limit`,
      )
      .all({ before: options.before ?? null, role: options.role ?? null, limit: options.limit }) as RecordRow[];
    return rows.map(toRecord);
  }
}

/** The INSERT's values, in its column order (record() and the writer thread share it). */
function rowValues(r: NewProvisionRecord): RecordRowValues {
  return [
    r.role,
    r.serial,
    r.queryId,
    r.counterpartAgencyId,
    r.procedureCode,
    JSON.stringify(r.itemCodes),
    r.localId,
    r.outcome,
    r.reason,
    r.answerDigest,
    r.answerSize,
    r.encrypted === null ? null : r.encrypted ? 1 : 0,
    r.requestDigest ?? null,
    r.responseJson ?? null,
    r.recordedAt,
  ];
}

function toRecord(row: RecordRow): ProvisionRecord {
  return {
    id: row.id,
    role: row.role,
    serial: row.serial,
    queryId: row.query_id,
    counterpartAgencyId: row.counterpart_agency_id,
    procedureCode: row.procedure_code,
    itemCodes: JSON.parse(row.item_codes) as string[],
    localId: row.local_id,
    outcome: row.outcome,
    reason: row.reason,
    answerDigest: row.answer_digest,
    answerSize: row.answer_size,
    encrypted: row.encrypted === null ? null : row.encrypted === 1,
    recordedAt: row.recorded_at,
  };
}

function validateCopyRecord(r: CopyRecord, index: number): void {
  const at = `copies[${index}]`;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new AgencyProblem('VALIDATION_FAILED', `${at} must be an object {localId, restricted?, items}`);
  if (!isLocalId(r.localId)) {
    throw new AgencyProblem(
      'VALIDATION_FAILED',
      `${at}.localId must be the agency's own id for the person (1-64 letters, digits, '.', '_' or '-'; never an 11- or 12-digit resident record code or individual number)`,
    );
  }
  if (r.restricted !== undefined && typeof r.restricted !== 'boolean') throw new AgencyProblem('VALIDATION_FAILED', `${at}.restricted must be true or false`);
  if (typeof r.items !== 'object' || r.items === null || Array.isArray(r.items)) throw new AgencyProblem('VALIDATION_FAILED', `${at}.items must be an object {itemCode: value}`);
  for (const [item, value] of Object.entries(r.items)) {
    if (item.length > 64 || !ITEM_CODE.test(item)) throw new AgencyProblem('VALIDATION_FAILED', `${at}.items: ${JSON.stringify(item)} is not an item code (kebab-case, e.g. local-tax)`);
    if (value === undefined) throw new AgencyProblem('VALIDATION_FAILED', `${at}.items.${item} has no value`);
  }
}
