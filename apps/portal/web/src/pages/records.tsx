import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api.js';
import { MonthlyChart, type MonthCount } from '../components/monthly-chart.js';
import { Message, PageTitle, Spinner } from '../components/ui.js';
import { PUSH_LABEL, jst, nameOf, outcomeLabel } from '../format.js';
import { messageFor } from '../messages.js';
import { FAILURE_TEXT, verifySerial, type KeyChanged } from '../verify-action.js';
import type { VerificationResult } from '../verify/verify-record.js';

/** A provision record as the hub gives it (contract B; older hubs gave names as plain strings). */
interface ProvisionRecord {
  readonly serial: string;
  readonly at?: string;
  readonly date?: string;
  readonly time?: string;
  /** push: the hub told the requester (the subscribing agency) that the provider's copy of an item changed; no data was sent. */
  readonly kind?: 'query' | 'self-information' | 'push';
  readonly requester: { agencyId: string; name: string } | string | null;
  readonly provider: { agencyId: string; name: string } | string;
  readonly procedure: { code: string; name: string } | string;
  readonly items: readonly ({ code: string; name: string } | string)[];
  readonly outcome: string;
}

interface Filters {
  readonly from: string;
  readonly to: string;
  readonly agencyId: string;
}

const PAGE_SIZE = 20;
const EVENT_NAMES: Record<string, string> = {
  QueryAccepted: '照会の受付',
  QueryDenied: '照会の不許可',
  ProvisionRequested: '提供の依頼',
  ProvisionAnswered: '情報の提供',
  ProvisionRefused: '提供の拒否',
  QueryCompleted: '照会の完了',
  QueryFailed: '照会の失敗',
  RequestRefused: '要求の拒否',
};

/** A day (YYYY-MM-DD, Japan time) as the hub's RFC 3339 bounds: from its start, to (exclusive) the next day's start. */
function dayStart(day: string): string {
  return `${day}T00:00:00+09:00`;
}

function dayAfter(day: string): string | undefined {
  const next = new Date(Date.parse(`${day}T00:00:00+09:00`) + 86_400_000);
  // The hub takes no bound after now: a period ending today just has no end.
  if (next.getTime() > Date.now()) return undefined;
  return dayStart(new Date(next.getTime() + 9 * 3_600_000).toISOString().slice(0, 10));
}

function query(f: Filters, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  if (f.from !== '') p.set('from', dayStart(f.from));
  const to = f.to === '' ? undefined : dayAfter(f.to);
  if (to !== undefined) p.set('to', to);
  if (f.agencyId !== '') p.set('agencyId', f.agencyId);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
}

function agencyOf(v: ProvisionRecord['requester']): { id: string; name: string } | undefined {
  if (v === null) return undefined;
  if (typeof v === 'string') return undefined;
  return { id: v.agencyId, name: v.name };
}

