import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Message, PageTitle, Spinner } from '../components/ui.js';
import { messageFor } from '../messages.js';
import { AnswerOpenError, generateAnswerKey, openAnswer } from '../sealed-answer.js';

interface Provider {
  readonly agencyId: string;
  readonly name: string;
  readonly items: readonly { code: string; name: string }[];
}

interface Answered {
  readonly serial: string;
  readonly provider: { agencyId: string; name: string };
  readonly item: { code: string; name: string };
  readonly answer: { data: string; encrypted: boolean; digest?: string; size?: number };
}

const LABELS: Record<string, string> = {
  fiscalYear: '年度',
  taxableIncome: '課税所得（円）',
  municipalTaxAmount: '市町村民税額（円）',
  prefecturalTaxAmount: '道府県民税額（円）',
  dependents: '扶養親族の数',
  householdId: '世帯番号',
  relationshipToHead: '世帯主との続柄',
  movedInOn: '転入日',
  pensionNumber: '基礎年金番号',
  monthlyAmount: '月額（円）',
};

/** Years, ids and codes are written as they are; amounts and counts with separators. */
const PLAIN_NUMBER = /year|id$|code|number/i;

function Value({ value, name = '' }: { value: unknown; name?: string }) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return (
      <dl class="answer">
        {Object.entries(value as Record<string, unknown>).map(([k, v]) => (
          <div key={k}>
            <dt>{LABELS[k] ?? k}</dt>
            <dd>
              <Value value={v} name={k} />
            </dd>
          </div>
        ))}
      </dl>
    );
  }
  if (Array.isArray(value)) return <span>{value.map((v) => String(v)).join('、')}</span>;
  if (typeof value === 'number') return <span>{PLAIN_NUMBER.test(name) ? String(value) : value.toLocaleString('ja-JP')}</span>;
  return <span>{String(value)}</span>;
}

export function SelfInformationPage() {
  const [providers, setProviders] = useState<readonly Provider[] | undefined>(undefined);
  const [agencyId, setAgencyId] = useState('');
  const [itemCode, setItemCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [result, setResult] = useState<{ answered: Answered; content: unknown } | undefined>(undefined);

  useEffect(() => {
    api<{ providers: Provider[] }>('GET', '/self-information/options')
      .then((o) => {
        setProviders(o.providers);
        const first = o.providers[0];
        if (first !== undefined) {
          setAgencyId(first.agencyId);
          setItemCode(first.items[0]?.code ?? '');
        }
      })
      .catch((e: unknown) => {
        setError(messageFor(e));
        setProviders([]);
      });
  }, []);

  const provider = useMemo(() => providers?.find((p) => p.agencyId === agencyId), [providers, agencyId]);

  const request = async (e: Event) => {
    e.preventDefault();
    if (provider === undefined || itemCode === '') {
      setError('機関と項目を選んでください。');
      return;
    }
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      // A fresh key pair for this request only; its private half never leaves this page.
      const key = await generateAnswerKey();
      const answered = await api<Answered>('POST', '/self-information-requests', { providerAgencyId: agencyId, itemCode, answerPublicKey: key.publicKey });
      const text = await openAnswer(answered.answer.data, key, answered.serial);
      const parsed = JSON.parse(text) as { items?: Record<string, unknown> } | unknown;
      const items = (parsed as { items?: Record<string, unknown> }).items;
      setResult({ answered, content: items?.[answered.item.code] ?? items ?? parsed });
    } catch (err) {
      setError(err instanceof AnswerOpenError ? '回答を復号できませんでした（途中で変更されたか、別の鍵あてに暗号化されています）。もう一度請求してください。' : messageFor(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="self-title">
      <PageTitle>
        <span id="self-title">自己情報表示</span>
      </PageTitle>
      <p>行政機関が保有するあなた自身の情報を表示します。回答は、このブラウザーがこの請求のためだけに作った鍵で暗号化されて届き、このブラウザーの中でだけ復号されます（情報提供ネットワークシステムもポータルも読めません）。請求は情報提供等記録に残ります。</p>
      {error !== undefined ? <Message kind="error">{error}</Message> : null}
      {providers === undefined ? (
        <Spinner label="表示できる機関を読み込んでいます…" />
      ) : providers.length === 0 ? (
        error === undefined ? <p>いま表示できる情報はありません。</p> : null
      ) : (
        <form class="panel" onSubmit={(e) => void request(e)}>
          <div class="filters__row">
            <div class="field">
              <label class="field__label" for="self-agency">
                機関
              </label>
              <select
                id="self-agency"
                class="input"
                value={agencyId}
                onChange={(e) => {
                  const id = (e.target as HTMLSelectElement).value;
                  setAgencyId(id);
                  setItemCode(providers.find((p) => p.agencyId === id)?.items[0]?.code ?? '');
                }}
              >
                {providers.map((p) => (
                  <option key={p.agencyId} value={p.agencyId}>
                    {p.name}
                  </option>
                ))}
              </select>
            </div>
            <div class="field">
              <label class="field__label" for="self-item">
                情報の項目
              </label>
              <select id="self-item" class="input" value={itemCode} onChange={(e) => setItemCode((e.target as HTMLSelectElement).value)}>
                {(provider?.items ?? []).map((i) => (
                  <option key={i.code} value={i.code}>
                    {i.name}
                  </option>
                ))}
              </select>
            </div>
          </div>
          <button type="submit" class="button button--primary" disabled={busy} aria-busy={busy}>
            {busy ? '請求しています…' : '表示を請求する'}
          </button>
        </form>
      )}
      <div aria-live="polite">
        {result !== undefined ? (
          <section class="panel answer-panel" aria-labelledby="answer-title" data-answer="opened">
            <h2 id="answer-title" class="section-title">
              {result.answered.provider.name}：{result.answered.item.name}
            </h2>
            <Value value={result.content} />
            <p class="small muted">
              処理通番 <span class="mono">{result.answered.serial}</span>・このブラウザーで復号しました
            </p>
          </section>
        ) : null}
      </div>
    </section>
  );
}
