import type { RecordedEvent } from '#ledger';
import type { NoticeSentData } from '#linkage';
import { ProjectionError } from './errors.js';
import { SqliteFold, type SqliteFoldOptions } from './sqlite-fold.js';

/** The inbox file in the hub's data directory, beside the ledger. */
export const NOTICE_INBOX_FILE = 'notices.sqlite';
export const NOTICE_INBOX_LAYOUT_VERSION = 1;
export const DEFAULT_NOTICE_LIMIT = 100;
export const MAX_NOTICE_LIMIT = 1000;

/** One notice as the inbox keeps it: the text still sealed (the hub opens it for its citizen only). */
export interface StoredNotice {
  readonly noticeId: string;
  readonly serial: string;
  readonly agencyId: string;
  readonly sealed: Readonly<Record<string, string>>;
  readonly sentAt: string;
}

export interface NoticePage {
  readonly notices: StoredNotice[];
  /** Present when older notices remain: pass it as `before`. */
  readonly next?: string;
}

const DDL = `
CREATE TABLE IF NOT EXISTS notices (
  position INTEGER PRIMARY KEY,
  notice_id TEXT NOT NULL UNIQUE,
  serial TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  agency_id TEXT NOT NULL,
  sealed TEXT NOT NULL,
  sent_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_by_subject ON notices (subject_id, position);
`;

interface Row {
  position: number;
  notice_id: string;
  serial: string;
  agency_id: string;
  sealed: string;
  sent_at: string;
}

/**
 * Each citizen's notices (お知らせ): a projection of NoticeSent events in its own SQLite file with a
 * stored checkpoint (I8). It never holds a notice's text in the clear: rows keep the sealed value of the
 * event. Newest first, paged by log position.
 */
export class SqliteNoticeInbox extends SqliteFold {
  readonly #stmt;

  constructor(options: SqliteFoldOptions) {
    super(options, {
      name: 'the notice inbox',
      layoutVersion: NOTICE_INBOX_LAYOUT_VERSION,
      ddl: DDL,
      tables: ['notices'],
      rows: { query: 'SELECT position, notice_id, serial, subject_id, agency_id, sealed, sent_at FROM notices ORDER BY position', key: 'notice_id' },
    });
    this.#stmt = {
      insert: this.db.prepare('INSERT OR IGNORE INTO notices (position, notice_id, serial, subject_id, agency_id, sealed, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      page: this.db.prepare('SELECT position, notice_id, serial, agency_id, sealed, sent_at FROM notices WHERE subject_id = ? AND position < ? ORDER BY position DESC LIMIT ?'),
    };
  }

  protected applyEvent(event: RecordedEvent): void {
    if (event.type !== 'NoticeSent') return;
    const d = event.data as NoticeSentData;
    this.#stmt.insert.run(event.position, d.noticeId, event.serial, d.subjectId, d.agencyId, JSON.stringify(d.sealed), d.sentAt);
  }

  /** A citizen's notices, newest first; `before` is the `next` of the previous page. */
  async notices(subjectId: string, options: { readonly limit?: number; readonly before?: string } = {}): Promise<NoticePage> {
    this.checkOpen();
    const limit = options.limit ?? DEFAULT_NOTICE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_NOTICE_LIMIT) throw new ProjectionError('INVALID_ARGUMENT', `limit must be an integer from 1 to ${MAX_NOTICE_LIMIT}`);
    const before = options.before === undefined ? Number.MAX_SAFE_INTEGER : Number(options.before);
    if (!Number.isSafeInteger(before) || before < 0) throw new ProjectionError('INVALID_ARGUMENT', 'before must be the next value of the previous page');
    const rows = this.#stmt.page.all(subjectId, before, limit + 1) as Row[];
    const notices = rows.slice(0, limit).map((r) => ({ noticeId: r.notice_id, serial: r.serial, agencyId: r.agency_id, sealed: JSON.parse(r.sealed) as Record<string, string>, sentAt: r.sent_at }));
    return rows.length > limit ? { notices, next: String(rows[limit - 1]!.position) } : { notices };
  }
}
