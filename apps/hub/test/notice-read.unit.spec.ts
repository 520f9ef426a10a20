import { describe, expect, it } from 'vitest';
import type { SubjectId } from '#linkage';
import { inMemorySealer, sealSpecOf } from '#sealing';
import { schemaValidator } from '../../../test/support/json-schema.js';
import { decideReadNotice, evolveNoticeRead, initialNoticeReadState, type NoticeStreamEvent } from '../src/notices/notice-read.decider.js';

const NOTICE = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
const ALICE = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5' as SubjectId;
const BOB = '7f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d6' as SubjectId;
const sent: NoticeStreamEvent = { type: 'NoticeSent', data: { noticeId: NOTICE, subjectId: ALICE } };
const stateOf = (...events: NoticeStreamEvent[]) => events.reduce(evolveNoticeRead, initialNoticeReadState());
const readAt = '2026-06-02T00:00:00.000Z';

describe('reading a notice (decider)', () => {
  it('given the notice sent to Alice, when she reads it, then NoticeRead (completed) with her as reader', () => {
    expect(decideReadNotice({ noticeId: NOTICE, subjectId: ALICE, readAt }, stateOf(sent))).toEqual({
      kind: 'read',
      events: [{ type: 'NoticeRead', schemaVersion: 1, data: { noticeId: NOTICE, subjectId: ALICE, readAt }, terminal: 'completed' }],
    });
  });

  it('given it was read, when she reads it again, then nothing new and the first time', () => {
    const read: NoticeStreamEvent = { type: 'NoticeRead', data: { readAt } };
    expect(decideReadNotice({ noticeId: NOTICE, subjectId: ALICE, readAt: '2026-07-01T00:00:00.000Z' }, stateOf(sent, read))).toEqual({ kind: 'read-before', readAt });
  });

  it('is unknown to anyone else, for a stream without the notice, and for a notice whose subject was shredded', () => {
    expect(decideReadNotice({ noticeId: NOTICE, subjectId: BOB, readAt }, stateOf(sent))).toEqual({ kind: 'unknown' });
    expect(decideReadNotice({ noticeId: NOTICE, subjectId: ALICE, readAt }, stateOf())).toEqual({ kind: 'unknown' });
    expect(decideReadNotice({ noticeId: NOTICE, subjectId: ALICE, readAt }, stateOf({ type: 'NoticeSent', data: { noticeId: NOTICE } }))).toEqual({ kind: 'unknown' });
  });
});

describe('NoticeRead as stored (I10)', () => {
  const validate = schemaValidator('schemas/events/notice-read.v1.json', ['schemas/events/sealed-section.v1.json']);

  it('seals the reader as a record field of the citizen and conforms to schemas/events/notice-read.v1.json', () => {
    expect(sealSpecOf('NoticeRead')).toMatchObject({ keyClass: 'record', subjectField: 'subjectId', timeField: 'readAt', fields: [{ name: 'subjectId', owners: ['citizen'] }] });
    const sealer = inMemorySealer();
    const decided = decideReadNotice({ noticeId: NOTICE, subjectId: ALICE, readAt }, stateOf(sent));
    if (decided.kind !== 'read') throw new Error('expected a read');
    const stored = sealer.seal(`notice-${NOTICE}`, decided.events[0]);
    expect(validate(stored.data).errors).toBe('No errors');
    expect(JSON.stringify(stored)).not.toContain(ALICE);
    // Two reads by one person (of two notices) share nothing but what is public.
    const other = sealer.seal('notice-x', { ...decided.events[0], data: { ...decided.events[0].data, noticeId: '2b4e28ba-2fa1-41d2-883f-0016d3cca427' } });
    const sealedOf = (e: typeof stored) => (e.data as { sealed: Record<string, unknown> }).sealed;
    for (const k of ['keyRef', 'nonce', 'box']) expect(sealedOf(stored)[k]).not.toEqual(sealedOf(other)[k]);
    expect(sealer.open({ type: 'NoticeRead', schemaVersion: stored.schemaVersion!, streamId: `notice-${NOTICE}`, data: stored.data }).event.data).toEqual({ noticeId: NOTICE, subjectId: ALICE, readAt });
    // Without its seal, the schema refuses it (no place for the reader in clear).
    expect(validate({ noticeId: NOTICE, subjectId: ALICE, readAt }).valid).toBe(false);
  });
});
