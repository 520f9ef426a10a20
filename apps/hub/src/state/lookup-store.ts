import type Database from 'better-sqlite3';
import type { RecordedEvent } from '#ledger';
import {
  evolveAgencyRegistry,
  evolveAuthorizationTables,
  evolveSelfDisclosureTables,
  initialAgencyRegistryState,
  initialAuthorizationTablesState,
  initialSelfDisclosureTablesState,
  type AgencyRegistryEvent,
  type AgencyRegistryState,
  type AuthorizationTableEvent,
  type AuthorizationTablesState,
  type Evolvable,
  type SelfDisclosureTablePublished,
  type SelfDisclosureTablesState,
  type SubjectId,
} from '#linkage';
import { AGENCY_CODE_ISSUED, CODE_INDEX_DDL, CODE_INDEX_TABLES, SqliteCodeIndex, issuedCodeOf } from '#mapper';
import { SqliteFold } from '#projections';
import type { Opened } from '#sealing';
import { LookupSeal } from './lookup-seal.js';
import { CITIZEN_CREDENTIAL_TYPES, type CitizenEnrolmentSecretIssuedData, type CitizenPasskeyEnrolledData, type CitizenPasskeyRemovedData, type PasskeyCredential } from '../citizens/citizen-credentials.decider.js';

/** The lookup file in the hub's data dir. */
export const LOOKUPS_FILE = 'lookups.db';

export const REGISTRY_TYPES: ReadonlySet<string> = new Set(['AgencyRegistered', 'AgencyUpdated', 'AgencyCredentialRotated', 'AgencyRevoked']);
/** Every event type the lookups fold; events of other types only move the checkpoint (and are never opened). */
export const LOOKUP_TYPES: ReadonlySet<string> = new Set([
  ...REGISTRY_TYPES,
  'AuthorizationTablePublished',
  'AuthorizationTableWithdrawn',
  'SelfDisclosureTablePublished',
  'IndividualNumberIssued',
  'IndividualNumberChanged',
  'KeysShredded',
  ...CITIZEN_CREDENTIAL_TYPES,
  AGENCY_CODE_ISSUED,
]);

/** What the hub knows of one individual number digest. */
export interface NumberHolder {
  readonly subjectId: SubjectId;
  /** False once the number was replaced by a change of number (番号変更): it no longer identifies anyone. */
  readonly current: boolean;
  /** The municipality that numbered the person (全国地方公共団体コード). */
  readonly municipalityCode?: string;
}

/** A passkey the hub knows (from the log; the counter and last use from sign-ins, kept beside it). */
export interface KnownPasskey {
  readonly subjectId: SubjectId;
  readonly passkeyId: string;
  readonly credential: PasskeyCredential;
  readonly label: string | undefined;
  readonly createdAt: string;
  readonly counter: number;
  readonly lastUsedAt: string | undefined;
}

const DDL = `
CREATE TABLE IF NOT EXISTS numbers (number_key BLOB PRIMARY KEY, subject BLOB NOT NULL, current INTEGER NOT NULL, municipality TEXT) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS numbers_by_subject ON numbers (subject);
CREATE TABLE IF NOT EXISTS citizen_secrets (secret_key BLOB PRIMARY KEY, subject BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS citizen_secrets_by_subject ON citizen_secrets (subject);
CREATE TABLE IF NOT EXISTS citizen_secret_admits (subject BLOB PRIMARY KEY, secret_key BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS passkeys (credential_key BLOB PRIMARY KEY, subject BLOB NOT NULL, passkey_key BLOB NOT NULL, data BLOB NOT NULL, position INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS passkeys_by_subject ON passkeys (subject, position);
CREATE TABLE IF NOT EXISTS passkey_use (credential_key BLOB PRIMARY KEY, counter INTEGER NOT NULL, last_used_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agencies (agency_id TEXT PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agency_credentials (credential_key BLOB PRIMARY KEY, agency_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revoked_agency_credentials (credential_key BLOB PRIMARY KEY, agency_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS table_states (name TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
${CODE_INDEX_DDL}`;

const TABLES = ['numbers', 'citizen_secrets', 'citizen_secret_admits', 'passkeys', 'passkey_use', 'agencies', 'agency_credentials', 'revoked_agency_credentials', 'table_states', ...CODE_INDEX_TABLES];

