import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { EventId, RecordedEvent, SerialNumber } from '#ledger';
import { SqliteNoticeInbox } from '#projections';

const dir = mkdtempSync(join(tmpdir(), 'notice-inbox-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const open = () => new SqliteNoticeInbox({ path: join(dir, `inbox-${++files}.sqlite`) });

const ALICE = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5';
const BOB = '7f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d6';

function event(position: number, type: string, data: unknown): RecordedEvent {
  return {
    eventId: `e${position}` as EventId,
    type,
    schemaVersion: 1,
    streamId: `s${position}`,
    streamRevision: 0,
    position,
    serial: `2026060101${String(position).padStart(10, '0')}` as SerialNumber,
    terminal: 'completed',
    recordedAt: '2026-06-01T00:00:00.000Z',
    data,
    metadata: { actor: 'agency:muroran-city', correlationId: `c${position}` },
  };
}
const notice = (position: number, subjectId: string) =>
  event(position, 'NoticeSent', { noticeId: `n${position}`, subjectId, agencyId: 'muroran-city', sealed: { v: '1', ciphertext: `c${position}` }, sentAt: `2026-06-01T00:00:0${position}.000Z` });
const LOG = [notice(0, ALICE), event(1, 'QueryAccepted', {}), notice(2, BOB), notice(3, ALICE), notice(4, ALICE)];

describe('the notice inbox projection', () => {
  test('keeps each citizen\'s notices, sealed, newest first, paged', async () => {
    const inbox = open();
    await inbox.apply(LOG);
    const page = await inbox.notices(ALICE, { limit: 2 });
    expect(page.notices.map((n) => n.noticeId)).toEqual(['n4', 'n3']);
    expect(page.notices[0]).toEqual({ noticeId: 'n4', serial: LOG[4]!.serial, agencyId: 'muroran-city', sealed: { v: '1', ciphertext: 'c4' }, sentAt: '2026-06-01T00:00:04.000Z' });
    expect((await inbox.notices(ALICE, { limit: 2, before: page.next! })).notices.map((n) => n.noticeId)).toEqual(['n0']);
    expect((await inbox.notices(BOB)).notices.map((n) => n.noticeId)).toEqual(['n2']);
    await expect(inbox.notices(ALICE, { limit: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await inbox.close();
  });

  test('I8: applied live in small batches, redelivered, or rebuilt at once, the result is the same', async () => {
    const live = open();
    for (let i = 0; i < LOG.length; i += 2) await live.apply(LOG.slice(0, i + 2)); // overlapping redeliveries
    const rebuilt = open();
    await rebuilt.apply(LOG);
    for (const subject of [ALICE, BOB]) expect(await rebuilt.notices(subject)).toEqual(await live.notices(subject));
    expect(await live.checkpoint()).toBe(4);
    await live.reset();
    expect(await live.checkpoint()).toBe(-1);
    expect((await live.notices(ALICE)).notices).toEqual([]);
    await Promise.all([live.close(), rebuilt.close()]);
  });

  test('refuses a hole after its checkpoint (PROJECTION_GAP) and applies nothing of that batch', async () => {
    const inbox = open();
    await inbox.apply(LOG.slice(0, 2));
    await expect(inbox.apply([LOG[3]!])).rejects.toMatchObject({ code: 'PROJECTION_GAP' });
    expect(await inbox.checkpoint()).toBe(1);
    await inbox.close();
  });
});
