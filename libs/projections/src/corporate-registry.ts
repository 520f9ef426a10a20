import type { RecordedEvent } from '#ledger';
import {
  CORPORATE_KINDS,
  CORPORATE_KIND_LABELS,
  corporateChangeEntry,
  type CorporateChange,
  type CorporateKind,
  type CorporateNumberChangedData,
  type CorporateNumberClosedData,
  type CorporateNumberDesignatedData,
} from '#numbering';
import { ProjectionError } from './errors.js';
import { SqliteFold, type SqliteFoldOptions } from './sqlite-fold.js';

/** The registry's file in the hub's data directory, beside the ledger. */
export const CORPORATE_REGISTRY_FILE = 'corporate-registry.sqlite';
/**
 * Bumped when the tables change shape: an old file is then rebuilt from the log, not misread.
 * 2: status, closure and change history (商号・所在地の変更, 閉鎖); names_key holds every name a corporation had.
 */
export const CORPORATE_REGISTRY_LAYOUT_VERSION = 2;
export const DEFAULT_CORPORATE_LIMIT = 100;
export const MAX_CORPORATE_LIMIT = 1000;

/** One designated corporation as the public lookup shows it (corporate numbers, names and locations are public). */
export interface Corporation {
  readonly corporateNumber: string;
  readonly name: string;
  readonly location: string;
  readonly kind: CorporateKind;
  /** 株式会社, 合同会社, … */
  readonly kindLabel: string;
  readonly designatedAt: string;
  /** `closed` once its record was closed (閉鎖); the number stays public. */
  readonly status: CorporateStatus;
  /** YYYY-MM-DD: the day of the closure, or null. */
  readonly closedOn: string | null;
  /** RFC 3339: when the hub recorded the closure, or null. */
  readonly closedAt: string | null;
  /** Why the record was closed, or null. */
  readonly closeReason: string | null;
  /** The changes of name or location, oldest first (each with the previous and the current value). */
  readonly history: readonly CorporateChange[];
}

export const CORPORATE_STATUSES = ['active', 'closed'] as const;
export type CorporateStatus = (typeof CORPORATE_STATUSES)[number];

export interface CorporateSearch {
  /** Part of the current or a former name, matched after folding (NFKC, case, white space removed): ｶﾌﾞｼｷ finds カブシキ. */
  readonly name?: string;
  /** The beginning of the location, folded the same way: 北海道室蘭市 finds every corporation there. */
  readonly location?: string;
  readonly kind?: CorporateKind;
  /** 1–1000, default 100. */
  readonly limit?: number;
  /** The `next` of the previous page: results come in corporate number order. */
  readonly after?: string;
}

export interface CorporatePage {
  readonly corporations: Corporation[];
  /** Present when more match: pass it as `after`. */
  readonly next?: string;
}

/**
 * Folds a name or location for matching: NFKC (full-width and half-width forms, ㈱ → (株)), lower case,
 * and no white space (ASCII or U+3000), so the way a user types it does not decide whether it is found.
 */
export function foldForSearch(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/[\s\u3000]+/gu, '');
}

const DDL = `
CREATE TABLE IF NOT EXISTS corporations (
  corporate_number TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  location TEXT NOT NULL,
  kind TEXT NOT NULL,
  designated_at TEXT NOT NULL,
  status TEXT NOT NULL,
  closed_on TEXT,
  closed_at TEXT,
  close_reason TEXT,
  history TEXT NOT NULL,
  names_key TEXT NOT NULL,
  location_key TEXT NOT NULL,
  position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS corporations_by_location ON corporations (location_key, corporate_number);
CREATE INDEX IF NOT EXISTS corporations_by_kind ON corporations (kind, corporate_number);
`;

interface Row {
  corporate_number: string;
  name: string;
  location: string;
  kind: CorporateKind;
  designated_at: string;
  status: CorporateStatus;
  closed_on: string | null;
  closed_at: string | null;
  close_reason: string | null;
  history: string;
}

const COLUMNS = 'corporate_number, name, location, kind, designated_at, status, closed_on, closed_at, close_reason, history';

/** Folded names, one per line: folding removes white space, so no search key spans two names. */
const NAME_SEPARATOR = '\n';

/** `%`, `_` and the escape itself, escaped for LIKE … ESCAPE '\\'. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The public corporate number registry (法人番号公表): a projection of CorporateNumberDesignated,
 * CorporateNumberChanged and CorporateNumberClosed events in its own SQLite file with a stored checkpoint
 * (I8): each corporation's current name and location, its status and closure, and its change history;
 * searchable by current or former name, current location and kind, page by page (the CSV download walks the pages). Rows are keyed by corporate number, so a rebuild from the log gives the same file
 * content.
 */
export class SqliteCorporateRegistry extends SqliteFold {
  readonly #stmt;

