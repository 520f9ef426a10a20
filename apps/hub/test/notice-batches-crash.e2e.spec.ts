import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { runHub } from './support/spawned-hub.js';

/**
 * A notice batch survives a kill -9 of the hub in the middle of its fan-out: the built hub (dist, `npm run
 * build` first) runs in its own process, is killed with SIGKILL once part of the batch is recorded, and started again on the
 * same data directory; the new process resumes from the stored cursor (not from the start) and completes
 * the batch with every recipient served exactly once.
 */

const PEOPLE = 400;
const TITLE = '一斉お知らせ（再開の試験）';

interface Run {
  readonly child: ChildProcess;
  readonly url: string;
  output(): string;
  readonly exited: Promise<unknown>;
}

const dataDir = mkdtempSync(join(tmpdir(), 'hub-notice-crash-'));
const runs: Run[] = [];

async function startHub(): Promise<Run> {
  const { child, output, exited } = runHub(
    {
      HUB_DATA_DIR: dataDir,
      HUB_PORT: '0',
      HUB_HOST: '127.0.0.1',
      HUB_LOG_LEVEL: 'log',
      HUB_REDIS_URL: 'off',
      HUB_CHECKPOINT_EVERY_MS: '3600000',
      // Small chunks with a pause: the fan-out of a few hundred people takes seconds, so the kill lands in its middle.
      HUB_NOTICE_BATCH_CHUNK: '20',
      HUB_NOTICE_BATCH_PAUSE_MS: '150',
    },
    dataDir,
  );
  const text = { get current() { return output(); } };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(text.current);
    if (match) {
      const ready = await fetch(`${match[1]}/health/ready`).catch(() => undefined);
      if (ready?.status === 200) {
        const run = { child, url: match[1]!, output, exited };
        runs.push(run);
        return run;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`the hub did not become ready:\n${text.current}`);
}

async function call(url: string, method: string, token: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await task(next++);
  }));
}

afterAll(async () => {
  for (const run of runs) {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('notice batches: kill -9 of the hub in the middle of a fan-out', () => {
  it('resumes from the stored cursor after a restart: every recipient has exactly one notice, none skipped', async () => {
    const first = await startHub();
    const operator = (JSON.parse(readFileSync(join(dataDir, 'keys', 'operator.token.json'), 'utf8')) as { token: string }).token;
    const registered = await call(`${first.url}/v1/agencies`, 'POST', operator, { agencyId: 'muroran-city', name: '室蘭市', kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: (await generateAnswerKeyPair()).publicKey });
    expect(registered.status, JSON.stringify(registered.json)).toBe(201);
    const muroran = String(registered.json['token']);
    const citizens: string[] = [];
    await pool(PEOPLE, 16, async (i) => {
      const issued = await call(`${first.url}/v1/individual-numbers`, 'POST', operator, { residentRecordCode: String(30_000_000_000 + i * 7919).padStart(11, '0'), municipalityCode: '012050' });
      expect(issued.status, JSON.stringify(issued.json)).toBe(201);
      citizens[i] = String(issued.json['citizenSecret']);
      const code = await call(`${first.url}/v1/agency-codes`, 'POST', muroran, { individualNumber: issued.json['individualNumber'], acquisitionNumber: `acq-${i}` });
      expect([200, 201], JSON.stringify(code.json)).toContain(code.status);
    });

    const started = await call(`${first.url}/v1/notice-batches`, 'POST', muroran, { title: TITLE, body: '本文', audience: 'all' });
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    const batchId = String(started.json['batchId']);
    expect(started.json['total']).toBe(PEOPLE);

    // Kill -9 once part of the batch is recorded.
    let before: Record<string, unknown> = {};
    for (let i = 0; i < 600; i++) {
      before = (await call(`${first.url}/v1/notice-batches/${batchId}`, 'GET', muroran)).json;
      if (Number(before['delivered']) >= 120) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    first.child.kill('SIGKILL');
    await first.exited;
    expect(Number(before['delivered'])).toBeGreaterThanOrEqual(120);
    expect(Number(before['delivered'])).toBeLessThan(PEOPLE);

    const second = await startHub();
    let after: Record<string, unknown> = {};
    for (let i = 0; i < 900; i++) {
      after = (await call(`${second.url}/v1/notice-batches/${batchId}`, 'GET', muroran)).json;
      if (after['status'] === 'completed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(after).toMatchObject({ batchId, status: 'completed', total: PEOPLE, delivered: PEOPLE, failed: 0, pending: 0 });
    // Resumed from the cursor, not from the start.
    const resumed = /notice batch \S+: resuming the fan-out at recipient (\d+) of (\d+)/.exec(second.output());
    expect(resumed, second.output().split('\n').filter((l) => l.includes('NoticeBatchRunner')).join('\n')).not.toBeNull();
    expect(Number(resumed![1])).toBeGreaterThan(0);

    // Every citizen holds exactly one notice of the batch.
    const counts: number[] = [];
    await pool(PEOPLE, 16, async (i) => {
      const inbox = await call(`${second.url}/v1/citizens/me/notices`, 'GET', citizens[i]!);
      expect(inbox.status).toBe(200);
      counts[i] = (inbox.json['notices'] as { title: string }[]).filter((n) => n.title === TITLE).length;
    });
    expect(counts.filter((c) => c !== 1)).toEqual([]);
    expect(counts).toHaveLength(PEOPLE);
  }, 300_000);
});
