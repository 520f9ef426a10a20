import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NoticeBatchRunner } from '../src/notices/notice-batch-runner.service.js';
import { sharedListStreamOf } from '../src/notices/notice-batch-shared-lists.js';
import { MURORAN_CITY, acquire, bearer, issuePerson, registerAgency, type Agency } from './support/linkage-fixture.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

// Nationwide notice batches on one KurrentDB log with a leader and a standby (the wire-level stand-in, or the server
// at KURRENTDB_URL), each hub with a data directory of its own: the leader accepts a batch and dies (or stops)
// in the middle of its fan-out; the hub that leads next takes the batch's recipient list from the shared store
// and its cursor from the log, and completes it. Nobody gets two notices, nobody none.
announceServer();

/** Recipients: "a few thousand" people holding a code of Muroran City. */
const PEOPLE = 2_000;
const ENV = {
  HUB_AUTHORIZATION_TABLE_FILE: '',
  HUB_CHECKPOINT_EVERY_EVENTS: '1000',
  // Chunks of 50 with a pause after each: the fan-out of 2,000 takes long enough (≥ 10 s) to be cut in its middle.
  HUB_NOTICE_BATCH_CHUNK: '50',
  HUB_NOTICE_BATCH_PAUSE_MS: '250',
};
const TITLE = '定額減税補足給付金のお知らせ';
const BODY = '対象の方には7月以降に通知書をお送りします。\n室蘭市 税務課';

const log = new SharedLog();
const hubs: KurrentTestHub[] = [];
let a: KurrentTestHub;
let b: KurrentTestHub;
let muroran: Agency;
const people: { citizenSecret: string; code: string }[] = [];
const logged: string[] = [];

interface Progress {
  status: 'running' | 'completed';
  total: number;
  delivered: number;
  pending: number;
  failed: number;
}
interface Stored {
  readonly type: string;
  readonly streamId: string;
  readonly schemaVersion: number;
  readonly serial: string;
  readonly data: Record<string, unknown>;
}

async function pool<T>(n: number, width: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await work(i);
      }
    }),
  );
  return out;
}

const start = async (hub: KurrentTestHub, body: Record<string, unknown>) => {
  const res = await hub.post('/v1/notice-batches', body, bearer(muroran.token));
  expect(res.statusCode, res.body).toBe(202);
  return res.json<{ batchId: string; serial: string; total: number }>();
};
const progress = async (hub: KurrentTestHub, batchId: string): Promise<Progress> => {
  const res = await hub.get(`/v1/notice-batches/${batchId}`, bearer(muroran.token));
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Progress>();
};
/** The progress as `hub` shows it once its view of the log holds the batch (a standby follows the leader's appends). */
const seen = async (hub: KurrentTestHub, batchId: string): Promise<Progress | undefined> => {
  const res = await hub.get(`/v1/notice-batches/${batchId}`, bearer(muroran.token));
  if (res.statusCode === 404) return undefined;
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Progress>();
};
const leads = async (hub: KurrentTestHub) => (await hub.get('/health/ready')).json<{ role: string }>().role === 'leader';
/** The batch's recipient events in the log as the server holds it. */
const recipientEvents = async (batchId: string): Promise<Stored[]> =>
  (await log.texts()).map((t) => JSON.parse(t) as Stored).filter((e) => (e.type === 'NoticeSent' || e.type === 'NoticeUndelivered') && e.data['batchId'] === batchId);

/** Every recipient's notice stream holds exactly one event, each under a serial of its own; none is missing. */
function expectOncePerRecipient(events: readonly Stored[], total: number): void {
  expect(events.length).toBe(total);
  expect(new Set(events.map((e) => e.streamId)).size).toBe(total);
  expect(new Set(events.map((e) => e.serial)).size).toBe(total);
}

/** "took its list of N recipients from the shared store; the log holds the first K" for the batch: K. */
function takenAt(batchId: string): number | undefined {
  const line = logged.find((m) => m.includes(batchId) && m.includes('from the shared store'));
  const m = line === undefined ? null : /the log holds the first (\d+)/.exec(line);
  return m === null ? undefined : Number(m[1]);
}

beforeAll(async () => {
  const spy = vi.spyOn(Logger.prototype, 'log');
  spy.mockImplementation(function (this: Logger, message: unknown) {
    if (typeof message === 'string') logged.push(message);
  });
  a = await startKurrentHub(log, { instanceId: 'hub-a', env: ENV });
  hubs.push(a);
  muroran = await registerAgency(a, MURORAN_CITY, 'municipality', 'http://127.0.0.1:9');
  const t0 = Date.now();
  people.push(
    ...(await pool(PEOPLE, 16, async () => {
      const p = await issuePerson(a);
      return { citizenSecret: p.citizenSecret, code: await acquire(a, muroran, p.individualNumber) };
    })),
  );
  console.warn(`${PEOPLE} people numbered with a Muroran City code each in ${Date.now() - t0} ms`);
  b = await startKurrentHub(log, { instanceId: 'hub-b', env: ENV });
  hubs.push(b);
  expect(await leads(a)).toBe(true);
  expect(await leads(b)).toBe(false);
}, 600_000);

