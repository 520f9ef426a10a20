import type { RecordedEvent } from '#ledger';
import type { NoticeSentData } from '#linkage';
import { ProjectionError } from './errors.js';
import { SqliteFold, type SqliteFoldOptions } from './sqlite-fold.js';

/** The inbox file in the hub's data directory, beside the ledger. */
export const NOTICE_INBOX_FILE = 'notices.sqlite';
export const NOTICE_INBOX_LAYOUT_VERSION = 3;
export const DEFAULT_NOTICE_LIMIT = 100;
export const MAX_NOTICE_LIMIT = 1000;

/**
 * One notice as the inbox keeps it: the text still sealed (the hub opens it for its citizen only), as the
 * event's sealed section (`schemaVersion` 2) or, for logs written before sealing, the vault's sealed value (1).
 */
export interface StoredNotice {
  readonly noticeId: string;
  readonly serial: string;
  readonly agencyId: string;
  readonly schemaVersion: number;
  readonly sealed: Readonly<Record<string, unknown>>;
  readonly sentAt: string;
  /** When the person first read it (NoticeRead), or null. */
  readonly readAt: string | null;
}

export interface NoticeInboxOptions extends SqliteFoldOptions {
  /** What the file keeps for a person instead of their subject id (the hub: the id of their key, I10). */
  readonly subjectRef: (subjectId: string) => string;
  /**
   * The person a NoticeSent is for, as the file keeps them, read without opening it (the hub: libs/sealing
   * `referenceOf`); 'shredded' to skip it. Default: `subjectRef` of the subject id in the event's data.
   */
  readonly personOf?: (event: RecordedEvent) => string | null | 'shredded';
  /** Opens a KeysShredded event (its erased subject is sealed, I10). Default: as stored. */
  readonly open?: (event: RecordedEvent) => RecordedEvent;
}

export interface NoticePage {
  readonly notices: StoredNotice[];
  /** Present when older notices remain: pass it as `before`. */
  readonly next?: string;
  /** How many of the person's notices (all of them, not only this page's) are unread. */
  readonly unread: number;
}

const DDL = `
CREATE TABLE IF NOT EXISTS notices (
  position INTEGER PRIMARY KEY,
  notice_id TEXT NOT NULL UNIQUE,
  serial TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  agency_id TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  sealed TEXT NOT NULL,
  sent_at TEXT NOT NULL,
  sent_ms INTEGER NOT NULL,
  read_at TEXT
);
CREATE INDEX IF NOT EXISTS notices_by_subject ON notices (subject_id, position);
CREATE INDEX IF NOT EXISTS notices_by_time ON notices (sent_ms);
CREATE INDEX IF NOT EXISTS notices_unread ON notices (subject_id) WHERE read_at IS NULL;
`;

interface Row {
  position: number;
  notice_id: string;
  serial: string;
  agency_id: string;
  schema_version: number;
  sealed: string;
  sent_at: string;
  read_at: string | null;
}

/**
 * Each citizen's notices (お知らせ): a projection of NoticeSent events in its own SQLite file with a
 * stored checkpoint (I8). It never holds a notice's text in the clear: rows keep the sealed value of the
 * event. Newest first, paged by log position. A NoticeRead event (on the notice's stream) sets the row's
 * read time once: the first read is kept, as the hub records only one. The unread count is one range of a
 * partial index (the person's unread rows).
 */
export class SqliteNoticeInbox extends SqliteFold {
  readonly #stmt;
  readonly #subjectRef: (subjectId: string) => string;
  readonly #personOf: (event: RecordedEvent) => string | null | 'shredded';
  readonly #open: (event: RecordedEvent) => RecordedEvent;

  constructor(options: NoticeInboxOptions) {
    super(options, {
      name: 'the notice inbox',
      layoutVersion: NOTICE_INBOX_LAYOUT_VERSION,
      ddl: DDL,
      tables: ['notices'],
      rows: { query: 'SELECT position, notice_id, serial, subject_id, agency_id, schema_version, sealed, sent_at, sent_ms, read_at FROM notices ORDER BY position', key: 'notice_id' },
    });
    this.#subjectRef = options.subjectRef;
    this.#open = options.open ?? ((e) => e);
    this.#personOf =
      options.personOf ??
      ((e) => {
        const d = e.data as { subjectId?: unknown; sealed?: unknown } | null;
        if (d?.sealed === 'shredded') return 'shredded';
        return typeof d?.subjectId === 'string' ? this.#subjectRef(d.subjectId) : null;
      });
    this.#stmt = {
      insert: this.db.prepare('INSERT OR IGNORE INTO notices (position, notice_id, serial, subject_id, agency_id, schema_version, sealed, sent_at, sent_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      page: this.db.prepare('SELECT position, notice_id, serial, agency_id, schema_version, sealed, sent_at, read_at FROM notices WHERE subject_id = ? AND position < ? ORDER BY position DESC LIMIT ?'),
      unread: this.db.prepare('SELECT count(*) FROM notices INDEXED BY notices_unread WHERE subject_id = ? AND read_at IS NULL').pluck(),
      one: this.db.prepare('SELECT position, notice_id, serial, agency_id, schema_version, sealed, sent_at, read_at FROM notices WHERE notice_id = ? AND subject_id = ?'),
      read: this.db.prepare('UPDATE notices SET read_at = ? WHERE notice_id = ? AND subject_id = ? AND read_at IS NULL'),
      forgetBefore: this.db.prepare('DELETE FROM notices WHERE sent_ms < ?'),
      forgetSubject: this.db.prepare('DELETE FROM notices WHERE subject_id = ?'),
    };
  }

