import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { NOTICE_INBOX_FILE } from '#projections';
import { verifyOpening, type Opening } from '#sealing';
import { schemaValidator } from '../../../test/support/json-schema.js';
import { expectProblem } from './support/problem-assertions.js';
import { MURORAN_CITY, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

/**
 * Notices' read state (お知らせの既読): a citizen marks a notice read (NoticeRead, on the notice's stream,
 * a serial of its own, the reader sealed), once; the inbox shows readAt and the unread count, and a rebuild
 * of the inbox from the log gives the same (I8). Another person's or an unknown notice is 404 UNKNOWN_NOTICE,
 * recorded as the citizen's refusal (I6).
 */

let now = new Date('2026-06-01T00:00:00.000Z');
let hub: TestHub;
let muroran: Agency;
type Citizen = { individualNumber: string; citizenSecret: string; code: string };
let aoyama: Citizen;
let kato: Citizen;
const ids: string[] = [];
let katos = '';

type Inbox = { notices: { noticeId: string; title: string; readAt: string | null; sentAt: string }[]; next?: string; unread: number };
const inbox = async (who: Citizen, q = '', target: TestHub = hub): Promise<Inbox> => {
  const res = await target.get(`/v1/citizens/me/notices${q}`, bearer(who.citizenSecret));
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Inbox>();
};
const read = (who: Citizen | string, noticeId: string) => hub.post(`/v1/citizens/me/notices/${noticeId}/read`, {}, typeof who === 'string' ? bearer(who) : bearer(who.citizenSecret));

async function citizen(): Promise<Citizen> {
  const p = await issuePerson(hub);
  return { ...p, code: await acquire(hub, muroran, p.individualNumber) };
}
async function send(to: Citizen, title: string): Promise<string> {
  const res = await hub.post('/v1/notices', { code: to.code, title, body: '本文' }, bearer(muroran.token));
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ noticeId: string }>().noticeId;
}

beforeAll(async () => {
  hub = await startLinkageHub({ clock: () => now });
  muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  aoyama = await citizen();
  kato = await citizen();
  for (const title of ['一通目', '二通目', '三通目']) ids.push(await send(aoyama, title));
  katos = await send(kato, '加藤さんへ');
});
afterAll(async () => {
  await hub?.dispose();
});

/**
 * The events appended since `head` but checkpoints: this test's clock jumps by days, so the hub signs a
 * checkpoint (HUB_CHECKPOINT_EVERY_MS) whenever it likes.
 */
const appendedSince = async (head: number): Promise<RecordedEvent[]> => (await hub.store.readAll({ fromPosition: head, maxCount: 100 })).filter((e) => e.type !== 'CheckpointSigned');

const NOTICE_READ_SCHEMA = schemaValidator('schemas/events/notice-read.v1.json', ['schemas/events/sealed-section.v1.json']);

