import { startAuthentication, type PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/browser';
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Message, PageTitle } from '../components/ui.js';
import { messageFor } from '../messages.js';

export function SignInPage({ onSignedIn }: { onSignedIn: (csrfToken: string, text: string, passkeyId?: string) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  const signIn = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const { challengeId, options } = await api<{ challengeId: string; options: PublicKeyCredentialRequestOptionsJSON }>('POST', '/sessions/options');
      const response = await startAuthentication({ optionsJSON: options });
      const done = await api<{ csrfToken: string; passkeyId?: string }>('POST', '/sessions', { challengeId, response });
      onSignedIn(done.csrfToken, 'サインインしました。', done.passkeyId);
    } catch (e) {
      setError(messageFor(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="signin-title" class="panel">
      <PageTitle>
        <span id="signin-title">サインイン</span>
      </PageTitle>
      <p>このポータルに登録したパスキー（スマートフォンやパソコンの生体認証・PIN）でサインインします。パスワードは使いません。</p>
      {error !== undefined ? <Message kind="error">{error}</Message> : null}
      <button type="button" class="button button--primary button--large" onClick={() => void signIn()} disabled={busy} aria-busy={busy}>
        {busy ? '確認しています…' : 'パスキーでサインイン'}
      </button>
      <h2 class="section-title">はじめて利用する方</h2>
      <p>
        マイナンバーの通知に記載された<strong>ワンタイムシークレット</strong>で、最初のパスキーを登録してください。
        <a href="#/enrol">はじめての登録へ進む</a>
      </p>
      <h2 class="section-title">パスキーをすべて失くした方</h2>
      <p>お住まいの市区町村の窓口で、新しいワンタイムシークレットの発行を受けてから、もう一度登録してください。</p>
    </section>
  );
}