export function RecordsPage() {
  const [draft, setDraft] = useState<Filters>({ from: '', to: '', agencyId: '' });
  const [filters, setFilters] = useState<Filters>({ from: '', to: '', agencyId: '' });
  const [cursors, setCursors] = useState<readonly string[]>([]);
  const [records, setRecords] = useState<readonly ProvisionRecord[] | undefined>(undefined);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [months, setMonths] = useState<readonly MonthCount[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [chartError, setChartError] = useState<string | undefined>(undefined);
  const [agencies, setAgencies] = useState<ReadonlyMap<string, string>>(new Map());
  const [formError, setFormError] = useState<string | undefined>(undefined);

  const after = cursors.at(-1);
  useEffect(() => {
    let live = true;
    setRecords(undefined);
    api<{ records: ProvisionRecord[]; next?: string }>('GET', `/records${query(filters, { limit: String(PAGE_SIZE), ...(after === undefined ? {} : { after }) })}`)
      .then((page) => {
        if (!live) return;
        setRecords(page.records);
        setNext(page.next);
        setError(undefined);
        setAgencies((known) => {
          const m = new Map(known);
          for (const r of page.records) for (const a of [agencyOf(r.requester), agencyOf(r.provider)]) if (a !== undefined) m.set(a.id, a.name);
          return m;
        });
      })
      .catch((e: unknown) => live && (setError(messageFor(e)), setRecords([])));
    return () => {
      live = false;
    };
  }, [filters, after]);

  useEffect(() => {
    let live = true;
    api<{ months: MonthCount[] }>('GET', `/statistics${query({ ...filters, agencyId: '' })}`)
      .then((s) => live && (setMonths(s.months), setChartError(undefined)))
      .catch((e: unknown) => live && (setChartError(messageFor(e)), setMonths([])));
    return () => {
      live = false;
    };
  }, [filters.from, filters.to]);

  const apply = (e: Event) => {
    e.preventDefault();
    if (draft.from !== '' && draft.to !== '' && draft.from > draft.to) {
      setFormError('期間の開始日は、終了日より前の日付にしてください。');
      document.getElementById('filter-from')?.focus();
      return;
    }
    setFormError(undefined);
    setCursors([]);
    setFilters(draft);
  };

  const agencyOptions = useMemo(() => [...agencies.entries()].sort((a, b) => a[1].localeCompare(b[1], 'ja')), [agencies]);

  return (
    <section aria-labelledby="records-title">
      <PageTitle>
        <span id="records-title">情報提供等記録</span>
      </PageTitle>
      <p>行政機関どうしが、マイナンバー制度の情報連携であなたの情報をやり取りした記録です（過去7年分）。いつ、どの機関が、どの機関に、どの事務のために、どの情報を求め、結果がどうだったかを確認できます。ある機関の持つあなたの情報が更新され、それを登録している機関にお知らせした記録（{PUSH_LABEL}）も含まれます。</p>

      <form class="filters panel" onSubmit={apply} aria-labelledby="filters-title">
        <h2 id="filters-title" class="section-title">絞り込み</h2>
        {formError !== undefined ? <Message kind="error">{formError}</Message> : null}
        <div class="filters__row">
          <div class="field">
            <label class="field__label" for="filter-from">期間（開始日）</label>
            <input id="filter-from" class="input" type="date" value={draft.from} onInput={(e) => setDraft({ ...draft, from: (e.target as HTMLInputElement).value })} />
          </div>
          <div class="field">
            <label class="field__label" for="filter-to">期間（終了日）</label>
            <input id="filter-to" class="input" type="date" value={draft.to} onInput={(e) => setDraft({ ...draft, to: (e.target as HTMLInputElement).value })} />
          </div>
          <div class="field">
            <label class="field__label" for="filter-agency">機関</label>
            <select id="filter-agency" class="input" value={draft.agencyId} onChange={(e) => setDraft({ ...draft, agencyId: (e.target as HTMLSelectElement).value })}>
              <option value="">すべての機関</option>
              {agencyOptions.map(([id, name]) => (
                <option key={id} value={id}>
                  {name}
                </option>
              ))}
            </select>
          </div>
        </div>
        <div class="actions">
          <button type="submit" class="button button--primary">この条件で表示</button>
          <a class="button button--secondary" href={`/api/records.csv${query(filters)}`} download="情報提供等記録.csv">
            CSVでダウンロード
          </a>
        </div>
      </form>

      <section aria-labelledby="chart-title" class="panel">
        <h2 id="chart-title" class="section-title">月別の件数</h2>
        {chartError !== undefined ? <Message kind="error">{chartError}</Message> : months === undefined ? <Spinner label="グラフを読み込んでいます…" /> : <MonthlyChart months={months} />}
      </section>

      <section aria-labelledby="list-title">
        <h2 id="list-title" class="section-title">記録の一覧</h2>
        {error !== undefined ? <Message kind="error">{error}</Message> : null}
        {records === undefined ? (
          <Spinner label="記録を読み込んでいます…" />
        ) : records.length === 0 && error === undefined ? (
          <p>条件に合う記録はありません。</p>
        ) : (
          <ol class="records">
            {records.map((r) => (
              <RecordCard key={r.serial} record={r} />
            ))}
          </ol>
        )}
        {cursors.length === 0 && next === undefined ? null : (
        <nav aria-label="記録のページ" class="pager">
          <button type="button" class="button button--secondary" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            前の{PAGE_SIZE}件
          </button>
          <button type="button" class="button button--secondary" disabled={next === undefined} onClick={() => next !== undefined && setCursors([...cursors, next])}>
            次の{PAGE_SIZE}件
          </button>
        </nav>
        )}
      </section>
    </section>
  );
}

function RecordCard({ record: r }: { record: ProvisionRecord }) {
  const [result, setResult] = useState<VerificationResult | KeyChanged | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const when = r.date !== undefined && r.time !== undefined ? `${r.date.replaceAll('-', '/')} ${r.time}` : jst(r.at);
  const push = r.kind === 'push';
  const self = !push && (r.kind === 'self-information' || r.requester === null);
  const titleId = `record-${r.serial}`;

  const verify = async () => {
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      setResult(await verifySerial(r.serial));
    } catch (e) {
      setError(messageFor(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <li class="record" aria-labelledby={titleId}>
      <h3 id={titleId} class="record__title">
        <span class="record__when">{when}</span>
        {push ? <span class="tag tag--push">{PUSH_LABEL}</span> : null}
        <span class={`tag tag--${r.outcome === 'answered' || r.outcome === 'completed' || r.outcome === 'delivered' ? 'ok' : 'other'}`}>{outcomeLabel(r.outcome)}</span>
      </h3>
      {push ? <p class="record__note">{nameOf(r.provider)}が持つあなたの情報が更新されたことを、{nameOf(r.requester)}にお知らせしました。お知らせに情報そのものは含まれません。</p> : null}
      <dl class="record__facts">
        <div>
          <dt>{push ? 'お知らせを受けた機関' : '照会した機関'}</dt>
          <dd>{self ? 'ご本人（自己情報表示）' : nameOf(r.requester)}</dd>
        </div>
        <div>
          <dt>{push ? '情報が更新された機関' : '提供した機関'}</dt>
          <dd>{nameOf(r.provider)}</dd>
        </div>
        <div>
          <dt>事務手続</dt>
          <dd>{nameOf(r.procedure)}</dd>
        </div>
        <div>
          <dt>情報の項目</dt>
          <dd>{r.items.map((i) => nameOf(i)).join('、')}</dd>
        </div>
        <div>
          <dt>処理通番</dt>
          <dd class="mono">{r.serial}</dd>
        </div>
      </dl>
      <div class="record__verify">
        <button type="button" class="button button--secondary button--small" onClick={() => void verify()} disabled={busy} aria-describedby={`${titleId}-result`}>
          {busy ? '検証しています…' : '検証する'}
        </button>
        <div id={`${titleId}-result`} aria-live="polite">
          {error !== undefined ? <Message kind="error">{error}</Message> : null}
          {result !== undefined ? <VerificationView result={result} /> : null}
        </div>
      </div>
    </li>
  );
}

function VerificationView({ result }: { result: VerificationResult | KeyChanged }) {
  if (!result.ok) {
    const at = 'size' in result && result.size !== undefined ? `（照合したチェックポイント: ${result.size.toLocaleString('ja-JP')} 件、${'timeMs' in result && result.timeMs !== undefined ? jst(result.timeMs) : '時刻不明'} 署名）` : '';
    return (
      <div class="verification verification--failed" data-verification="failed" data-code={result.code}>
        <p class="verification__headline">検証に失敗しました</p>
        <p>
          {FAILURE_TEXT[result.code] ?? result.code}
          {at}
        </p>
        <details>
          <summary>技術的な詳細</summary>
          <p class="mono small">
            {result.code}: {result.message}
          </p>
        </details>
      </div>
    );
  }
  const opened = result.events.flatMap((e) => e.opened);
  return (
    <div class="verification verification--ok" data-verification="ok">
      <p class="verification__headline">検証に成功しました</p>
      <p>
        この記録は、署名済みチェックポイント（<strong>{result.size.toLocaleString('ja-JP')} 件</strong>、<strong>{jst(result.timeMs)}</strong> 署名）の台帳に含まれています。このブラウザーが、記録の内容から葉のハッシュ、包含証明、根ハッシュ、Ed25519 署名を計算して確かめました。
        {opened.length > 0 ? ' あなたに関する項目の開示値も、記録のコミットメントと一致しました。' : ''}
      </p>
      <details>
        <summary>確かめた内容</summary>
        <dl class="small">
          <dt>根ハッシュ</dt>
          <dd class="mono break">{result.rootHex}</dd>
          <dt>検証鍵</dt>
          <dd class="mono break">
            {result.keyName}+{result.keyIdHex}
          </dd>
          {result.keyChain.length > 1 ? (
            <>
              <dt>検証鍵の引き継ぎ</dt>
              <dd class="mono break" data-key-chain={result.keyChain.join(' ')}>
                {result.keyChain.join(' → ')}（このブラウザーが最初に確かめた鍵から、台帳で告知され、両方の鍵が署名したチェックポイントで引き継がれた順）
              </dd>
            </>
          ) : null}
          <dt>記録（台帳の位置）</dt>
          <dd>
            <ul>
              {result.events.map((e) => (
                <li key={e.position}>
                  {EVENT_NAMES[e.type] ?? e.type}（位置 {e.position}）{e.opened.length > 0 ? `・開示 ${e.opened.map((o) => o.field).join(', ')}` : ''}
                </li>
              ))}
            </ul>
          </dd>
        </dl>
      </details>
    </div>
  );
}