/**
 * Every row the folds wrote, in one canonical order (what `digest()` covers: a rebuild gives the same).
 * Sign-in counters (passkey_use) are not a fold of the log and are left out.
 */
const ROWS = `
SELECT k, v FROM (
  SELECT 'number:' || hex(number_key) AS k, json_array(hex(subject), current, municipality) AS v FROM numbers
  UNION ALL SELECT 'secret:' || hex(secret_key), json_array(hex(subject)) FROM citizen_secrets
  UNION ALL SELECT 'admits:' || hex(subject), json_array(hex(secret_key)) FROM citizen_secret_admits
  UNION ALL SELECT 'passkey:' || hex(credential_key), json_array(hex(subject), hex(passkey_key), hex(data), position) FROM passkeys
  UNION ALL SELECT 'agency:' || agency_id, hex(state) FROM agencies
  UNION ALL SELECT 'credential:' || hex(credential_key), agency_id FROM agency_credentials
  UNION ALL SELECT 'revoked:' || hex(credential_key), agency_id FROM revoked_agency_credentials
  UNION ALL SELECT 'table:' || name, state FROM table_states
  UNION ALL SELECT 'code:' || hex(code), json_array(agency_id, hex(subject)) FROM agency_codes
) ORDER BY k`;

export interface LookupStoreOptions {
  readonly path: string;
  /** Opens a sealed event (the hub's EventSealer): only events of LOOKUP_TYPES are handed to it. */
  readonly open: (event: RecordedEvent) => Opened;
  /** How keys and values are kept unreadable in the file (derived from the hub's handle key). */
  readonly seal: LookupSeal;
  /** SQLite page cache in service (KiB; default LOOKUPS_CACHE_KIB): enough for the B-trees' upper levels. */
  readonly cacheKiB?: number;
  /** SQLite page cache while a long catch-up folds full pages of the log (KiB; default LOOKUPS_CATCH_UP_CACHE_KIB). */
  readonly catchUpCacheKiB?: number;
}

/**
 * The look-ups' page cache in service: the upper levels of the B-trees (a 1,000,000-person file of
 * 425 MB has about 4 MB of interior pages); a leaf is read from the operating system's file cache,
 * which is not the hub's memory. Kept small so that the hub's resident memory does not grow with the
 * population (I11).
 */
export const LOOKUPS_CACHE_KIB = 8 * 1024;
/** The page cache while a long catch-up (a new file over a long log) inserts at random into the B-trees. */
export const LOOKUPS_CATCH_UP_CACHE_KIB = 64 * 1024;
/** A batch of at least this many events is a page of a long catch-up (the views read pages of 2,000). */
export const CATCH_UP_BATCH = 1000;

/**
 * The look-ups the hub's commands consult, in one SQLite file with a stored checkpoint (I8, I11): who holds
 * which individual number digest, which citizen secret digests and passkeys admit whom, which agency a
 * credential digest names, the agency registry, the authorization and self-disclosure tables, and the
 * issued agency codes (the code mapper's fallback when Redis is down). Keyed by keyed hashes of the digests,
 * subject ids and codes enciphered (LookupSeal), so that the file reveals nothing without the hub's keys;
 * nothing of the population is held in memory: only the registry and the tables (a few rows) are kept parsed.
 * Rebuilt from the log when deleted; an erasure (KeysShredded) deletes the person's rows.
 */
export class SqliteLookupStore extends SqliteFold {
  readonly codes: SqliteCodeIndex;
  readonly #open: (event: RecordedEvent) => Opened;
  readonly #seal: LookupSeal;
  readonly #agencies = new Map<string, AgencyRegistryState>();
  /**
   * Active agencies by credential digest, derived from `#agencies` when first asked after it changed: every
   * authenticated request asks, and the registry changes rarely. The agency_credentials table holds the same
   * (keyed) and is still written, but no longer read: dropping it would change the file's layout and make every
   * hub rebuild lookups.db from the log at its next start, hours at national scale, for a table written only
   * on registry events.
   */
  #activeByCredential: Map<string, string> | undefined;
  #authorization: AuthorizationTablesState = initialAuthorizationTablesState();
  #selfDisclosure: SelfDisclosureTablesState = initialSelfDisclosureTablesState();
  readonly #s: Record<string, Database.Statement>;
  #position: number;
  #unwrittenSteps = 0;
  readonly #cacheKiB: number;
  readonly #catchUpCacheKiB: number;
  #catchingUp = false;

