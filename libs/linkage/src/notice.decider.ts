import type { DisplayTextRule } from '#text';
import type { Decider, Evolvable, LinkageCommand, LinkageEvent } from './decider.js';
import type { AgencyId, SubjectId } from './identifiers.js';

/**
 * Notices (お知らせ, 番号法附則第6条第6項第2号): an agency sends a person a message, addressed by the
 * agency's own code for that person; the hub resolves the code BEFORE deciding, so the event holds the
 * subject id, never a code of another agency nor a My Number (I4, I7). The text is personal: the hub seals
 * it with the subject id before appending (I5, I10), so the stored event keeps commitments and a box that
 * open to the citizen and the sending agency. Logs written before sealing (schemaVersion 1) hold the text
 * in a `sealed` value the hub's vault made instead. One stream per notice.
 */

/** Longest title and body accepted, in Unicode code points. */
export const NOTICE_TITLE_MAX = 100;
export const NOTICE_BODY_MAX = 4000;
/** The shared text rule for the title (one line) and the body (line breaks allowed), checked before sealing. */
export const NOTICE_TITLE_TEXT: DisplayTextRule = { max: NOTICE_TITLE_MAX };
export const NOTICE_BODY_TEXT: DisplayTextRule = { max: NOTICE_BODY_MAX, multiline: true };

export function noticeStreamId(noticeId: string): string {
  return `notice-${noticeId}`;
}

export interface SendNoticeData {
  readonly noticeId: string;
  readonly subjectId: SubjectId;
  readonly agencyId: AgencyId;
  readonly title: string;
  readonly body: string;
  readonly sentAt: string;
}
export type SendNotice = LinkageCommand<'SendNotice', SendNoticeData>;

export interface NoticeSentData {
  readonly noticeId: string;
  readonly subjectId: SubjectId;
  readonly agencyId: AgencyId;
  readonly title?: string;
  readonly body?: string;
  /** Logs written before sealing (schemaVersion 1): the title and body sealed by the hub's vault. */
  readonly sealed?: Readonly<Record<string, string>>;
  readonly sentAt: string;
}
export type NoticeSent = LinkageEvent<'NoticeSent', NoticeSentData>;

export type NoticeState = { readonly status: 'unsent' } | { readonly status: 'sent'; readonly noticeId: string };

export function decideNotice(command: SendNotice, state: NoticeState): readonly NoticeSent[] {
  // Sent already (a retry of the same notice id): nothing more to record.
  if (state.status === 'sent') return [];
  return [{ type: 'NoticeSent', schemaVersion: 1, data: { ...command.data }, terminal: 'completed' }];
}

export const noticeDecider: Decider<NoticeState, SendNotice, NoticeSent, Evolvable<NoticeSent>> = {
  initialState: () => ({ status: 'unsent' }),
  evolve: (state, event) => (event.type === 'NoticeSent' ? { status: 'sent', noticeId: event.data.noticeId } : state),
  decide: decideNotice,
};
