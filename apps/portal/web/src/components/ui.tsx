import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

/** The page's heading, focused when the page opens so that screen readers announce it. */
export function PageTitle({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1} class="page-title">
      {children}
    </h1>
  );
}

/** An error (role=alert) or a notice (role=status). */
export function Message({ kind, children }: { kind: 'error' | 'success' | 'info'; children: ComponentChildren }) {
  return (
    <div class={`message message--${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      <span class="message__label">{kind === 'error' ? 'エラー' : kind === 'success' ? '完了' : 'お知らせ'}</span>
      <div>{children}</div>
    </div>
  );
}

export function Spinner({ label }: { label: string }) {
  return (
    <p class="loading" role="status">
      {label}
    </p>
  );
}