describe('POST /v1/citizens/me/notices/:noticeId/read', () => {
  it('every notice starts unread; the page counts the unread ones, all of them, not only its own', async () => {
    const page = await inbox(aoyama);
    expect(page.notices.map((n) => [n.title, n.readAt])).toEqual([['三通目', null], ['二通目', null], ['一通目', null]]);
    expect(page.unread).toBe(3);
    expect(await inbox(aoyama, '?limit=1')).toMatchObject({ unread: 3, notices: [{ noticeId: ids[2] }], next: expect.any(String) });
    expect((await inbox(kato)).unread).toBe(1);
  });

  it('records the first read as NoticeRead on the notice\'s stream under a serial of its own, the reader sealed, and shows it read', async () => {
    now = new Date('2026-06-02T01:02:03.456Z');
    const head = await hub.head();
    const res = await read(aoyama, ids[1]!);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ noticeId: ids[1], readAt: '2026-06-02T01:02:03.456Z' });
    expect((await appendedSince(head)).map((e) => e.type)).toEqual(['NoticeRead']);

    const [sent, readEvent, ...rest] = await hub.store.readStream(`notice-${ids[1]}` as never);
    expect(rest).toEqual([]);
    expect(readEvent).toMatchObject({ type: 'NoticeRead', schemaVersion: 1, terminal: 'completed', streamRevision: 1, metadata: { actor: 'citizen' }, data: { noticeId: ids[1], readAt: '2026-06-02T01:02:03.456Z' } });
    expect(readEvent!.serial).not.toBe(sent!.serial);
    // Stored (publishable, I10): the reader only sealed, the data as its schema says.
    expect(NOTICE_READ_SCHEMA(readEvent!.data).errors).toBe('No errors');
    expect(Object.keys(readEvent!.data as object).sort()).toEqual(['noticeId', 'readAt', 'sealed']);
    const [, opened] = await hub.ledger.readStream(`notice-${ids[1]}` as never);
    const subjectId = (opened!.data as { subjectId: string }).subjectId;
    expect(subjectId).toEqual((((await hub.ledger.readStream(`notice-${ids[1]}` as never))[0]!.data) as { subjectId: string }).subjectId);
    expect(JSON.stringify(readEvent)).not.toContain(subjectId);

    // The citizen's proof of the read opens their own subject, checked against the envelope.
    const size = await hub.head();
    let proofs: { envelope: string; openings: Opening[] }[] = [];
    for (let i = 0; i < 400 && proofs.length === 0; i++) {
      const p = await hub.get(`/v1/audit/proofs/inclusion?serial=${readEvent!.serial}&size=${size}`, bearer(aoyama.citizenSecret));
      if (p.statusCode === 200) proofs = p.json<{ proofs: { envelope: string; openings: Opening[] }[] }>().proofs;
      else await new Promise((r) => setTimeout(r, 25));
    }
    expect(proofs.flatMap((p) => p.openings.map((o) => o.field))).toEqual(['subjectId']);
    for (const p of proofs) for (const o of p.openings) verifyOpening(JSON.parse(p.envelope) as RecordedEvent, o);
    expect(proofs[0]!.openings[0]!.value).toBe(subjectId);

    const page = await inbox(aoyama);
    expect(page.notices.map((n) => [n.noticeId, n.readAt])).toEqual([[ids[2], null], [ids[1], '2026-06-02T01:02:03.456Z'], [ids[0], null]]);
    expect(page.unread).toBe(2);
  });

  it('is idempotent: reading again appends nothing and answers the first time; reads at once record one event', async () => {
    now = new Date('2026-06-03T00:00:00.000Z');
    const head = await hub.head();
    const again = await read(aoyama, ids[1]!);
    expect(again.json()).toEqual({ noticeId: ids[1], readAt: '2026-06-02T01:02:03.456Z' });
    expect(await appendedSince(head)).toEqual([]);

    // A bare POST (no body, no content type), as a browser's fetch sends it, reads too.
    const bare = await hub.inject({ method: 'POST', url: `/v1/citizens/me/notices/${ids[1]}/read`, headers: bearer(aoyama.citizenSecret) });
    expect(bare.statusCode, bare.body).toBe(200);
    expect(bare.json()).toEqual({ noticeId: ids[1], readAt: '2026-06-02T01:02:03.456Z' });
    expect(await appendedSince(head)).toEqual([]);

    const answers = await Promise.all([0, 1, 2, 3].map(() => read(aoyama, ids[0]!)));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.json<{ readAt: string }>().readAt))).toEqual(new Set(['2026-06-03T00:00:00.000Z']));
    expect((await hub.store.readStream(`notice-${ids[0]}` as never)).map((e) => e.type)).toEqual(['NoticeSent', 'NoticeRead']);
    expect((await inbox(aoyama)).unread).toBe(1);
  });

  it('404 UNKNOWN_NOTICE for another person\'s notice or an unknown one, each a refusal event of the citizen (I6); their notice stays unread', async () => {
    for (const noticeId of [katos, '00000000-0000-4000-8000-000000000000']) {
      const head = await hub.head();
      const problem = expectProblem(await read(aoyama, noticeId), 404, 'UNKNOWN_NOTICE');
      expect(problem['serial']).toMatch(/^\d{20}$/);
      const appended = await appendedSince(head);
      expect(appended.map((e) => e.type)).toEqual(['RequestRefused']);
      expect(appended[0]).toMatchObject({ serial: problem['serial'], terminal: 'denied', data: { command: 'ReadNotice', reason: 'UNKNOWN_NOTICE', callerKind: 'citizen' } });
      expect(JSON.stringify(appended[0])).not.toContain(noticeId);
    }
    expect(await inbox(kato)).toMatchObject({ unread: 1, notices: [{ noticeId: katos, readAt: null }] });
  });

  it('400 for a malformed notice id (recorded), 401 for a caller who is not a citizen (agencies included)', async () => {
    const head = await hub.head();
    const problem = expectProblem(await read(aoyama, 'not-a-notice'), 400, 'VALIDATION_FAILED');
    expect(problem['errors']).toEqual([{ field: 'noticeId', message: expect.stringMatching(/^must be a notice id/) }]);
    expect((await appendedSince(head)).map((e) => e.type)).toEqual(['RequestRefused']);
    expectProblem(await hub.post(`/v1/citizens/me/notices/${ids[2]}/read`, {}), 401, 'UNAUTHENTICATED');
    expectProblem(await read(muroran.token, ids[2]!), 401, 'UNAUTHENTICATED');
    expect((await inbox(aoyama)).notices[0]).toMatchObject({ noticeId: ids[2], readAt: null });
  });

  it('I8: the inbox dropped and rebuilt from the log shows the same read state and counts', async () => {
    const before = [await inbox(aoyama), await inbox(aoyama, '?limit=2'), await inbox(kato)];
    await hub.close();
    rmSync(join(hub.dataDir, NOTICE_INBOX_FILE), { force: true });
    const again = await startLinkageHub({ dataDir: hub.dataDir, clock: () => now, env: { HUB_REDIS_PREFIX: hub.config.linkage.redisPrefix! } });
    try {
      expect([await inbox(aoyama, '', again), await inbox(aoyama, '?limit=2', again), await inbox(kato, '', again)]).toEqual(before);
    } finally {
      await again.close();
    }
  });
});
