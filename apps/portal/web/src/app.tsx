import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, onSessionLost, setCsrfToken } from './api.js';
import { Message, Spinner } from './components/ui.js';
import { messageFor } from './messages.js';
import { EnrolPage } from './pages/enrol.js';
import { NoticesPage } from './pages/notices.js';
import { PasskeysPage } from './pages/passkeys.js';
import { RecordsPage } from './pages/records.js';
import { SelfInformationPage } from './pages/self-information.js';
import { SignInPage } from './pages/signin.js';
import { navigate, useRoute, type Route } from './router.js';
import { rememberPasskey } from './session-memory.js';

interface SessionState {
  readonly signedIn: boolean;
  readonly csrfToken: string;
  readonly unread?: number | null;
}

const SIGNED_IN_PAGES: readonly { route: Route; label: string }[] = [
  { route: 'records', label: '情報提供等記録' },
  { route: 'notices', label: 'お知らせ' },
  { route: 'self-information', label: '自己情報表示' },
  { route: 'passkeys', label: 'パスキーの管理' },
];

export interface Flash {
  readonly kind: 'error' | 'success' | 'info';
  readonly text: string;
  /** The page it is shown on: it goes when the citizen moves on. */
  readonly route: Route;
}



export function App() {
  const route = useRoute();
  const [session, setSession] = useState<SessionState | undefined>(undefined);
  const [flash, setFlash] = useState<Flash | undefined>(undefined);
  const [loadError, setLoadError] = useState<string | undefined>(undefined);

  const refresh = useCallback(async () => {
    try {
      const s = await api<SessionState>('GET', '/session');
      setCsrfToken(s.csrfToken);
      setSession(s);
      setLoadError(undefined);
      return s;
    } catch (error) {
      setLoadError(messageFor(error));
      return undefined;
    }
  }, []);

  useEffect(() => {
    onSessionLost((code) => {
      rememberPasskey(undefined);
      setFlash({ kind: 'info', route: 'signin', text: code === 'SESSION_EXPIRED' ? 'セッションが終了しました。もう一度パスキーでサインインしてください。' : 'サインインしてください。' });
      void refresh().then(() => navigate('signin'));
    });
    void refresh();
  }, [refresh]);

  // Signed-out visitors land on sign-in, signed-in ones on their records.
  useEffect(() => {
    if (session === undefined) return;
    if (route === undefined) navigate(session.signedIn ? 'records' : 'signin');
    else if (!session.signedIn && route !== 'signin' && route !== 'enrol') navigate('signin');
    else if (session.signedIn && (route === 'signin' || route === 'enrol')) navigate('records');
  }, [route, session]);

  const signedIn = async (csrfToken: string, text: string, passkeyId?: string) => {
    setCsrfToken(csrfToken);
    rememberPasskey(passkeyId);
    setSession({ signedIn: true, csrfToken });
    setFlash({ kind: 'success', route: 'records', text });
    navigate('records');
    void refresh();
  };

  const signOut = async () => {
    try {
      await api<void>('POST', '/signout');
      setFlash({ kind: 'success', route: 'signin', text: 'サインアウトしました。' });
    } catch (error) {
      setFlash({ kind: 'error', route: 'signin', text: messageFor(error) });
    }
    rememberPasskey(undefined);
    await refresh();
    navigate('signin');
  };

  const setUnread = (unread: number) => setSession((s) => (s === undefined ? s : { ...s, unread }));

  let page;
  if (loadError !== undefined) page = <Message kind="error">{loadError}</Message>;
  else if (session === undefined || route === undefined) page = <Spinner label="読み込んでいます…" />;
  else if (!session.signedIn) {
    page = route === 'enrol' ? <EnrolPage onSignedIn={signedIn} /> : <SignInPage onSignedIn={signedIn} />;
  } else {
    switch (route) {
      case 'notices':
        page = <NoticesPage onUnread={setUnread} />;
        break;
      case 'self-information':
        page = <SelfInformationPage />;
        break;
      case 'passkeys':
        page = <PasskeysPage />;
        break;
      default:
        page = <RecordsPage />;
    }
  }

  return (
    <>
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        本文へ移動
      </a>
      <header class="site-header">
        <div class="site-header__inner">
          <p class="site-title">
            <span class="site-title__mark" aria-hidden="true" />
            情報提供等記録開示システム
          </p>
          {session?.signedIn ? (
            <nav aria-label="メインメニュー" class="site-nav">
              <ul>
                {SIGNED_IN_PAGES.map((p) => (
                  <li key={p.route}>
                    <a href={`#/${p.route}`} aria-current={route === p.route ? 'page' : undefined}>
                      {p.label}
                      {p.route === 'notices' && typeof session.unread === 'number' && session.unread > 0 ? (
                        <span class="badge">
                          <span class="visually-hidden">未読</span>
                          {session.unread}
                          <span class="visually-hidden">件</span>
                        </span>
                      ) : null}
                    </a>
                  </li>
                ))}
                <li>
                  <button type="button" class="button button--text" onClick={() => void signOut()}>
                    サインアウト
                  </button>
                </li>
              </ul>
            </nav>
          ) : session !== undefined ? (
            <nav aria-label="メインメニュー" class="site-nav">
              <ul>
                <li>
                  <a href="#/signin" aria-current={route === 'signin' ? 'page' : undefined}>サインイン</a>
                </li>
                <li>
                  <a href="#/enrol" aria-current={route === 'enrol' ? 'page' : undefined}>はじめての登録</a>
                </li>
              </ul>
            </nav>
          ) : null}
        </div>
      </header>
      <main id="main" tabIndex={-1} class="main">
        {flash !== undefined && flash.route === route ? (
          <div class="flash">
            <Message kind={flash.kind}>
              {flash.text}{' '}
              <button type="button" class="button button--text button--small" onClick={() => setFlash(undefined)}>
                閉じる
              </button>
            </Message>
          </div>
        ) : null}
        {page}
      </main>
      <footer class="site-footer">
        <p>
          マイナンバー情報連携の記録は、改ざんできない台帳（署名付きの Merkle 木）に記録されています。各記録の「検証する」で、このブラウザー自身がそれを確かめます。
        </p>
      </footer>
    </>
  );
}