afterAll(async () => {
  vi.restoreAllMocks();
  for (const hub of hubs) await hub.close().catch(() => undefined);
  await log.dispose();
});

describe('a notice batch survives the leader (KurrentDB, leader + standby, a data directory each)', () => {
  it('audience "all": the leader dies mid fan-out; the standby leads, takes the list from the shared store and the cursor from the log, and completes it: every recipient holds exactly one notice', async () => {
    const started = await start(a, { title: TITLE, body: BODY, audience: 'all' });
    expect(started.total).toBe(PEOPLE);
    // The list is beside the log (enciphered), not only in the accepting hub's data directory.
    const client = await log.client();
    let listEvents = 0;
    for await (const e of client.readStream(sharedListStreamOf(log.logStream, started.batchId), { fromRevision: 0n, maxCount: 100n })) if (e.event !== undefined) listEvents += 1;
    expect(listEvents).toBeGreaterThanOrEqual(2);

    await eventually('the leader has delivered a part of the batch', async () => (await progress(a, started.batchId)).delivered >= 300, 60_000);
    // Death: no more lease renewals and no more fan-out (no clean stop: its lease is not released, and its store
    // stays writable until the new leader fences it; appends it had in flight end as they end).
    a.leadership.halt();
    void a.app.get(NoticeBatchRunner, { strict: false }).beforeApplicationShutdown();
    const before = (await progress(a, started.batchId)).delivered;
    expect(before).toBeLessThan(PEOPLE);
    await eventually('the standby leads', () => leads(b), 20_000);

    const done = await eventually(
      'the new leader completes the batch',
      async () => {
        const p = await seen(b, started.batchId);
        return p?.status === 'completed' ? p : undefined;
      },
      120_000,
    );
    expect(done).toMatchObject({ status: 'completed', total: PEOPLE, delivered: PEOPLE, pending: 0, failed: 0 });
    // The new leader resumed where the log stood, not from the start and not from nothing.
    const at = takenAt(started.batchId);
    expect(at, logged.filter((m) => m.includes(started.batchId)).join('\n')).toBeDefined();
    expect(at!).toBeGreaterThan(0);
    expect(at!).toBeLessThan(PEOPLE);

    const events = await recipientEvents(started.batchId);
    expectOncePerRecipient(events, PEOPLE);
    expect(events.every((e) => e.type === 'NoticeSent' && e.schemaVersion === 3)).toBe(true);
    // Each person's inbox, read on the new leader: exactly one notice of the batch.
    const counts = await pool(people.length, 16, async (i) => {
      const res = await b.get('/v1/citizens/me/notices', bearer(people[i]!.citizenSecret));
      expect(res.statusCode, res.body).toBe(200);
      return res.json<{ notices: { title: string }[] }>().notices.filter((n) => n.title === TITLE).length;
    });
    expect(counts.filter((c) => c !== 1)).toEqual([]);
    // The completed batch's list is gone from the shared store.
    await expect(
      (async () => {
        for await (const e of client.readStream(sharedListStreamOf(log.logStream, started.batchId), { fromRevision: 0n, maxCount: 1n })) void e;
      })(),
    ).rejects.toThrow();
  }, 300_000);

  it('a list of codes (some naming nobody): the leader stops cleanly mid fan-out; a third hub leads and completes it, each recipient once', async () => {
    const c = await startKurrentHub(log, { instanceId: 'hub-c', env: ENV });
    hubs.push(c);
    const unknown = Array.from({ length: 25 }, (_, i) => `${i.toString(36).padStart(21, 'B')}w`);
    const listed = people.slice(0, 1_500).map((p) => p.code);
    const codes = [...listed.slice(0, 700), ...unknown, ...listed.slice(700)];
    const started = await start(b, { title: `${TITLE}（第2回）`, body: BODY, codes });
    expect(started.total).toBe(codes.length);
    await eventually('the leader has recorded a part of the batch', async () => {
      const p = await progress(b, started.batchId);
      return p.delivered + p.failed >= 300;
    }, 60_000);
    await b.close();
    await eventually('the third hub leads', () => leads(c), 20_000);
    const done = await eventually(
      'the third hub completes the batch',
      async () => {
        const p = await seen(c, started.batchId);
        return p?.status === 'completed' ? p : undefined;
      },
      120_000,
    );
    expect(done).toMatchObject({ status: 'completed', total: codes.length, delivered: listed.length, failed: unknown.length, pending: 0 });
    const at = takenAt(started.batchId);
    expect(at).toBeDefined();
    expect(at!).toBeGreaterThan(0);
    expect(at!).toBeLessThan(codes.length);
    const events = await recipientEvents(started.batchId);
    expectOncePerRecipient(events, codes.length);
    expect(events.filter((e) => e.type === 'NoticeUndelivered').map((e) => e.data['reason'])).toEqual(unknown.map(() => 'UNKNOWN_CODE'));
    const counts = await pool(1_500, 16, async (i) => {
      const res = await c.get('/v1/citizens/me/notices', bearer(people[i]!.citizenSecret));
      return res.json<{ notices: { title: string }[] }>().notices.filter((n) => n.title === `${TITLE}（第2回）`).length;
    });
    expect(counts.filter((n) => n !== 1)).toEqual([]);
  }, 300_000);
});
