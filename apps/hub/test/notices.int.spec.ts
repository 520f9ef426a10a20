import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from './support/problem-assertions.js';
import { MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';
import { expectNothingButRefusals } from './support/test-hub.js';

const TITLE = '児童手当の現況届のご案内';
const BODY = '6月30日までに現況届をご提出ください。\n提出先: 室蘭市役所 子育て支援課';

let hub: TestHub;
let muroran: Agency;
let pension: Agency;
let aoyama: { individualNumber: string; citizenSecret: string };
let other: { individualNumber: string; citizenSecret: string };
let muroranCode: string;
let pensionCode: string;

beforeAll(async () => {
  hub = await startLinkageHub();
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  aoyama = await issuePerson(hub);
  other = await issuePerson(hub);
  muroranCode = await acquire(hub, muroran, aoyama.individualNumber);
  pensionCode = await acquire(hub, pension, aoyama.individualNumber);
  await acquire(hub, muroran, other.individualNumber);
});
afterAll(async () => {
  await hub?.dispose();
});

const send = (agency: Agency, body: Record<string, unknown>, headers: Record<string, string> = {}) => hub.post('/v1/notices', body, { ...bearer(agency.token), ...headers });
const inbox = async (citizen: { citizenSecret: string }, query = '') => {
  const res = await hub.get(`/v1/citizens/me/notices${query}`, bearer(citizen.citizenSecret));
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ notices: { noticeId: string; serial: string; from: { agencyId: string; name: string }; title: string; body: string; sentAt: string }[]; next?: string }>();
};

describe('notices (お知らせ): agency to citizen, addressed by agency code, sealed in the log', () => {
  it('delivers a notice to the person the code names, and only to them, under a serial of its own', async () => {
    const res = await send(muroran, { code: muroranCode, title: TITLE, body: BODY });
    expect(res.statusCode, res.body).toBe(201);
    const sent = res.json<{ noticeId: string; serial: string; sentAt: string }>();
    expect(sent).toEqual({ noticeId: expect.stringMatching(/^[0-9a-f-]{36}$/), serial: expect.stringMatching(/^\d{20}$/), sentAt: expect.any(String) });
    const [event, ...rest] = await hub.store.readSerial(sent.serial as never);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({ type: 'NoticeSent', terminal: 'completed', metadata: { actor: `agency:${MURORAN_CITY}` }, data: { noticeId: sent.noticeId, agencyId: MURORAN_CITY } });

    const mine = await inbox(aoyama);
    expect(mine.notices).toEqual([{ noticeId: sent.noticeId, serial: sent.serial, from: { agencyId: MURORAN_CITY, name: `${MURORAN_CITY} (test)` }, title: TITLE, body: BODY, sentAt: sent.sentAt, readAt: null }]);
    expect((await inbox(other)).notices).toEqual([]);
  });

  it('I5/I4: the text is sealed in the event and in every file; no code and no My Number is in the event', async () => {
    const { serial } = (await send(pension, { code: pensionCode, title: 'ねんきん定期便のお知らせ', body: '年金見込額 1,234,567円' })).json<{ serial: string }>();
    const [event] = await hub.store.readSerial(serial as never);
    const text = JSON.stringify(event);
    for (const secret of ['ねんきん定期便', '1,234,567', pensionCode, muroranCode, aoyama.individualNumber]) expect(text.includes(secret), secret).toBe(false);
    for (const file of readdirSync(hub.dataDir, { recursive: true, encoding: 'utf8' })) {
      if (!/\.sqlite(-wal)?$/.test(file)) continue;
      const bytes = readFileSync(join(hub.dataDir, file));
      for (const secret of ['ねんきん定期便', '年金見込額', TITLE]) expect(bytes.includes(Buffer.from(secret, 'utf8')), `${file} holds "${secret}"`).toBe(false);
    }
    expect((await inbox(aoyama)).notices.map((n) => n.title)).toEqual(['ねんきん定期便のお知らせ', TITLE]);
  });

  it('I7: a code of another agency, or one never issued, is 404 UNKNOWN_CODE and appends nothing', async () => {
    const head = await hub.head();
    expectProblem(await send(pension, { code: muroranCode, title: TITLE, body: BODY }), 404, 'UNKNOWN_CODE');
    expectProblem(await send(muroran, { code: 'A'.repeat(21) + 'w', title: TITLE, body: BODY }), 404, 'UNKNOWN_CODE');
    await expectNothingButRefusals(hub, head);
  });

  it('refuses bad input with 400 naming each field, and an unknown token with 401; nothing is appended', async () => {
    const head = await hub.head();
    const res = await send(muroran, { code: 'not-a-code', title: 'two\nlines', body: 'x'.repeat(4001) });
    const errors = expectProblem(res, 400, 'VALIDATION_FAILED')['errors'] as { field: string; message: string }[];
    expect(errors.map((e) => e.field).sort()).toEqual(['body', 'code', 'title']);
    expect(errors.find((e) => e.field === 'body')!.message).toBe('is 4001 characters long; at most 4000 are allowed');
    expectProblem(await send(muroran, { code: muroranCode, title: ' ', body: BODY }), 400, 'VALIDATION_FAILED');
    expectProblem(await hub.post('/v1/notices', { code: muroranCode, title: TITLE, body: BODY }, bearer('x'.repeat(43))), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.get('/v1/citizens/me/notices', bearer(muroran.token)), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.get('/v1/citizens/me/notices?limit=0', bearer(aoyama.citizenSecret)), 400, 'VALIDATION_FAILED');
    await expectNothingButRefusals(hub, head);
  });

  it('an idempotent retry answers the same notice and appends nothing; the key with another body is refused', async () => {
    const key = { 'idempotency-key': 'notice-retry-1' };
    const first = await send(muroran, { code: muroranCode, title: '再送テスト', body: BODY }, key);
    const head = await hub.head();
    const retry = await send(muroran, { code: muroranCode, title: '再送テスト', body: BODY }, key);
    expect([first.statusCode, retry.statusCode]).toEqual([201, 201]);
    expect(retry.json()).toEqual(first.json());
    await expectNothingButRefusals(hub, head);
    expectProblem(await send(muroran, { code: muroranCode, title: '別の内容', body: BODY }, key), 409, 'IDEMPOTENCY_KEY_REUSED');
    expect((await inbox(aoyama)).notices.filter((n) => n.title === '再送テスト')).toHaveLength(1);
  });

  it('pages newest first with limit and next → before', async () => {
    const all = (await inbox(aoyama)).notices;
    expect(all.length).toBeGreaterThanOrEqual(3);
    const first = await inbox(aoyama, '?limit=2');
    expect(first.notices).toEqual(all.slice(0, 2));
    const second = await inbox(aoyama, `?limit=2&before=${first.next!}`);
    expect(second.notices).toEqual(all.slice(2, 4));
  });
});
