import type { SubjectId } from '#linkage';

/**
 * Reading a notice (お知らせの既読): the person it was sent to marks it read, once. Pure: the handler loads
 * the notice's stream (opened: NoticeSent's subject), decides here, and appends NoticeRead on the notice's
 * stream under a serial of its own (NoticeSent's serial is closed). The event seals the subject (I10); the
 * notice id and the time stay in clear, as NoticeSent's do. Reading again records nothing and keeps the
 * first time. A notice that is not the caller's is answered as unknown, the same as one that does not exist
 * (nobody learns that someone else's notice id exists).
 */

export interface NoticeReadData {
  readonly noticeId: string;
  readonly subjectId: SubjectId;
  readonly readAt: string;
}

export interface NoticeReadEvent {
  readonly type: 'NoticeRead';
  readonly schemaVersion: 1;
  readonly data: NoticeReadData;
  readonly terminal: 'completed';
}

export type NoticeReadState =
  | { readonly status: 'unknown' }
  | { readonly status: 'sent'; readonly noticeId: string; readonly subjectId: string }
  | { readonly status: 'read'; readonly noticeId: string; readonly subjectId: string; readonly readAt: string };

/** The notice stream's events this fold reads (opened: NoticeSent carries its subject). */
export type NoticeStreamEvent = { readonly type: 'NoticeSent'; readonly data: { readonly noticeId?: unknown; readonly subjectId?: unknown } } | { readonly type: 'NoticeRead'; readonly data: { readonly readAt?: unknown } };

export const NOTICE_READ_TYPES: ReadonlySet<string> = new Set(['NoticeSent', 'NoticeRead']);

export function initialNoticeReadState(): NoticeReadState {
  return { status: 'unknown' };
}

export function evolveNoticeRead(state: NoticeReadState, event: NoticeStreamEvent): NoticeReadState {
  if (event.type === 'NoticeSent') {
    const { noticeId, subjectId } = event.data;
    // A notice whose key was shredded has lost its subject: it is nobody's any more.
    return typeof noticeId === 'string' && typeof subjectId === 'string' ? { status: 'sent', noticeId, subjectId } : state;
  }
  if (state.status === 'sent' && typeof event.data.readAt === 'string') return { ...state, status: 'read', readAt: event.data.readAt };
  return state;
}

export interface ReadNotice {
  readonly noticeId: string;
  readonly subjectId: SubjectId;
  readonly readAt: string;
}

export type NoticeReadDecision =
  | { readonly kind: 'unknown' }
  | { readonly kind: 'read-before'; readonly readAt: string }
  | { readonly kind: 'read'; readonly events: readonly [NoticeReadEvent] };

export function decideReadNotice(command: ReadNotice, state: NoticeReadState): NoticeReadDecision {
  if (state.status === 'unknown' || state.subjectId !== command.subjectId || state.noticeId !== command.noticeId) return { kind: 'unknown' };
  if (state.status === 'read') return { kind: 'read-before', readAt: state.readAt };
  return { kind: 'read', events: [{ type: 'NoticeRead', schemaVersion: 1, data: { noticeId: command.noticeId, subjectId: command.subjectId, readAt: command.readAt }, terminal: 'completed' }] };
}