  constructor(options: LookupStoreOptions) {
    super({ path: options.path }, { name: 'the hub lookups', layoutVersion: 2, ddl: DDL, tables: TABLES, rows: { query: ROWS, key: 'k' } });
    this.#open = options.open;
    const seal = (this.#seal = options.seal);
    // A small page cache in service; a larger one only while a long catch-up runs (#cacheFor).
    this.#cacheKiB = positiveKiB(options.cacheKiB ?? LOOKUPS_CACHE_KIB, 'cacheKiB');
    this.#catchUpCacheKiB = positiveKiB(options.catchUpCacheKiB ?? LOOKUPS_CATCH_UP_CACHE_KIB, 'catchUpCacheKiB');
    this.db.pragma(`cache_size = -${this.#cacheKiB}`);
    this.codes = new SqliteCodeIndex(this.db, { subject: (x) => seal.subject(x), subjectOf: (b) => seal.subjectOf(b as Buffer), code: (c) => seal.code(c), codeOf: (b) => seal.codeOf(b) });
    const p = (sql: string) => this.db.prepare(sql);
    this.#s = {
      putNumber: p('INSERT INTO numbers (number_key, subject, current, municipality) VALUES (?, ?, ?, ?) ON CONFLICT (number_key) DO UPDATE SET subject = excluded.subject, current = excluded.current, municipality = excluded.municipality'),
      number: p('SELECT subject, current, municipality FROM numbers WHERE number_key = ?'),
      putSecret: p('INSERT INTO citizen_secrets (secret_key, subject) VALUES (?, ?) ON CONFLICT (secret_key) DO UPDATE SET subject = excluded.subject'),
      secret: p('SELECT subject FROM citizen_secrets WHERE secret_key = ?').pluck(),
      putAdmits: p('INSERT INTO citizen_secret_admits (subject, secret_key) VALUES (?, ?) ON CONFLICT (subject) DO UPDATE SET secret_key = excluded.secret_key'),
      admits: p('SELECT secret_key AS secretKey FROM citizen_secret_admits WHERE subject = ?'),
      putPasskey: p('INSERT OR REPLACE INTO passkeys (credential_key, subject, passkey_key, data, position) VALUES (?, ?, ?, ?, ?)'),
      passkey: p('SELECT p.subject, p.data, u.counter, u.last_used_at AS lastUsedAt FROM passkeys p LEFT JOIN passkey_use u ON u.credential_key = p.credential_key WHERE p.credential_key = ?'),
      passkeysOf: p('SELECT p.subject, p.data, u.counter, u.last_used_at AS lastUsedAt FROM passkeys p LEFT JOIN passkey_use u ON u.credential_key = p.credential_key WHERE p.subject = ? ORDER BY p.position'),
      passkeyOwner: p('SELECT subject FROM passkeys WHERE credential_key = ?').pluck(),
      passkeyById: p('SELECT credential_key FROM passkeys WHERE subject = ? AND passkey_key = ?').pluck(),
      dropPasskey: p('DELETE FROM passkeys WHERE credential_key = ?'),
      dropUse: p('DELETE FROM passkey_use WHERE credential_key = ?'),
      dropUsesOf: p('DELETE FROM passkey_use WHERE credential_key IN (SELECT credential_key FROM passkeys WHERE subject = ?)'),
      dropPasskeysOf: p('DELETE FROM passkeys WHERE subject = ?'),
      putUse: p('INSERT INTO passkey_use (credential_key, counter, last_used_at) SELECT credential_key, ?, ? FROM passkeys WHERE credential_key = ? ON CONFLICT (credential_key) DO UPDATE SET counter = excluded.counter, last_used_at = excluded.last_used_at'),
      forgetNumbers: p('DELETE FROM numbers WHERE subject = ?'),
      forgetSecrets: p('DELETE FROM citizen_secrets WHERE subject = ?'),
      forgetAdmits: p('DELETE FROM citizen_secret_admits WHERE subject = ?'),
      putAgency: p('INSERT INTO agencies (agency_id, state) VALUES (?, ?) ON CONFLICT (agency_id) DO UPDATE SET state = excluded.state'),
      putCredential: p('INSERT OR REPLACE INTO agency_credentials (credential_key, agency_id) VALUES (?, ?)'),
      dropCredential: p('DELETE FROM agency_credentials WHERE credential_key = ?'),
      putRevoked: p('INSERT OR REPLACE INTO revoked_agency_credentials (credential_key, agency_id) VALUES (?, ?)'),
      revoked: p('SELECT agency_id FROM revoked_agency_credentials WHERE credential_key = ?').pluck(),
      putTable: p('INSERT INTO table_states (name, state) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET state = excluded.state'),
      checkpoint: p(`SELECT value FROM fold_meta WHERE key = 'checkpoint'`).pluck(),
      setCheckpoint: p(`INSERT INTO fold_meta (key, value) VALUES ('checkpoint', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
    };
    // A file written under other keys (keys restored from elsewhere) cannot be read: it is emptied and refilled from the log.
    const fingerprint = seal.key('lookup-file', 'fingerprint').toString('hex');
    const stored = this.db.prepare(`SELECT value FROM fold_meta WHERE key = 'seal'`).pluck().get() as string | undefined;
    if (stored !== fingerprint) {
      if (stored !== undefined) this.db.exec(`${TABLES.map((t) => `DELETE FROM ${t};`).join(' ')} DELETE FROM fold_meta WHERE key = 'checkpoint';`);
      this.db.prepare(`INSERT INTO fold_meta (key, value) VALUES ('seal', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(fingerprint);
    }
    this.#position = this.#storedPosition();
    this.#loadSmallState();
  }

  /** The registry and the tables, parsed once from their rows (after a start, a reset, or a failed batch). */
  #loadSmallState(): void {
    this.#agencies.clear();
    this.#activeByCredential = undefined;
    for (const row of this.db.prepare('SELECT agency_id AS id, state FROM agencies').all() as { id: string; state: Buffer }[]) this.#agencies.set(row.id, JSON.parse(this.#seal.openRow(row.state)) as AgencyRegistryState);
    const table = (name: string) => this.db.prepare('SELECT state FROM table_states WHERE name = ?').pluck().get(name) as string | undefined;
    const authorization = table('authorization');
    this.#authorization = authorization === undefined ? initialAuthorizationTablesState() : (JSON.parse(authorization) as AuthorizationTablesState);
    const selfDisclosure = table('self-disclosure');
    this.#selfDisclosure = selfDisclosure === undefined ? initialSelfDisclosureTablesState() : (JSON.parse(selfDisclosure) as SelfDisclosureTablesState);
  }

  override async apply(events: readonly RecordedEvent[]): Promise<void> {
    this.checkOpen();
    this.#cacheFor(events.length);
    this.#writeSteps();
    try {
      await super.apply(events);
    } catch (error) {
      this.#loadSmallState(); // the batch was rolled back: so are the parsed rows
      throw error;
    } finally {
      this.#position = this.appliedPosition;
    }
  }

  override async reset(): Promise<void> {
    await super.reset();
    this.#unwrittenSteps = 0;
    this.#position = -1;
    this.#loadSmallState();
  }

  /**
   * The catch-up's page cache while full pages come in; back to the service size (and the pages beyond
   * it freed) at the first short batch, which is where a catch-up ends.
   */
  #cacheFor(batch: number): void {
    const catchingUp = batch >= CATCH_UP_BATCH;
    if (catchingUp === this.#catchingUp) return;
    this.#catchingUp = catchingUp;
    this.db.pragma(`cache_size = -${catchingUp ? this.#catchUpCacheKiB : this.#cacheKiB}`);
    if (!catchingUp) this.db.pragma('shrink_memory');
  }

  /** The page cache now (KiB): the service size, or the catch-up's while a long catch-up runs. */
  get cacheKiB(): number {
    return -Number(this.db.pragma('cache_size', { simple: true }));
  }

  #storedPosition(): number {
    const at = this.#s.checkpoint!.get() as string | undefined;
    return at === undefined ? -1 : Number(at);
  }

