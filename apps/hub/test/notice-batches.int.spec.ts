import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoticeBatchRunner } from '../src/notices/notice-batch-runner.service.js';
import { expectProblem } from './support/problem-assertions.js';
import { MURORAN_CITY, PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';
import { expectNothingButRefusals } from './support/test-hub.js';

const TITLE = '定額減税補足給付金のお知らせ';
const BODY = '対象の方には7月以降に通知書をお送りします。\n室蘭市 税務課';

interface Progress {
  batchId: string;
  status: 'running' | 'completed';
  audience: string;
  total: number;
  delivered: number;
  pending: number;
  failed: number;
  serial: string;
  startedAt: string;
  completedAt?: string;
}

let hub: TestHub;
let muroran: Agency;
let pension: Agency;
const people: { individualNumber: string; citizenSecret: string; muroranCode: string }[] = [];
let pensionOnly: { individualNumber: string; citizenSecret: string };

beforeAll(async () => {
  hub = await startLinkageHub({ env: { HUB_BODY_LIMIT_BYTES: String(400 * 1024) } });
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  for (let i = 0; i < 5; i++) {
    const p = await issuePerson(hub);
    people.push({ ...p, muroranCode: await acquire(hub, muroran, p.individualNumber) });
  }
  pensionOnly = await issuePerson(hub);
  await acquire(hub, pension, pensionOnly.individualNumber);
}, 60_000);
afterAll(async () => {
  await hub?.dispose();
});

const start = (agency: Agency, body: Record<string, unknown>) => hub.post('/v1/notice-batches', body, bearer(agency.token));
const progress = async (agency: Agency, batchId: string): Promise<Progress> => {
  const res = await hub.get(`/v1/notice-batches/${batchId}`, bearer(agency.token));
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Progress>();
};
const settled = async (agency: Agency, batchId: string): Promise<Progress> => {
  await hub.app.get(NoticeBatchRunner, { strict: false }).idle();
  for (let i = 0; i < 100; i++) {
    const p = await progress(agency, batchId);
    if (p.status === 'completed') return p;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`batch ${batchId} did not complete`);
};
const inbox = async (citizen: { citizenSecret: string }) => {
  const res = await hub.get('/v1/citizens/me/notices', bearer(citizen.citizenSecret));
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ notices: { noticeId: string; serial: string; from: { agencyId: string }; title: string; body: string }[] }>().notices;
};

