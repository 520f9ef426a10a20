import type { ProvisionStatus } from './provision-record.js';
import type { CitizenRecord } from './views.js';

/**
 * A citizen's provision records as CSV for download (RFC 4180: CRLF line ends, fields holding a comma, a
 * quote or a line break quoted, quotes doubled), in Japanese for the person, UTF-8 with a byte order mark so
 * that spreadsheet software opens it as UTF-8. Names as the record holds them (those of the time); a name
 * the record does not know is given by its code.
 */

/** The UTF-8 byte order mark the download starts with. */
export const CSV_BOM = '\ufeff';

export const CITIZEN_CSV_COLUMNS = ['日時（日本時間）', '処理通番', '種別', '照会機関', '提供機関', '事務手続', '情報項目', '結果'] as const;

export const OUTCOME_LABELS: Readonly<Record<ProvisionStatus, string>> = {
  pending: '処理中',
  answered: '提供済み',
  'refused-by-provider': '提供機関が提供せず',
  denied: '不許可',
  failed: '失敗',
  voided: '無効',
  delivered: 'お知らせ済み',
  abandoned: 'お知らせできず',
};

export const KIND_LABELS: Readonly<Record<CitizenRecord['kind'], string>> = { query: '情報照会', 'self-information': '自己情報表示', push: '更新のお知らせ（プッシュ）' };

/** Who asked, when the person did themself. */
export const SELF_REQUESTER_LABEL = '本人';

/** One CSV field (RFC 4180). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The header line (CRLF). */
export const CITIZEN_CSV_HEADER = `${CITIZEN_CSV_COLUMNS.map(csvField).join(',')}\r\n`;

/** One record as a CSV line (CRLF). */
export function citizenCsvLine(r: CitizenRecord): string {
  const agency = (a: { readonly agencyId: string; readonly name: string | null }) => a.name ?? a.agencyId;
  return `${[
    `${r.date} ${r.time}`,
    r.serial,
    KIND_LABELS[r.kind],
    r.requester === null ? SELF_REQUESTER_LABEL : agency(r.requester),
    agency(r.provider),
    r.procedure.name ?? r.procedure.code,
    r.items.map((i) => i.name ?? i.code).join('、'),
    OUTCOME_LABELS[r.outcome],
  ]
    .map(csvField)
    .join(',')}\r\n`;
}