  /**
   * Moves the checkpoint over positions `first`…`last` without reading them, when it stands just before
   * them: the caller knows they hold no event of LOOKUP_TYPES (its own appends). False otherwise.
   */
  stepOver(first: number, last: number): boolean {
    this.checkOpen();
    if (this.#position !== first - 1) return false;
    this.#position = last;
    this.passedOver(last);
    // Written lazily (before the next batch, every so many steps, at close): a checkpoint that lags only
    // means a restart reads those events again, and they change nothing here.
    if (++this.#unwrittenSteps >= 1000) this.#writeSteps();
    return true;
  }

  override async checkpoint(): Promise<number> {
    this.checkOpen();
    return this.#position;
  }

  /** Position of the last event folded or stepped over, -1 before any (synchronous). */
  get position(): number {
    return this.#position;
  }

  #writeSteps(): void {
    if (this.#unwrittenSteps === 0) return;
    this.#unwrittenSteps = 0;
    this.#s.setCheckpoint!.run(String(this.#position));
  }

  override async close(): Promise<void> {
    try {
      this.#writeSteps();
    } catch {
      // closed already
    }
    await super.close();
  }

  protected applyEvent(stored: RecordedEvent): void {
    if (!LOOKUP_TYPES.has(stored.type)) return;
    // Only the types folded here are opened (I10: their digests and subject ids are sealed).
    const { state, event } = this.#open(stored);
    if (state === 'shredded') return; // an erased person: nothing of them is looked up any more
    if (REGISTRY_TYPES.has(event.type)) return this.#applyRegistry(event as unknown as Evolvable<AgencyRegistryEvent>);
    const s = this.#s;
    const seal = this.#seal;
    switch (event.type) {
      case 'AuthorizationTablePublished':
      case 'AuthorizationTableWithdrawn':
        this.#authorization = evolveAuthorizationTables(this.#authorization, event as unknown as Evolvable<AuthorizationTableEvent>);
        s.putTable!.run('authorization', JSON.stringify(this.#authorization));
        return;
      case 'SelfDisclosureTablePublished':
        this.#selfDisclosure = evolveSelfDisclosureTables(this.#selfDisclosure, event as unknown as Evolvable<SelfDisclosureTablePublished>);
        s.putTable!.run('self-disclosure', JSON.stringify(this.#selfDisclosure));
        return;
      case 'IndividualNumberIssued': {
        const d = event.data as { subjectId: SubjectId; numberDigest: string; citizenCredentialDigest?: string; municipalityCode?: string };
        const subject = seal.subject(d.subjectId);
        s.putNumber!.run(seal.key(NUMBER, d.numberDigest), subject, 1, d.municipalityCode ?? null);
        if (d.citizenCredentialDigest !== undefined) s.putSecret!.run(seal.key(SECRET, d.citizenCredentialDigest), subject);
        return;
      }
      case 'IndividualNumberChanged': {
        const d = event.data as { subjectId: SubjectId; previousNumberDigest: string; numberDigest: string };
        const previousKey = seal.key(NUMBER, d.previousNumberDigest);
        const previous = s.number!.get(previousKey) as { municipality: string | null } | undefined;
        const municipality = previous?.municipality ?? null;
        const subject = seal.subject(d.subjectId);
        s.putNumber!.run(previousKey, subject, 0, municipality);
        s.putNumber!.run(seal.key(NUMBER, d.numberDigest), subject, 1, municipality);
        return;
      }
      case 'KeysShredded': {
        // An erasure: the person's numbers identify nobody any more, their secrets and passkeys admit nobody, their codes translate to nothing.
        const d = event.data as { scope?: string; subject?: string };
        if (d.scope !== 'erasure' || d.subject === undefined) return;
        const subject = seal.subject(d.subject);
        s.forgetNumbers!.run(subject);
        s.forgetSecrets!.run(subject);
        s.forgetAdmits!.run(subject);
        this.#dropPasskeys(subject);
        this.codes.forget(d.subject);
        return;
      }
      case 'CitizenPasskeyEnrolled': {
        const d = event.data as unknown as CitizenPasskeyEnrolledData;
        const subject = seal.subject(d.subjectId);
        const credentialKey = seal.key(CREDENTIAL_ID, d.credential.id);
        const data: PasskeyData = { passkeyId: d.passkeyId, credential: d.credential, ...(d.label === undefined ? {} : { label: d.label }), createdAt: d.enrolledAt };
        s.dropUse!.run(credentialKey);
        s.putPasskey!.run(credentialKey, subject, seal.key(PASSKEY_ID, `${d.subjectId}\0${d.passkeyId}`), seal.row(JSON.stringify(data)), stored.position);
        if (d.secretRetired) s.putAdmits!.run(subject, null);
        return;
      }
      case 'CitizenPasskeyRemoved': {
        const d = event.data as unknown as CitizenPasskeyRemovedData;
        const credentialKey = s.passkeyById!.get(seal.subject(d.subjectId), seal.key(PASSKEY_ID, `${d.subjectId}\0${d.passkeyId}`)) as Buffer | undefined;
        if (credentialKey === undefined) return;
        s.dropUse!.run(credentialKey);
        s.dropPasskey!.run(credentialKey);
        return;
      }
      case 'CitizenEnrolmentSecretIssued': {
        // A new enrolment secret: every passkey of the person goes, and only the new secret admits them.
        const d = event.data as unknown as CitizenEnrolmentSecretIssuedData;
        const subject = seal.subject(d.subjectId);
        const secretKey = seal.key(SECRET, d.credentialDigest);
        s.putSecret!.run(secretKey, subject);
        this.#dropPasskeys(subject);
        s.putAdmits!.run(subject, secretKey);
        return;
      }
      case AGENCY_CODE_ISSUED: {
        const issued = issuedCodeOf(event);
        if (issued !== undefined) this.codes.record(issued);
        return;
      }
      default:
        return;
    }
  }

  #dropPasskeys(subject: Buffer): void {
    this.#s.dropUsesOf!.run(subject);
    this.#s.dropPasskeysOf!.run(subject);
  }

  #applyRegistry(event: Evolvable<AgencyRegistryEvent>): void {
    const s = this.#s;
    const seal = this.#seal;
    const agencyId = event.data.agencyId;
    const before = this.#agencies.get(agencyId) ?? initialAgencyRegistryState();
    const after = evolveAgencyRegistry(before, event);
    this.#agencies.set(agencyId, after);
    this.#activeByCredential = undefined;
    s.putAgency!.run(agencyId, seal.row(JSON.stringify(after)));
    if (before.status !== 'unregistered') s.dropCredential!.run(seal.key(AGENCY_CREDENTIAL, before.agency.credentialDigest));
    if (after.status === 'active') s.putCredential!.run(seal.key(AGENCY_CREDENTIAL, after.agency.credentialDigest), agencyId);
    if (after.status === 'revoked') s.putRevoked!.run(seal.key(AGENCY_CREDENTIAL, after.agency.credentialDigest), agencyId);
  }

  // ---- look-ups (synchronous prepared-statement reads) ----

  agency(agencyId: string): AgencyRegistryState {
    return this.#agencies.get(agencyId) ?? initialAgencyRegistryState();
  }

  agencies(): AgencyRegistryState[] {
    return [...this.#agencies.values()];
  }

  agencyByCredential(digest: string): string | undefined {
    let active = this.#activeByCredential;
    if (active === undefined) {
      active = new Map();
      for (const [agencyId, state] of this.#agencies) if (state.status === 'active') active.set(state.agency.credentialDigest, agencyId);
      this.#activeByCredential = active;
    }
    return active.get(digest);
  }

  revokedAgencyByCredential(digest: string): string | undefined {
    return this.#s.revoked!.get(this.#seal.key(AGENCY_CREDENTIAL, digest)) as string | undefined;
  }

  authorizationTables(): AuthorizationTablesState {
    return this.#authorization;
  }

  selfDisclosureTables(): SelfDisclosureTablesState {
    return this.#selfDisclosure;
  }

  holderOf(numberDigest: string): NumberHolder | undefined {
    const row = this.#s.number!.get(this.#seal.key(NUMBER, numberDigest)) as { subject: Buffer; current: number; municipality: string | null } | undefined;
    if (row === undefined) return undefined;
    return { subjectId: this.#seal.subjectOf(row.subject), current: row.current === 1, ...(row.municipality === null ? {} : { municipalityCode: row.municipality }) };
  }

  /** The person a citizen secret digest was issued to (whether or not it still admits them). */
  secretHolder(digest: string): SubjectId | undefined {
    const subject = this.#s.secret!.get(this.#seal.key(SECRET, digest)) as Buffer | undefined;
    return subject === undefined ? undefined : this.#seal.subjectOf(subject);
  }

  /**
   * Which secret admits the person: absent, the one issued with their number; a key, only that
   * (re-issued) one; null, none any more (retired by their first passkey).
   */
  #admitted(subjectId: string): { readonly secretKey: Buffer | null } | undefined {
    return this.#s.admits!.get(this.#seal.subject(subjectId)) as { secretKey: Buffer | null } | undefined;
  }

  /** Whether a secret digest that names this person still admits them. */
  secretAdmits(subjectId: string, digest: string): boolean {
    const admitted = this.#admitted(subjectId);
    return admitted === undefined || (admitted.secretKey !== null && admitted.secretKey.equals(this.#seal.key(SECRET, digest)));
  }

  /** Whether the person still holds a secret that admits them (none once a passkey retired it). */
  holdsSecret(subjectId: string): boolean {
    return this.#admitted(subjectId)?.secretKey !== null;
  }

  passkeyByCredentialId(credentialId: string): KnownPasskey | undefined {
    const row = this.#s.passkey!.get(this.#seal.key(CREDENTIAL_ID, credentialId)) as PasskeyRow | undefined;
    return row === undefined ? undefined : this.#passkeyOf(row);
  }

  passkeysOf(subjectId: string): KnownPasskey[] {
    return (this.#s.passkeysOf!.all(this.#seal.subject(subjectId)) as PasskeyRow[]).map((r) => this.#passkeyOf(r));
  }

  /** Whether this passkey (by credential id) is still the person's. */
  holdsPasskey(subjectId: string, credentialId: string): boolean {
    const subject = this.#s.passkeyOwner!.get(this.#seal.key(CREDENTIAL_ID, credentialId)) as Buffer | undefined;
    return subject !== undefined && subject.equals(this.#seal.subject(subjectId));
  }

  /**
   * A verified sign-in: the passkey's signature counter and the time. Not a fold of the log (a rebuild
   * starts again from the counter enrolled), so it is kept beside the folded rows and left out of `digest()`.
   */
  passkeyUsed(credentialId: string, counter: number, at: string): void {
    this.checkOpen();
    this.#s.putUse!.run(counter, at, this.#seal.key(CREDENTIAL_ID, credentialId));
  }

  #passkeyOf(row: PasskeyRow): KnownPasskey {
    const data = JSON.parse(this.#seal.openRow(row.data)) as PasskeyData;
    return {
      subjectId: this.#seal.subjectOf(row.subject),
      passkeyId: data.passkeyId,
      credential: data.credential,
      label: data.label,
      createdAt: data.createdAt,
      counter: row.counter ?? data.credential.counter,
      lastUsedAt: row.lastUsedAt ?? undefined,
    };
  }
}

/** Domains of the look-up keys (LookupSeal.key). */
const NUMBER = 'individual-number-digest';
const SECRET = 'citizen-secret-digest';
const AGENCY_CREDENTIAL = 'agency-credential-digest';
const CREDENTIAL_ID = 'passkey-credential-id';
const PASSKEY_ID = 'passkey-id';

/** A passkey's row, sealed (LookupSeal.row). */
interface PasskeyData {
  readonly passkeyId: string;
  readonly credential: PasskeyCredential;
  readonly label?: string;
  readonly createdAt: string;
}

interface PasskeyRow {
  readonly subject: Buffer;
  readonly data: Buffer;
  readonly counter: number | null;
  readonly lastUsedAt: string | null;
}

function positiveKiB(kib: number, name: string): number {
  if (!Number.isSafeInteger(kib) || kib < 64) throw new RangeError(`${name} must be an integer number of KiB, at least 64, got ${kib}`);
  return kib;
}
