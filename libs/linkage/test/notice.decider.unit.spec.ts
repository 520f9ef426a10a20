import { describe, expect, test } from 'vitest';
import { decideNotice, noticeDecider, noticeStreamId, type AgencyId, type SendNotice, type SubjectId } from '#linkage';

const SEND: SendNotice = {
  type: 'SendNotice',
  data: {
    noticeId: '0193a1b2-0000-7000-8000-000000000001',
    subjectId: '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5' as SubjectId,
    agencyId: 'muroran-city' as AgencyId,
    title: '住民税 課税証明書のご案内',
    body: '本文',
    sentAt: '2026-06-01T00:00:00.000Z',
  },
};

describe('notice decider', () => {
  test('a new notice is one terminal NoticeSent event carrying exactly the command data', () => {
    expect(decideNotice(SEND, noticeDecider.initialState())).toEqual([{ type: 'NoticeSent', schemaVersion: 1, data: SEND.data, terminal: 'completed' }]);
  });

  test('a notice already sent decides nothing (a retry of the same notice id)', () => {
    const [event] = decideNotice(SEND, noticeDecider.initialState());
    const state = noticeDecider.evolve(noticeDecider.initialState(), event!);
    expect(state).toEqual({ status: 'sent', noticeId: SEND.data.noticeId });
    expect(decideNotice(SEND, state)).toEqual([]);
  });

  test('one stream per notice', () => {
    expect(noticeStreamId(SEND.data.noticeId)).toBe(`notice-${SEND.data.noticeId}`);
  });
});
