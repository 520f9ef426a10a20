import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENCIES, AOYAMA, NODE_MAIN, ROOT, startNetwork, type DemoAgencyId, type Network } from '../src/network.js';

/**
 * Every log line of every process of the demo network (the hub and both intermediate servers, all at
 * their most verbose level) is one JSON object, and none holds a personal value: Aoyama-san's
 * individual number, resident record code and citizen secret, either agency's code for her, any
 * credential, the answer's contents or the notice's text. The demo runs as `npm run demo` does, plus
 * refused requests that carry those values in their bodies, headers and URLs.
 */

const DEMO = join(ROOT, 'dist/apps/demo/src/demo.js');

/** A port p with p, p + 1 and p + 2 free: the demo finds the intermediate servers at the hub's port + 1 and + 2. */
async function freeRun(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await free(base)) && (await free(base + 1)) && (await free(base + 2))) return base;
  }
  throw new Error('no three consecutive free ports');
}

interface Run {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

function spawnNode(name: string, args: readonly string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { name, child, exited, output: () => text };
}

async function until(what: string, probe: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tokenOf = (dataDir: string, agency: string) => readFileSync(join(dataDir, 'nodes', agency, 'hub.token'), 'utf8').trim();
const keyToken = (dataDir: string, file: string) => (JSON.parse(readFileSync(join(dataDir, 'keys', file), 'utf8')) as { token: string }).token;

function readCodes(dataDir: string, agency: string): string[] {
  const db = new Database(join(dataDir, 'nodes', agency, 'agency.sqlite'), { readonly: true });
  try {
    return (db.prepare('SELECT agency_code FROM persons WHERE agency_code IS NOT NULL').pluck().all() as string[]).filter((c) => c.length > 0);
  } finally {
    db.close();
  }
}

let work: string;
let dataDir: string;
let network: Network | undefined;
let hubPort: number;
const nodes: Run[] = [];
const logs: { process: string; text: string }[] = [];
let demoOutput = '';
let secrets: { name: string; value: string }[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'log-privacy-'));
  dataDir = join(work, 'data');
  hubPort = await freeRun();
  const nodePorts = { 'jpn-pension-service': hubPort + 1, 'muroran-city': hubPort + 2 } as const;
  network = await startNetwork({ dataDir, hubPort, nodePorts, log: () => {}, hubEnv: { HUB_REDIS_URL: 'off', HUB_LOG_LEVEL: 'verbose', HUB_CHECKPOINT_EVERY_MS: '500' } });
  const hubUrl = network.hubUrl;
  // The intermediate servers again, at their most verbose level, on the same ports and data.
  for (const p of network.processes.filter((p) => p.name !== 'hub')) {
    p.child.kill('SIGTERM');
    await p.exited;
    logs.push({ process: `${p.name} (first run)`, text: p.output() });
  }
  for (const agency of AGENCIES) {
    const id: DemoAgencyId = agency.agencyId;
    const run = spawnNode(id, [NODE_MAIN, 'serve'], {
      AGENCY_ID: id,
      AGENCY_DATA_DIR: join(dataDir, 'nodes', id),
      AGENCY_HUB_URL: hubUrl,
      AGENCY_TOKEN_FILE: join(dataDir, 'nodes', id, 'hub.token'),
      AGENCY_HOST: '127.0.0.1',
      AGENCY_PORT: String(nodePorts[id]),
      AGENCY_LOG_LEVEL: 'verbose',
      AGENCY_PUSH_FETCH: 'on',
    });
    nodes.push(run);
    await until(`${id} ready`, async () => (await fetch(`http://127.0.0.1:${nodePorts[id]}/health/ready`).catch(() => undefined))?.status === 200);
  }

  // npm run demo: the query, Aoyama-san's records, the notice and her inbox, the update pushed and fetched.
  // This network runs over plain HTTP (the logs are what is looked at; TLS: network-tls.e2e.spec.ts), so the demo is told so.
  const demo = spawnNode('demo', [DEMO], { HUB_DATA_DIR: dataDir, HUB_PORT: String(hubPort), HUB_TLS: 'off' });
  expect(await demo.exited, demo.output()).toBe(0);
  demoOutput = demo.output();
  expect(demoOutput).toContain('outcome: answered');

