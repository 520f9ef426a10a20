const dateTime = new Intl.DateTimeFormat('ja-JP', { timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** An instant in Japan time, e.g. 2026/12/04 09:15:02. */
export function jst(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

export const OUTCOMES: Record<string, string> = {
  answered: '提供済み',
  completed: '提供済み',
  denied: '不許可（法令上認められない）',
  refused: '提供機関が拒否',
  failed: '失敗',
  timeout: '時間切れ',
  voided: '中断',
  pending: '処理中',
  delivered: 'お知らせ済み',
  abandoned: 'お知らせできず',
};

/** The label of a push row (kind 'push'): the hub told a subscribing agency that another agency's copy changed. */
export const PUSH_LABEL = '更新のお知らせ（プッシュ）';

export function outcomeLabel(outcome: string): string {
  return OUTCOMES[outcome] ?? outcome;
}

/** A name from the hub's record shapes: a string, or `{ name }`. */
export function nameOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string') return (v as { name: string }).name;
  return '—';
}
