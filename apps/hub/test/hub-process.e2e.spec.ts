import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { validateMyNumber } from '#numbering';
import { runHub, startHub, type SpawnedHub } from './support/spawned-hub.js';

const MURORAN = '012050';

describe('the built hub as a process', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hub-e2e-'));
  // Another cwd than the repository: paths must not depend on it.
  const cwd = mkdtempSync(join(tmpdir(), 'hub-e2e-cwd-'));
  const running: SpawnedHub[] = [];

  afterEach(() => {
    for (const hub of running.splice(0)) if (hub.child.exitCode === null && hub.child.signalCode === null) hub.child.kill('SIGKILL');
  });
  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  });

  async function start(): Promise<SpawnedHub> {
    const hub = await startHub(dataDir, cwd);
    running.push(hub);
    return hub;
  }

  function issue(hub: SpawnedHub, body: unknown, key: string): Promise<Response> {
    return fetch(`${hub.baseUrl}/v1/individual-numbers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key, authorization: `Bearer ${(JSON.parse(readFileSync(join(dataDir, 'keys', 'operator.token.json'), 'utf8')) as { token: string }).token}` },
      body: JSON.stringify(body),
    });
  }

  it('keeps an acknowledged issuance across kill -9 (I9), and the retry after restart returns the same number', async () => {
    const body = { residentRecordCode: '31415926535', municipalityCode: MURORAN };
    const first = await start();

    const res = await issue(first, body, 'e2e-issue-1');
    expect(res.status).toBe(201);
    expect(res.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
    const issued = (await res.json()) as { serial: string; individualNumber: string; issuedAt: string };
    expect(validateMyNumber(issued.individualNumber).ok).toBe(true);

    const docs = await fetch(`${first.baseUrl}/docs/json`);
    expect(docs.status).toBe(200);
    const openapi = (await docs.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/v1/individual-numbers', '/v1/corporate-numbers/{number}', '/v1/events']));
    expect((await fetch(`${first.baseUrl}/docs`)).status).toBe(200);

    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const second = await start();
    const auditor = (JSON.parse(readFileSync(join(dataDir, 'keys', 'auditor.token.json'), 'utf8')) as { token: string }).token;
    const page = (await (await fetch(`${second.baseUrl}/v1/events?from=0&limit=1000`, { headers: { authorization: `Bearer ${auditor}` } })).json()) as {
      events: { type: string; serial: string; data: Record<string, unknown> }[];
      head: number;
    };
    // The authorization and self-disclosure tables published at first start, then the issuance.
    expect(page.head).toBe(3);
    expect(page.events).toEqual([
      expect.objectContaining({ type: 'AuthorizationTablePublished' }),
      expect.objectContaining({ type: 'SelfDisclosureTablePublished' }),
      expect.objectContaining({ type: 'IndividualNumberIssued', serial: issued.serial }),
    ]);
    expect(JSON.stringify(page)).not.toContain(issued.individualNumber);
    expect(JSON.stringify(page)).not.toContain(body.residentRecordCode);

    const retry = await issue(second, body, 'e2e-issue-1');
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toEqual(issued);
    const ready = (await (await fetch(`${second.baseUrl}/health/ready`)).json()) as { head: number; openSerials: number };
    expect(ready).toMatchObject({ head: 3, openSerials: 0 });

    // SIGTERM: Nest stops the server, the ledger closes (SQLite removes the WAL on a clean close), then
    // Nest re-raises the signal so the process ends as terminated by it.
    expect(existsSync(join(dataDir, 'ledger.sqlite-wal'))).toBe(true);
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(second.output()).toContain('ledger closed');
    expect(existsSync(join(dataDir, 'ledger.sqlite-wal'))).toBe(false);
  });

  it('refuses to start with a bad configuration, naming each bad variable (exit code 78)', async () => {
    const run = runHub({ HUB_DATA_DIR: dataDir, HUB_PORT: 'eighty', HUB_NODE_ID: '123' }, cwd);
    expect(await run.exited).toEqual({ code: 78, signal: null });
    expect(run.output()).toContain('invalid hub configuration');
    expect(run.output()).toContain('HUB_PORT: must be an integer from 0 to 65535, got "eighty"');
    expect(run.output()).toContain('HUB_NODE_ID: must be exactly 2 digits (e.g. 01), got "123"');
  });
});