  protected applyEvent(event: RecordedEvent): void {
    if (event.type === 'KeysShredded' && event.streamId === 'keys-shredded') return this.#forget(this.#open(event));
    if (event.type === 'NoticeRead') return this.#read(event);
    if (event.type !== 'NoticeSent') return;
    const person = this.#personOf(event);
    // Its key was shredded: nothing left to show (a rebuild skips it, as the live inbox forgot it).
    if (person === 'shredded' || person === null) return;
    const d = event.data as Omit<NoticeSentData, 'subjectId'>;
    // The row keeps the text sealed: the stored event's sealed section (or, before sealing, the vault's value).
    this.#stmt.insert.run(event.position, d.noticeId, event.serial, person, d.agencyId, event.schemaVersion, JSON.stringify(d.sealed), d.sentAt, Date.parse(d.sentAt));
  }

  /** The person's first read of their notice (a later one, or one of a notice not theirs or forgotten, changes nothing). */
  #read(event: RecordedEvent): void {
    const person = this.#personOf(event);
    if (person === 'shredded' || person === null) return;
    const d = event.data as { noticeId?: unknown; readAt?: unknown };
    if (typeof d.noticeId !== 'string' || typeof d.readAt !== 'string') return;
    this.#stmt.read.run(d.readAt, d.noticeId, person);
  }

  #forget(event: RecordedEvent): void {
    const d = event.data as { scope?: unknown; throughEpoch?: unknown; subject?: unknown };
    if (d.scope === 'retention' && typeof d.throughEpoch === 'number') this.#stmt.forgetBefore.run(Date.UTC(d.throughEpoch + 1, 0, 1) - 9 * 3600 * 1000);
    else if (d.scope === 'erasure' && typeof d.subject === 'string') this.#stmt.forgetSubject.run(this.#subjectRef(d.subject));
  }

  /** A citizen's notices, newest first; `before` is the `next` of the previous page. */
  async notices(subjectId: string, options: { readonly limit?: number; readonly before?: string } = {}): Promise<NoticePage> {
    this.checkOpen();
    const limit = options.limit ?? DEFAULT_NOTICE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_NOTICE_LIMIT) throw new ProjectionError('INVALID_ARGUMENT', `limit must be an integer from 1 to ${MAX_NOTICE_LIMIT}`);
    const before = options.before === undefined ? Number.MAX_SAFE_INTEGER : Number(options.before);
    if (!Number.isSafeInteger(before) || before < 0) throw new ProjectionError('INVALID_ARGUMENT', 'before must be the next value of the previous page');
    const ref = this.#subjectRef(subjectId);
    const read = this.db.transaction(() => ({ rows: this.#stmt.page.all(ref, before, limit + 1) as Row[], unread: this.#stmt.unread.get(ref) as number }));
    const { rows, unread } = read();
    const notices = rows.slice(0, limit).map(storedNotice);
    return rows.length > limit ? { notices, next: String(rows[limit - 1]!.position), unread } : { notices, unread };
  }

  /** One notice of the person's, or undefined (not theirs, unknown, or forgotten). */
  async notice(subjectId: string, noticeId: string): Promise<StoredNotice | undefined> {
    this.checkOpen();
    const row = this.#stmt.one.get(noticeId, this.#subjectRef(subjectId)) as Row | undefined;
    return row === undefined ? undefined : storedNotice(row);
  }
}

function storedNotice(r: Row): StoredNotice {
  return { noticeId: r.notice_id, serial: r.serial, agencyId: r.agency_id, schemaVersion: r.schema_version, sealed: JSON.parse(r.sealed) as Record<string, unknown>, sentAt: r.sent_at, readAt: r.read_at };
}
