import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Message, PageTitle, Spinner } from '../components/ui.js';
import { jst, nameOf } from '../format.js';
import { messageFor } from '../messages.js';

interface Notice {
  readonly noticeId: string;
  readonly serial: string;
  readonly from: { agencyId: string; name: string } | string;
  readonly title: string;
  readonly body: string;
  readonly sentAt: string;
  readonly readAt?: string | null;
}

const PAGE = 20;

export function NoticesPage({ onUnread }: { onUnread: (n: number) => void }) {
  const [notices, setNotices] = useState<readonly Notice[] | undefined>(undefined);
  const [unread, setUnread] = useState<number | undefined>(undefined);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [open, setOpen] = useState<string | undefined>(undefined);

  const load = async (before?: string) => {
    try {
      const page = await api<{ notices: Notice[]; next?: string; unread?: number }>('GET', `/notices?limit=${PAGE}${before === undefined ? '' : `&before=${encodeURIComponent(before)}`}`);
      setNotices((n) => (before === undefined ? page.notices : [...(n ?? []), ...page.notices]));
      setNext(page.next);
      if (typeof page.unread === 'number') {
        setUnread(page.unread);
        onUnread(page.unread);
      }
      setError(undefined);
    } catch (e) {
      setError(messageFor(e));
      setNotices((n) => n ?? []);
    }
  };

  useEffect(() => {
    void load();
  }, []);

  const read = async (n: Notice) => {
    const opening = open !== n.noticeId;
    setOpen(opening ? n.noticeId : undefined);
    if (!opening || (n.readAt !== undefined && n.readAt !== null)) return;
    try {
      const done = await api<{ noticeId: string; readAt: string }>('POST', `/notices/${encodeURIComponent(n.noticeId)}/read`);
      setNotices((list) => list?.map((x) => (x.noticeId === n.noticeId ? { ...x, readAt: done.readAt } : x)));
      setUnread((u) => {
        const v = u === undefined ? undefined : Math.max(0, u - 1);
        if (v !== undefined) onUnread(v);
        return v;
      });
    } catch (e) {
      setError(messageFor(e));
    }
  };

  return (
    <section aria-labelledby="notices-title">
      <PageTitle>
        <span id="notices-title">お知らせ</span>
      </PageTitle>
      <p>行政機関から、あなたあてに届いたお知らせです。お知らせの本文は、あなた以外には読めない形で保管されています。</p>
      {unread !== undefined ? (
        <p class="summary" role="status">
          未読 <strong>{unread}</strong> 件
        </p>
      ) : null}
      {error !== undefined ? <Message kind="error">{error}</Message> : null}
      {notices === undefined ? (
        <Spinner label="お知らせを読み込んでいます…" />
      ) : notices.length === 0 ? (
        <p>お知らせはありません。</p>
      ) : (
        <ul class="notices">
          {notices.map((n) => {
            const isRead = n.readAt !== undefined && n.readAt !== null;
            const expanded = open === n.noticeId;
            return (
              <li key={n.noticeId} class={`notice ${isRead ? 'notice--read' : 'notice--unread'}`}>
                <h2 class="notice__heading">
                  <button type="button" class="notice__toggle" aria-expanded={expanded} aria-controls={`notice-${n.noticeId}`} onClick={() => void read(n)}>
                    <span class={`tag ${isRead ? 'tag--read' : 'tag--unread'}`} data-state={isRead ? 'read' : 'unread'}>
                      {isRead ? '既読' : '未読'}
                    </span>
                    <span class="notice__title">{n.title}</span>
                    <span class="notice__meta">
                      {nameOf(n.from)}・{jst(n.sentAt)}
                    </span>
                  </button>
                </h2>
                <div id={`notice-${n.noticeId}`} class="notice__body" hidden={!expanded}>
                  {n.body.split('\n').map((line, i) => (
                    <p key={i}>{line}</p>
                  ))}
                  <p class="small muted">
                    処理通番 <span class="mono">{n.serial}</span>
                    {isRead ? `・${jst(n.readAt)} に既読` : ''}
                  </p>
                </div>
              </li>
            );
          })}
        </ul>
      )}
      {next !== undefined ? (
        <button type="button" class="button button--secondary" onClick={() => void load(next)}>
          さらに読み込む
        </button>
      ) : null}
    </section>
  );
}