describe('nationwide notices (一斉お知らせ): POST /v1/notice-batches', () => {
  it('an explicit list: one sealed NoticeSent per known code (own serial, the batchId), an unknown code failed with its reason, then NoticeBatchCompleted', async () => {
    const unknown = 'A'.repeat(21) + 'w';
    const codes = [people[0]!.muroranCode, people[1]!.muroranCode, unknown];
    const res = await start(muroran, { title: TITLE, body: BODY, codes });
    expect(res.statusCode, res.body).toBe(202);
    const started = res.json<{ batchId: string; serial: string; total: number }>();
    expect(started).toEqual({ batchId: expect.stringMatching(/^[0-9a-f-]{36}$/), serial: expect.stringMatching(/^\d{20}$/), total: 3 });

    const [startEvent, ...more] = await hub.store.readSerial(started.serial as never);
    expect(more).toEqual([]);
    expect(startEvent).toMatchObject({ type: 'NoticeBatchStarted', terminal: 'completed', data: { batchId: started.batchId, agencyId: MURORAN_CITY, audience: 'codes', total: 3 } });

    const done = await settled(muroran, started.batchId);
    expect(done).toMatchObject({ batchId: started.batchId, status: 'completed', audience: 'codes', total: 3, delivered: 2, failed: 1, pending: 0, serial: started.serial });

    const all = await hub.store.readAll();
    const mine = all.filter((e) => (e.data as { batchId?: string }).batchId === started.batchId);
    const sent = mine.filter((e) => e.type === 'NoticeSent');
    const undelivered = mine.filter((e) => e.type === 'NoticeUndelivered');
    const completed = mine.filter((e) => e.type === 'NoticeBatchCompleted');
    expect(sent).toHaveLength(2);
    expect(undelivered).toHaveLength(1);
    expect(undelivered[0]!.data).toMatchObject({ reason: 'UNKNOWN_CODE', agencyId: MURORAN_CITY });
    expect(completed).toHaveLength(1);
    expect(completed[0]!.data).toMatchObject({ total: 3, delivered: 2, failed: 1 });
    // Every recipient's event and the end: a serial of its own each, ended.
    const serials = new Set([...sent, ...undelivered, ...completed].map((e) => e.serial));
    expect(serials.size).toBe(4);
    for (const e of [...sent, ...undelivered, ...completed]) expect(e.terminal).toBe('completed');
    for (const e of sent) expect(e).toMatchObject({ schemaVersion: 3, streamId: `notice-${(e.data as { noticeId: string }).noticeId}` });

    // In the inbox of the people listed, like any notice; not in the others'.
    for (const p of [people[0]!, people[1]!]) {
      const notices = await inbox(p);
      expect(notices).toEqual([expect.objectContaining({ title: TITLE, body: BODY, from: expect.objectContaining({ agencyId: MURORAN_CITY }) })]);
      expect(sent.map((e) => e.serial)).toContain(notices[0]!.serial);
    }
    expect(await inbox(people[2]!)).toEqual([]);
  });

  it('audience "all": everyone holding a code of the sending agency, and nobody else', async () => {
    const res = await start(muroran, { title: 'お知らせ（全員）', body: '全員あて', audience: 'all' });
    expect(res.statusCode, res.body).toBe(202);
    const { batchId, total } = res.json<{ batchId: string; total: number }>();
    expect(total).toBe(people.length);
    const done = await settled(muroran, batchId);
    expect(done).toMatchObject({ total: people.length, delivered: people.length, failed: 0, pending: 0, status: 'completed' });
    for (const p of people) expect((await inbox(p)).filter((n) => n.title === 'お知らせ（全員）')).toHaveLength(1);
    expect((await inbox(pensionOnly)).filter((n) => n.title === 'お知らせ（全員）')).toEqual([]);
  });

  it('progress and list: only the sending agency sees its batches (another agency is answered 404 UNKNOWN_NOTICE_BATCH)', async () => {
    const { batchId } = (await start(pension, { title: '年金のお知らせ', body: '本文', audience: 'all' })).json<{ batchId: string }>();
    const p = await settled(pension, batchId);
    expect(p).toMatchObject({ total: 1, delivered: 1 });
    expectProblem(await hub.get(`/v1/notice-batches/${batchId}`, bearer(muroran.token)), 404, 'UNKNOWN_NOTICE_BATCH');
    const list = await hub.get('/v1/notice-batches?limit=1', bearer(muroran.token));
    expect(list.statusCode, list.body).toBe(200);
    const page1 = list.json<{ batches: Progress[]; next?: string }>();
    expect(page1.batches).toHaveLength(1);
    expect(page1.next).toBeDefined();
    const page2 = (await hub.get(`/v1/notice-batches?limit=10&after=${page1.next}`, bearer(muroran.token))).json<{ batches: Progress[]; next?: string }>();
    expect(page2.batches).toHaveLength(1);
    expect(page2.next).toBeUndefined();
    expect(new Set([...page1.batches, ...page2.batches].map((b) => b.batchId)).has(batchId)).toBe(false);
    expect((await hub.get('/v1/notice-batches', bearer(pension.token))).json<{ batches: Progress[] }>().batches.map((b) => b.batchId)).toEqual([batchId]);
  });

  it('refuses bad input as a whole, precisely, recording only the refusal (I6)', async () => {
    const head = await hub.head();
    expectProblem(await start(muroran, { title: TITLE, body: BODY }), 400, 'VALIDATION_FAILED');
    expectProblem(await start(muroran, { title: TITLE, body: BODY, audience: 'all', codes: [people[0]!.muroranCode] }), 400, 'VALIDATION_FAILED');
    expectProblem(await start(muroran, { title: TITLE, body: BODY, audience: 'everyone' }), 400, 'VALIDATION_FAILED');
    expectProblem(await start(muroran, { title: TITLE, body: BODY, codes: [] }), 400, 'VALIDATION_FAILED');
    expectProblem(await start(muroran, { title: TITLE, body: BODY, codes: ['not-a-code'] }), 400, 'VALIDATION_FAILED');
    expectProblem(await start(muroran, { title: 'two\nlines', body: BODY, audience: 'all' }), 400, 'VALIDATION_FAILED');
    const repeated = expectProblem(await start(muroran, { title: TITLE, body: BODY, codes: [people[0]!.muroranCode, people[0]!.muroranCode] }), 400, 'VALIDATION_FAILED');
    expect(String(repeated['detail'])).toContain('codes[1] repeats codes[0]');
    const tooMany = Array.from({ length: 10_001 }, (_, i) => `${i.toString(36).padStart(21, 'A')}w`);
    const many = expectProblem(await start(muroran, { title: TITLE, body: BODY, codes: tooMany }), 400, 'VALIDATION_FAILED');
    expect(JSON.stringify(many)).toContain('at most 10000');
    expectProblem(await hub.post('/v1/notice-batches', { title: TITLE, body: BODY, audience: 'all' }, bearer('x'.repeat(43))), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.get('/v1/notice-batches/not-a-uuid', bearer(muroran.token)), 400, 'VALIDATION_FAILED');
    await expectNothingButRefusals(hub, head);
    const refusals = (await hub.store.readAll({ fromPosition: head })).filter((e) => e.type === 'RequestRefused');
    expect(refusals.length).toBeGreaterThanOrEqual(8);
  });

  it('I10: the stored events are publishable: no text, no code, no subject id in clear in the log or the batch files', async () => {
    const all = await hub.store.readAll();
    const text = JSON.stringify(all.filter((e) => e.type.startsWith('Notice')));
    const opened = await hub.ledger.readAll();
    const subjects = new Set(opened.filter((e) => e.type === 'NoticeSent').map((e) => (e.data as { subjectId: string }).subjectId));
    expect(subjects.size).toBeGreaterThan(0);
    for (const secret of [TITLE, '対象の方', '全員あて', '年金のお知らせ', ...people.map((p) => p.muroranCode), ...people.map((p) => p.individualNumber), ...subjects]) expect(text.includes(secret), secret).toBe(false);
    for (const file of readdirSync(hub.dataDir, { recursive: true, encoding: 'utf8' })) {
      if (!/notice-batch.*\.sqlite(-wal)?$/.test(file)) continue;
      const bytes = readFileSync(join(hub.dataDir, file));
      for (const secret of [TITLE, '全員あて', ...people.map((p) => p.muroranCode), ...subjects]) expect(bytes.includes(Buffer.from(secret, 'utf8')), `${file} holds "${secret}"`).toBe(false);
    }
  });
});
