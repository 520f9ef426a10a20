import { startRegistration, type PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/browser';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Message, PageTitle, Spinner } from '../components/ui.js';
import { passkeyInUse } from '../session-memory.js';
import { jst } from '../format.js';
import { messageFor } from '../messages.js';

interface Passkey {
  readonly passkeyId: string;
  readonly label?: string | null;
  readonly createdAt: string;
  readonly lastUsedAt?: string | null;
}

export function PasskeysPage() {
  const [passkeys, setPasskeys] = useState<readonly Passkey[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [done, setDone] = useState<string | undefined>(undefined);
  const [confirming, setConfirming] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const inUse = passkeyInUse();

  const load = async () => {
    try {
      setPasskeys((await api<{ passkeys: Passkey[] }>('GET', '/passkeys')).passkeys);
    } catch (e) {
      setError(messageFor(e));
      setPasskeys([]);
    }
  };

  useEffect(() => {
    void load();
  }, []);

  const remove = async (p: Passkey) => {
    setBusy(true);
    setError(undefined);
    try {
      await api('DELETE', `/passkeys/${encodeURIComponent(p.passkeyId)}`);
      setDone(`パスキー「${p.label ?? '名前なし'}」を削除しました。このパスキーではサインインできなくなりました。`);
      setConfirming(undefined);
      await load();
    } catch (e) {
      setError(messageFor(e));
    } finally {
      setBusy(false);
    }
  };

  const add = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const { challengeId, options } = await api<{ challengeId: string; options: PublicKeyCredentialCreationOptionsJSON }>('POST', '/passkeys/options');
      const response = await startRegistration({ optionsJSON: options });
      await api('POST', '/passkeys', { challengeId, response });
      setDone('パスキーを追加しました。');
      await load();
    } catch (e) {
      setError(messageFor(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="passkeys-title">
      <PageTitle>
        <span id="passkeys-title">パスキーの管理</span>
      </PageTitle>
      <p>このポータルにサインインできるパスキーの一覧です。使わなくなった端末や、失くした端末のパスキーは削除してください。すべて削除すると、市区町村の窓口で新しいワンタイムシークレットの発行を受けるまでサインインできなくなります。</p>
      {error !== undefined ? <Message kind="error">{error}</Message> : null}
      {done !== undefined ? <Message kind="success">{done}</Message> : null}
      {passkeys === undefined ? (
        <Spinner label="パスキーを読み込んでいます…" />
      ) : passkeys.length === 0 ? (
        <p>登録されているパスキーはありません。</p>
      ) : (
        <ul class="passkeys">
          {passkeys.map((p) => (
            <li key={p.passkeyId} class="passkey panel">
              <h2 class="passkey__name">
                {p.label ?? '名前なしのパスキー'}
                {p.passkeyId === inUse ? <span class="tag tag--read">このサインインで使用中</span> : null}
              </h2>
              <dl class="record__facts">
                <div>
                  <dt>登録日時</dt>
                  <dd>{jst(p.createdAt)}</dd>
                </div>
                <div>
                  <dt>最後に使った日時</dt>
                  <dd>{p.lastUsedAt ? jst(p.lastUsedAt) : 'まだ使われていません'}</dd>
                </div>
              </dl>
              {confirming === p.passkeyId ? (
                <div class="confirm" role="group" aria-label="削除の確認">
                  <p>{p.passkeyId === inUse ? 'このパスキーは、いまのサインインに使っています。削除すると、このポータルからサインアウトします。削除しますか？' : 'このパスキーを削除しますか？ 削除すると元に戻せません。'}</p>
                  <div class="actions">
                    <button type="button" class="button button--danger" disabled={busy} onClick={() => void remove(p)}>
                      削除する
                    </button>
                    <button type="button" class="button button--secondary" onClick={() => setConfirming(undefined)}>
                      やめる
                    </button>
                  </div>
                </div>
              ) : (
                <button type="button" class="button button--secondary button--small" onClick={() => setConfirming(p.passkeyId)} aria-label={`パスキー「${p.label ?? '名前なし'}」を削除`}>
                  削除
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <button type="button" class="button button--primary" disabled={busy} onClick={() => void add()}>
        この端末のパスキーを追加する
      </button>
    </section>
  );
}