  constructor(options: SqliteFoldOptions) {
    super(options, {
      name: 'the corporate registry',
      layoutVersion: CORPORATE_REGISTRY_LAYOUT_VERSION,
      ddl: DDL,
      tables: ['corporations'],
      rows: { query: `SELECT ${COLUMNS} FROM corporations ORDER BY corporate_number`, key: 'corporate_number' },
    });
    this.#stmt = {
      insert: this.db.prepare(
        `INSERT OR IGNORE INTO corporations (corporate_number, name, location, kind, designated_at, status, history, names_key, location_key, position) VALUES (?, ?, ?, ?, ?, 'active', '[]', ?, ?, ?)`,
      ),
      get: this.db.prepare('SELECT name, location, history, names_key FROM corporations WHERE corporate_number = ?'),
      change: this.db.prepare('UPDATE corporations SET name = ?, location = ?, history = ?, names_key = ?, location_key = ? WHERE corporate_number = ?'),
      close: this.db.prepare(`UPDATE corporations SET status = 'closed', closed_on = ?, closed_at = ?, close_reason = ? WHERE corporate_number = ?`),
    };
  }

  protected applyEvent(event: RecordedEvent): void {
    switch (event.type) {
      case 'CorporateNumberDesignated': {
        const d = event.data as CorporateNumberDesignatedData;
        this.#stmt.insert.run(d.corporateNumber, d.name, d.location, d.kind, d.designatedAt, foldForSearch(d.name), foldForSearch(d.location), event.position);
        return;
      }
      case 'CorporateNumberChanged': {
        const d = event.data as CorporateNumberChangedData;
        const row = this.#stmt.get.get(d.corporateNumber) as { name: string; location: string; history: string; names_key: string } | undefined;
        if (row === undefined) return;
        const entry = corporateChangeEntry(d);
        const name = entry.name?.current ?? row.name;
        const location = entry.location?.current ?? row.location;
        const names = row.names_key.split(NAME_SEPARATOR);
        if (!names.includes(foldForSearch(name))) names.push(foldForSearch(name));
        const history = [...(JSON.parse(row.history) as CorporateChange[]), entry];
        this.#stmt.change.run(name, location, JSON.stringify(history), names.join(NAME_SEPARATOR), foldForSearch(location), d.corporateNumber);
        return;
      }
      case 'CorporateNumberClosed': {
        const d = event.data as CorporateNumberClosedData;
        this.#stmt.close.run(d.closedOn, d.closedAt, d.reason, d.corporateNumber);
        return;
      }
      default:
        return;
    }
  }

  /** One page of the corporations that match every criterion given, in corporate number order. */
  async search(criteria: CorporateSearch = {}): Promise<CorporatePage> {
    const limit = criteria.limit ?? DEFAULT_CORPORATE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CORPORATE_LIMIT) {
      throw new ProjectionError('INVALID_ARGUMENT', `limit must be an integer from 1 to ${MAX_CORPORATE_LIMIT}`);
    }
    const rows = this.#rows(criteria, limit + 1);
    const page = rows.slice(0, limit).map(toCorporation);
    return rows.length > limit ? { corporations: page, next: page.at(-1)!.corporateNumber } : { corporations: page };
  }

  #rows(criteria: Omit<CorporateSearch, 'limit'>, limit: number): Row[] {
    this.checkOpen();
    if (criteria.kind !== undefined && !(CORPORATE_KINDS as readonly string[]).includes(criteria.kind)) {
      throw new ProjectionError('INVALID_ARGUMENT', `kind must be one of ${CORPORATE_KINDS.join(', ')}`);
    }
    const where: string[] = [];
    const params: unknown[] = [];
    if (criteria.name !== undefined) {
      const key = foldForSearch(criteria.name);
      if (key.length === 0) throw new ProjectionError('INVALID_ARGUMENT', 'name must contain more than white space');
      where.push(`names_key LIKE ? ESCAPE '\\'`);
      params.push(`%${likeLiteral(key)}%`);
    }
    if (criteria.location !== undefined) {
      const key = foldForSearch(criteria.location);
      if (key.length === 0) throw new ProjectionError('INVALID_ARGUMENT', 'location must contain more than white space');
      where.push(`location_key LIKE ? ESCAPE '\\'`);
      params.push(`${likeLiteral(key)}%`);
    }
    if (criteria.kind !== undefined) {
      where.push('kind = ?');
      params.push(criteria.kind);
    }
    if (criteria.after !== undefined) {
      where.push('corporate_number > ?');
      params.push(criteria.after);
    }
    const sql =
      `SELECT ${COLUMNS} FROM corporations` +
      (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY corporate_number LIMIT ${limit}`;
    return this.db.prepare(sql).all(...params) as Row[];
  }
}

function toCorporation(row: Row): Corporation {
  return {
    corporateNumber: row.corporate_number,
    name: row.name,
    location: row.location,
    kind: row.kind,
    kindLabel: CORPORATE_KIND_LABELS[row.kind],
    designatedAt: row.designated_at,
    status: row.status,
    closedOn: row.closed_on,
    closedAt: row.closed_at,
    closeReason: row.close_reason,
    history: JSON.parse(row.history) as CorporateChange[],
  };
}

/**
 * The columns of the download: the designation, then, as the National Tax Agency's publication does, the
 * status with the closure (閉鎖年月日, 閉鎖事由) and the latest change (変更年月日, 変更事由); empty when none.
 */
const CSV_COLUMNS = [
  'corporate_number',
  'name',
  'location',
  'kind',
  'kind_label',
  'designated_at',
  'status',
  'closed_on',
  'close_reason',
  'latest_change_on',
  'latest_change_reason',
] as const;

/** One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The CSV header line (RFC 4180, CRLF). */
export const CORPORATE_CSV_HEADER = `${CSV_COLUMNS.join(',')}\r\n`;

/** One corporation as a CSV line (RFC 4180, CRLF). */
export function corporateCsvLine(c: Corporation): string {
  const latest = c.history.at(-1);
  const fields = [c.corporateNumber, c.name, c.location, c.kind, c.kindLabel, c.designatedAt, c.status, c.closedOn ?? '', c.closeReason ?? '', latest?.effectiveOn ?? '', latest?.reason ?? ''];
  return `${fields.map(csvField).join(',')}\r\n`;
}