  // Requests that carry the personal values where a careless log would pick them up.
  const aoyama = network.aoyama;
  const pensionToken = tokenOf(dataDir, 'jpn-pension-service');
  const [muroranCode] = readCodes(dataDir, 'muroran-city');
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  await post(`${hubUrl}/v1/agency-codes`, { individualNumber: aoyama.individualNumber, acquisitionNumber: 'LOG-1' }, { authorization: `Bearer ${pensionToken}`, cookie: `session=${aoyama.citizenSecret}` });
  await post(`${hubUrl}/v1/agency-codes`, { individualNumber: aoyama.individualNumber, acquisitionNumber: 'LOG-2' }, { authorization: 'Bearer not-a-token-of-anyone-0000' });
  await post(`${hubUrl}/v1/queries`, { code: muroranCode, providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, { authorization: `Bearer ${pensionToken}` });
  await post(`${hubUrl}/v1/queries`, { code: muroranCode, providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], extra: aoyama.individualNumber }, { authorization: `Bearer ${pensionToken}` });
  await fetch(`${hubUrl}/v1/individual-numbers/${aoyama.individualNumber}?secret=${aoyama.citizenSecret}`);
  await fetch(`${hubUrl}/v1/citizens/me/provision-records`, { headers: { authorization: `Bearer ${aoyama.citizenSecret}` } });
  await post(`http://127.0.0.1:${nodePorts['jpn-pension-service']}/v1/queries`, { localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] });
  await post(`http://127.0.0.1:${nodePorts['muroran-city']}/v1/provisions`, { code: muroranCode, individualNumber: aoyama.individualNumber }, { 'hub-signature': 'ed25519=forged' });

  secrets = [
    { name: 'individual number', value: aoyama.individualNumber },
    { name: 'resident record code', value: AOYAMA.residentRecordCode },
    { name: 'citizen secret', value: aoyama.citizenSecret },
    { name: 'operator token', value: keyToken(dataDir, 'operator.token.json') },
    { name: 'auditor token', value: keyToken(dataDir, 'auditor.token.json') },
    { name: 'answer (taxable income)', value: '3120000' },
    { name: 'updated copy, pushed and fetched (taxable income)', value: '2980000' },
    { name: 'notice title', value: '住民税 課税証明書のご案内' },
    { name: 'notice text', value: '課税証明書の提出は不要です' },
  ];
  for (const agency of AGENCIES) {
    secrets.push({ name: `${agency.agencyId} token`, value: tokenOf(dataDir, agency.agencyId) });
    for (const code of readCodes(dataDir, agency.agencyId)) secrets.push({ name: `${agency.agencyId} code`, value: code });
  }
  // Stopped before reading: what is logged at shutdown, and whatever was still buffered, is in.
  for (const n of nodes) {
    n.child.kill('SIGTERM');
    await n.exited;
    logs.push({ process: n.name, text: n.output() });
  }
  await network.stop();
  for (const p of network.processes.filter((p) => p.name === 'hub')) logs.push({ process: p.name, text: p.output() });
  network = undefined;
}, 300_000);

afterAll(async () => {
  for (const n of nodes) if (n.child.exitCode === null) n.child.kill('SIGKILL');
  await network?.stop('SIGKILL');
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the logs of the demo network', () => {
  it('knows what it looks for, and the demo showed it (so the values were there to be logged)', () => {
    expect(secrets.filter((s) => s.name.endsWith(' code')).length).toBeGreaterThanOrEqual(2);
    expect(demoOutput).toContain('3120000');
    expect(demoOutput).toContain('2980000');
    expect(demoOutput).toContain('住民税 課税証明書のご案内');
  });

  it('is one JSON object per line in every process, with request lines that name a request id and route', () => {
    let requests = 0;
    for (const { process, text } of logs) {
      const lines = text.split('\n').filter((l) => l !== '');
      if (!process.endsWith('(first run)')) expect(lines.length, `${process} logged nothing`).toBeGreaterThan(5);
      for (const line of lines) {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new Error(`${process}: not a JSON line: ${line}`);
        }
        expect(parsed, `${process}: ${line}`).toMatchObject({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) });
        if (parsed['msg'] === 'request') {
          requests++;
          expect(parsed, line).toMatchObject({ correlationId: expect.any(String), route: expect.any(String), method: expect.any(String), status: expect.any(Number) });
        }
      }
    }
    expect(requests).toBeGreaterThan(10);
    // The hub's command lines name their serial.
    const hub = logs.find((l) => l.process === 'hub')!.text;
    expect(hub).toMatch(/"route":"\/v1\/queries","status":200,"ms":[\d.]+,"serial":"\d{20}"/);
  });

  it('holds no number, code, secret, credential, answer or notice text in any line of any process', () => {
    for (const { process, text } of logs) {
      for (const s of secrets) expect(text.includes(s.value), `${s.name} in the log of ${process}`).toBe(false);
    }
  });
});
