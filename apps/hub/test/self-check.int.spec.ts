import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { leafHash, toHex } from '#audit-log';
import { CHECKPOINT_STREAM, VerifiedMark, type CheckpointSignedData } from '#ledger';
import { CheckpointSigner } from '../src/audit/checkpoint-signer.service.js';
import { TreeFollower } from '../src/audit/tree-follower.service.js';
import { startGrpcTestHub, type GrpcTestHub } from './support/grpc-client.js';
import { expectProblem } from './support/problem-assertions.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

const dirs: string[] = [];
const open: { dispose(): Promise<void> }[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.dispose();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-self-check-'));
  dirs.push(dir);
  return dir;
}

async function start(dir: string, env: Record<string, string> = {}): Promise<TestHub> {
  const hub = await startTestHub({ dataDir: dir, env });
  open.push({ dispose: () => hub.close() });
  return hub;
}

async function until<T>(f: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

type LoggedCheckpoint = CheckpointSignedData & { position: number };

async function checkpointsInLog(h: TestHub): Promise<LoggedCheckpoint[]> {
  return (await h.store.readStream(CHECKPOINT_STREAM)).map((e) => ({ ...(e.data as CheckpointSignedData), position: e.position }));
}

/** Appends `n` one-event serials to a running hub and lets its signer sign a checkpoint every 100 events. */
async function appendEvents(h: TestHub, n: number): Promise<void> {
  const follower = h.app.get(TreeFollower);
  const signer = h.app.get(CheckpointSigner);
  for (let done = 0; done < n; ) {
    const k = Math.min(100, n - done);
    await Promise.all(
      Array.from({ length: k }, (_, i) =>
        h.store.append({
          streamId: `noted-${randomUUID()}`,
          expectedRevision: 'no_stream',
          serial: { allocate: true },
          events: [{ type: 'Noted', data: { i: done + i, note: 'provision record' }, terminal: 'completed' }],
          metadata: { actor: 'test:self-check', correlationId: 'c' },
        }),
      ),
    );
    done += k;
    await follower.catchUp();
    await signer.signIfDue(false);
  }
}

/** A ledger written by a real hub: `events` events and a signed checkpoint after every 100; the hub stopped. */
async function buildLedger(dir: string, events: number): Promise<{ head: number; checkpoints: LoggedCheckpoint[] }> {
  const hub = await startTestHub({ dataDir: dir, env: { HUB_CHECKPOINT_EVERY_EVENTS: '100' } });
  try {
    await appendEvents(hub, events);
    return { head: await hub.head(), checkpoints: await checkpointsInLog(hub) };
  } finally {
    await hub.close();
  }
}

/** The attacker's view of the ledger file: a raw connection with the append-only guard removed. */
function tamper(dir: string): Database.Database {
  const db = new Database(join(dir, 'ledger.sqlite'));
  db.exec('DROP TRIGGER IF EXISTS events_append_only_update; DROP TRIGGER IF EXISTS events_append_only_delete;');
  return db;
}

/** Changes the stored text of one event; answers its serial and both texts. */
function alterEvent(dir: string, position: number, change: (text: string) => string): { serial: string; original: string; altered: string } {
  const db = tamper(dir);
  try {
    const row = db.prepare('SELECT envelope, serial FROM events WHERE position = ?').get(position) as { envelope: string; serial: string };
    const altered = change(row.envelope);
    // One byte and one byte only.
    expect(altered.length).toBe(row.envelope.length);
    expect([...altered].filter((c, i) => c !== row.envelope[i])).toHaveLength(1);
    db.prepare('UPDATE events SET envelope = ? WHERE position = ?').run(altered, position);
    return { serial: row.serial, original: row.envelope, altered };
  } finally {
    db.close();
  }
}

function storedMark(dir: string): number {
  const mark = new VerifiedMark(join(dir, 'ledger.sqlite'));
  try {
    return mark.get();
  } finally {
    mark.close();
  }
}

const KEEP_JSON = (t: string) => t.replace('provision record', 'provision recorc');
const BREAK_JSON = (t: string) => t.replace('provision record"', "provision record'");

describe('the hub checks its own log at start', () => {
  it.each([
    ['still JSON', KEEP_JSON],
    ['no longer JSON', BREAK_JSON],
  ])('finds one byte changed in one stored event (%s): not ready, naming its position and serial; signs nothing more; reads still served', async (_, change) => {
    const dir = dataDir();
    const built = await buildLedger(dir, 250);
    const position = 123;
    const { serial, original, altered } = alterEvent(dir, position, change);

    // Checkpoints every event or 50 ms: a hub without the check would sign over the altered log at once.
    const g: GrpcTestHub = await startGrpcTestHub({ dataDir: dir, env: { HUB_CHECKPOINT_EVERY_EVENTS: '1', HUB_CHECKPOINT_EVERY_MS: '50' } });
    open.push(g);
    const hub = g.hub;
    const ready = await hub.get('/health/ready');
    const problem = expectProblem(ready, 503, 'NOT_READY');
    expect(problem['type']).toMatch(/\/not-ready$/);
    expect(problem['selfCheck']).toEqual({
      status: 'failed',
      verifiedThrough: 0,
      run: 'start',
      runId: expect.any(String),
      checked: built.head,
      total: built.head,
      finding: { check: 'leaf', code: 'LEAF_MISMATCH', position, serial, expected: toHex(leafHash(original)), calculated: toHex(leafHash(altered)), message: expect.any(String) },
      findingCount: 1,
    });
    expect((await g.health.call('Check', {})).response).toEqual({ status: 'NOT_SERVING' });

    // The log grows and the checkpoint interval passes several times: no CheckpointSigned is appended.
    await appendEvents(hub, 3);
    await new Promise((r) => setTimeout(r, 600));
    expect(await checkpointsInLog(hub)).toEqual(built.checkpoints);
    expect(hub.app.get(CheckpointSigner).lastSigned?.size).toBe(built.checkpoints.at(-1)!.size);

    // Auditors can still look.
    expect((await hub.get('/v1/audit/checkpoint?format=json')).json()).toMatchObject({ size: built.checkpoints.at(-1)!.size });
    expect((await hub.get(`/v1/audit/entries?from=${position}&limit=1`, hub.auditor)).json()).toMatchObject({ entries: [altered] });

    // Logged once, at error level: position, serial and hashes, nothing of the event's data.
    const errors = hub.logger.lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toContain(`LEAF_MISMATCH at position ${position} (serial ${serial})`);
    expect(errors[0]!.message).toContain(toHex(leafHash(altered)));
    expect(errors[0]!.message).not.toMatch(/provision|Noted/);
    // The next start re-checks from the bad position at the latest.
    await g.hub.close();
    expect(storedMark(dir)).toBe(0);
  });

  it('starts ready on an untouched file and advances the verified mark to the head', async () => {
    const dir = dataDir();
    const built = await buildLedger(dir, 250);
    expect(storedMark(dir)).toBe(0);
    const hub = await start(dir);
    const ready = await hub.get('/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json<{ selfCheck: unknown }>().selfCheck).toEqual({ status: 'passed', verifiedThrough: built.head, run: 'start', runId: expect.any(String), checked: built.head, total: built.head });
    const runs = (await hub.get('/v1/audit/self-checks', hub.operator)).json<{ runs: Record<string, unknown>[] }>().runs;
    expect(runs).toEqual([expect.objectContaining({ kind: 'start', status: 'passed', from: 0, to: built.head, checked: built.head, checkpoints: built.checkpoints.length, findingCount: 0 })]);
    await hub.close();
    expect(storedMark(dir)).toBe(built.head);
  });

  it.each([
    ['a tree node above the leaves (tile level 1)', 1, 'TILE_MISMATCH', 'tile', 0],
    ["a leaf's hash (tile level 0)", 0, 'LEAF_MISMATCH', 'leaf', 77],
  ] as const)('finds a changed tile with untouched events: %s, and the signed roots it no longer makes', async (_, level, code, check, position) => {
    const dir = dataDir();
    const built = await buildLedger(dir, 600);
    const db = tamper(dir);
    const tile = db.prepare('SELECT hashes FROM tree_tiles WHERE level = ? AND idx = 0').pluck().get(level) as Buffer;
    const slot = level === 0 ? position : 0;
    const before = toHex(tile.subarray(slot * 32, slot * 32 + 32));
    tile[slot * 32 + 3] = tile[slot * 32 + 3]! ^ 0x40;
    db.prepare('UPDATE tree_tiles SET hashes = ? WHERE level = ? AND idx = 0').run(tile, level);
    const serial = db.prepare('SELECT serial FROM events WHERE position = ?').pluck().get(position) as string;
    db.close();

    const hub = await start(dir, { HUB_CHECKPOINT_EVERY_EVENTS: '1', HUB_CHECKPOINT_EVERY_MS: '50' });
    const problem = expectProblem(await hub.get('/health/ready'), 503, 'NOT_READY');
    // Level 1 changed: the stored node is the odd one (expected), the fold of the leaves below it is what it was.
    // Level 0 changed: the stored leaf hash is the odd one, the re-hashed text is what it was.
    const changed = toHex(tile.subarray(slot * 32, slot * 32 + 32));
    expect(problem['selfCheck']).toMatchObject({ status: 'failed', finding: { check, code, position, serial, expected: changed, calculated: before } });
    const run = (await hub.get('/v1/audit/self-checks', hub.operator)).json<{ runs: { findings: Record<string, unknown>[] }[] }>().runs[0]!;
    // Every signed checkpoint whose root the changed hash enters no longer matches the stored tree.
    const broken = built.checkpoints.filter((c) => (level === 1 ? c.size >= 256 : c.size > position && c.size < 256));
    expect(broken.length).toBeGreaterThan(0);
    expect(run.findings.filter((f) => f['code'] === 'CHECKPOINT_ROOT_MISMATCH')).toEqual(
      broken.map((c) => expect.objectContaining({ check: 'checkpoint', position: c.position, expected: c.rootHex, calculated: expect.not.stringMatching(c.rootHex) })),
    );
    await appendEvents(hub, 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(await checkpointsInLog(hub)).toEqual(built.checkpoints);
  });
});

describe('above HUB_SELF_CHECK_FULL_MAX_EVENTS', () => {
  it('checks from the mark before serving, and the background scrub finds a change below the mark', async () => {
    const dir = dataDir();
    const built = await buildLedger(dir, 600);
    const low = { HUB_SELF_CHECK_FULL_MAX_EVENTS: '100' };
    // Mark 0: the first start above the threshold still re-hashes everything before serving.
    const second = await start(dir, low);
    expect((await second.get('/health/ready')).json<{ selfCheck: unknown }>().selfCheck).toMatchObject({ status: 'passed', verifiedThrough: built.head, run: 'start', total: built.head });
    await appendEvents(second, 50);
    const head = await second.head();
    await second.close();
    expect(storedMark(dir)).toBe(built.head);

    const position = 10;
    const { serial, original, altered } = alterEvent(dir, position, KEEP_JSON);
    const third = await start(dir, low);
    const problem = await until(async () => {
      const r = await third.get('/health/ready');
      return r.statusCode === 503 ? expectProblem(r, 503, 'NOT_READY') : undefined;
    }, 'the scrub to find the change');
    expect(problem['selfCheck']).toMatchObject({
      status: 'failed',
      run: 'scrub',
      finding: { check: 'leaf', code: 'LEAF_MISMATCH', position, serial, expected: toHex(leafHash(original)), calculated: toHex(leafHash(altered)) },
      // The next start re-hashes from the bad position before it serves.
      verifiedThrough: position,
    });
    const runs = (await third.get('/v1/audit/self-checks', third.operator)).json<{ runs: Record<string, unknown>[] }>().runs;
    const below = built.head - (built.head % 256);
    expect(runs).toEqual([
      expect.objectContaining({ kind: 'scrub', status: 'failed', from: 0, to: below, total: below }),
      // Before serving: only the events since the mark (from its tile boundary), which were sound.
      expect.objectContaining({ kind: 'start', status: 'passed', from: below, to: head, checked: head - below, findingCount: 0 }),
    ]);
    await third.close();
    expect(storedMark(dir)).toBe(position);
  });
});

describe('POST /v1/audit/self-checks', () => {
  it('re-checks the whole log on the operator\'s demand, answering 202 and a status URL', async () => {
    const dir = dataDir();
    const built = await buildLedger(dir, 300);
    const hub = await start(dir);
    expectProblem(await hub.post('/v1/audit/self-checks', {}), 401, 'UNAUTHENTICATED');
    expectProblem(await hub.post('/v1/audit/self-checks', {}, hub.auditor), 403, 'FORBIDDEN');

    const sound = await hub.inject({ method: 'POST', url: '/v1/audit/self-checks', headers: hub.operator });
    expect(sound.statusCode).toBe(202);
    const accepted = sound.json<{ id: string; statusUrl: string }>();
    expect(accepted).toMatchObject({ kind: 'requested', status: 'running', from: 0, statusUrl: `/v1/audit/self-checks/${accepted.id}` });
    expect(sound.headers['location']).toBe(accepted.statusUrl);
    // While it runs the hub stays ready and says so; asking again answers the same run.
    const running = await hub.get('/health/ready');
    expect(running.statusCode).toBe(200);
    expect(running.json<{ selfCheck: unknown }>().selfCheck).toEqual({ status: 'running', verifiedThrough: built.head, run: 'requested', runId: accepted.id, checked: expect.any(Number), total: built.head });
    expect((await hub.post('/v1/audit/self-checks', {}, hub.operator)).json()).toMatchObject({ id: accepted.id });
    const passed = await until(async () => {
      const r = (await hub.get(accepted.statusUrl, hub.operator)).json<{ status: string }>();
      return r.status === 'running' ? undefined : r;
    }, 'the requested run');
    expect(passed).toMatchObject({ status: 'passed', from: 0, to: built.head, checked: built.head, checkpoints: built.checkpoints.length, findingCount: 0 });

    // Changed while the hub runs: only a re-check can see it.
    const position = 42;
    const { serial, original, altered } = alterEvent(dir, position, KEEP_JSON);
    expect((await hub.get('/health/ready')).statusCode).toBe(200);
    const res = await hub.post('/v1/audit/self-checks', {}, hub.operator);
    expect(res.statusCode).toBe(202);
    const url = res.json<{ statusUrl: string }>().statusUrl;
    const failed = await until(async () => {
      const r = (await hub.get(url, hub.operator)).json<{ status: string }>();
      return r.status === 'running' ? undefined : r;
    }, 'the second requested run');
    const finding = { check: 'leaf', code: 'LEAF_MISMATCH', position, serial, expected: toHex(leafHash(original)), calculated: toHex(leafHash(altered)) };
    expect(failed).toMatchObject({ status: 'failed', findingCount: 1, findings: [finding] });
    const problem = expectProblem(await hub.get('/health/ready'), 503, 'NOT_READY');
    expect(problem['selfCheck']).toMatchObject({ status: 'failed', run: 'requested', finding });
    expectProblem(await hub.get('/v1/audit/self-checks/no-such-run', hub.operator), 404, 'NOT_FOUND');
  });
});

describe('HUB_SELF_CHECK=off', () => {
  it('starts without checking (readiness says off, the signer signs), and the operator can still ask for a check', async () => {
    const dir = dataDir();
    const built = await buildLedger(dir, 150);
    const position = 7;
    const { serial } = alterEvent(dir, position, KEEP_JSON);
    const hub = await start(dir, { HUB_SELF_CHECK: 'off', HUB_CHECKPOINT_EVERY_EVENTS: '1' });
    const ready = await hub.get('/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json<{ selfCheck: unknown }>().selfCheck).toEqual({ status: 'off', verifiedThrough: 0 });
    await appendEvents(hub, 1);
    expect((await checkpointsInLog(hub)).length).toBe(built.checkpoints.length + 1);

    const url = (await hub.post('/v1/audit/self-checks', {}, hub.operator)).json<{ statusUrl: string }>().statusUrl;
    await until(async () => ((await hub.get(url, hub.operator)).json<{ status: string }>().status === 'running' ? undefined : true), 'the requested run');
    const problem = expectProblem(await hub.get('/health/ready'), 503, 'NOT_READY');
    expect(problem['selfCheck']).toMatchObject({ status: 'failed', run: 'requested', finding: { code: 'LEAF_MISMATCH', position, serial } });
    const signed = (await checkpointsInLog(hub)).length;
    await appendEvents(hub, 1);
    await new Promise((r) => setTimeout(r, 300));
    expect((await checkpointsInLog(hub)).length).toBe(signed);
  });
});
