import { startRegistration, type PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/browser';
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Message, PageTitle } from '../components/ui.js';
import { messageFor } from '../messages.js';

export function EnrolPage({ onSignedIn }: { onSignedIn: (csrfToken: string, text: string, passkeyId?: string) => void }) {
  const [secret, setSecret] = useState('');
  const [label, setLabel] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [invalid, setInvalid] = useState(false);

  const enrol = async (event: Event) => {
    event.preventDefault();
    const s = secret.trim();
    if (!/^[A-Za-z0-9_-]{16,200}$/.test(s)) {
      setInvalid(true);
      setError('ワンタイムシークレットを正しく入力してください。英数字と記号（- と _）だけで、通知に記載されたとおりに入力します。');
      document.getElementById('secret')?.focus();
      return;
    }
    setInvalid(false);
    setBusy(true);
    setError(undefined);
    try {
      const { challengeId, options } = await api<{ challengeId: string; options: PublicKeyCredentialCreationOptionsJSON }>('POST', '/enrolment/options', { secret: s });
      const response = await startRegistration({ optionsJSON: options });
      const done = await api<{ csrfToken: string; passkeyId?: string }>('POST', '/enrolment', { secret: s, challengeId, response, ...(label.trim() === '' ? {} : { label: label.trim() }) });
      setSecret('');
      onSignedIn(done.csrfToken, 'パスキーを登録し、サインインしました。ワンタイムシークレットはこれで使えなくなりました。次回からはパスキーでサインインしてください。', done.passkeyId);
    } catch (e) {
      setError(messageFor(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="enrol-title" class="panel">
      <PageTitle>
        <span id="enrol-title">はじめての登録</span>
      </PageTitle>
      <p>マイナンバーの通知に記載されたワンタイムシークレットで、この端末のパスキーを登録します。シークレットは一度しか使えません。登録後はパスキーだけでサインインします。</p>
      {error !== undefined ? <Message kind="error">{error}</Message> : null}
      <form onSubmit={(e) => void enrol(e)} novalidate>
        <div class="field">
          <label for="secret" class="field__label">
            ワンタイムシークレット<span class="required">必須</span>
          </label>
          <p id="secret-help" class="field__help">
            通知に記載された英数字の文字列です。
          </p>
          <input
            id="secret"
            name="secret"
            class="input"
            type="password"
            autoComplete="one-time-code"
            spellcheck={false}
            autoCapitalize="off"
            required
            aria-required="true"
            aria-invalid={invalid}
            aria-describedby="secret-help"
            value={secret}
            onInput={(e) => setSecret((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="label" class="field__label">
            パスキーの名前<span class="optional">任意</span>
          </label>
          <p id="label-help" class="field__help">
            どの端末のパスキーか分かるように（例: 自宅のパソコン）。
          </p>
          <input id="label" name="label" class="input" type="text" maxLength={64} aria-describedby="label-help" value={label} onInput={(e) => setLabel((e.target as HTMLInputElement).value)} />
        </div>
        <button type="submit" class="button button--primary button--large" disabled={busy} aria-busy={busy}>
          {busy ? '登録しています…' : 'パスキーを登録する'}
        </button>
      </form>
      <p>
        すでに登録済みの方は <a href="#/signin">サインイン</a> へ。
      </p>
    </section>
  );
}
