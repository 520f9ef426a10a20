// The one-shot jobs of the deployment, run on the built apps as the containers run them:
// - deploy/compose/hub-keygen.mjs makes every key and token the hub needs, private, once (a second run keeps them),
//   and a hub given those keys (copied in, as the Kubernetes init container does) starts on them;
// - deploy/compose/register-agency.mjs makes the intermediate server's answer key, loads its copies, registers
//   it at the hub with the operator token and keeps the issued token; run again it changes nothing, and a lost
//   token is replaced by a credential rotation; the server then serves with that token.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../support/free-ports.js';
import { ROOT } from './deploy-checks.js';

const HUB_MAIN = join(ROOT, 'dist/apps/hub/src/main.js');
const NODE_MAIN = join(ROOT, 'dist/apps/agency-node/src/main.js');
const KEYGEN = join(ROOT, 'deploy/compose/hub-keygen.mjs');
const REGISTER = join(ROOT, 'deploy/compose/register-agency.mjs');
/** The keys and tokens apps/hub/README.md lists (Keys). */
const HUB_KEYS = [
  'agency-code.key.json',
  'auditor.token.json',
  'blind-index.key.json',
  'checkpoint-signing.key.json',
  'key-encryption.key.json',
  'operator.token.json',
  'provision-signing.key.json',
  'sealing.key.json',
];

const started: ChildProcess[] = [];

function start(main: string, args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [main, ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  started.push(child);
  return { child, output: () => text };
}

async function waitFor(url: string, what: { child: ChildProcess; output: () => string }): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && what.child.exitCode === null) {
    if ((await fetch(url).then((r) => r.status, () => 0)) === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200:\n${what.output()}`);
}

function run(script: string, args: string[], env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('deploy scripts on the built apps', () => {
  let dir: string;
  let hubUrl: string;
  let keys: string;
  let agencyEnv: Record<string, string>;

  beforeAll(async () => {
    for (const main of [HUB_MAIN, NODE_MAIN]) if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
    dir = mkdtempSync(join(tmpdir(), 'deploy-scripts-'));
    keys = join(dir, 'hub-keys');
  });

  afterAll(async () => {
    for (const child of started) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(started.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  });

  it('hub-keygen makes every key and token the hub needs, mode 0600, and keeps them when run again', async () => {
    const [port] = await freePorts(1);
    const first = run(KEYGEN, [keys], { KEYGEN_PORT: String(port) });
    expect(first.status, first.out).toBe(0);
    expect(readdirSync(keys).sort()).toEqual(HUB_KEYS);
    for (const file of HUB_KEYS) expect(mode(join(keys, file)), file).toBe(0o600);
    expect(mode(keys)).toBe(0o700);
    const before = HUB_KEYS.map((f) => readFileSync(join(keys, f), 'utf8'));
    const second = run(KEYGEN, [keys], { KEYGEN_PORT: String(port) });
    expect(second.status, second.out).toBe(0);
    expect(HUB_KEYS.map((f) => readFileSync(join(keys, f), 'utf8'))).toEqual(before);
    expect(run(KEYGEN, [], {}).status).toBe(2);
  });

  it('a hub started with those keys copied into its data dir uses them', async () => {
    const hubData = join(dir, 'hub');
    mkdirSync(join(hubData, 'keys'), { recursive: true, mode: 0o700 });
    for (const file of HUB_KEYS) copyFileSync(join(keys, file), join(hubData, 'keys', file));
    const [port] = await freePorts(1);
    hubUrl = `http://127.0.0.1:${port}`;
    // As the deployment runs it (HUB_TLS=off in its compose and k8s files, docs/tls.md).
    const hub = start(HUB_MAIN, [], { HUB_DATA_DIR: hubData, HUB_PORT: String(port!), HUB_REDIS_URL: 'off', HUB_LOG_LEVEL: 'warn', HUB_TLS: 'off' });
    await waitFor(`${hubUrl}/health/ready`, hub);
    expect(readdirSync(join(hubData, 'keys')).sort()).toEqual(HUB_KEYS);
    const operator = (JSON.parse(readFileSync(join(keys, 'operator.token.json'), 'utf8')) as { token: string }).token;
    // The operator's token of the generated keys is the one the hub accepts.
    const res = await fetch(`${hubUrl}/v1/agencies`, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(400);
    const wrong = await fetch(`${hubUrl}/v1/agencies`, { method: 'POST', headers: { authorization: `Bearer ${'x'.repeat(43)}`, 'content-type': 'application/json' }, body: '{}' });
    expect(wrong.status).toBe(401);
  });

  it('register-agency registers the intermediate server once, keeps its token, and replaces a lost one by a rotation', async () => {
    const [nodePort] = await freePorts(1);
    const data = join(dir, 'muroran-city');
    agencyEnv = {
      AGENCY_ID: 'muroran-city',
      AGENCY_NAME: '室蘭市',
      AGENCY_KIND: 'municipality',
      AGENCY_MUNICIPALITY_CODE: '012050',
      AGENCY_ENDPOINT: `http://127.0.0.1:${nodePort}`,
      AGENCY_DATA_DIR: data,
      AGENCY_TOKEN_FILE: join(data, 'hub.token'),
      AGENCY_HUB_URL: hubUrl,
      COPIES_FILE: join(ROOT, 'apps/agency-node/demo/muroran-city.copies.json'),
      OPERATOR_TOKEN_FILE: join(keys, 'operator.token.json'),
    };
    const first = run(REGISTER, [], agencyEnv);
    expect(first.status, first.out).toBe(0);
    expect(first.out).toMatch(/register: loaded copies/);
    expect(first.out).toMatch(/register: muroran-city registered \(serial \d{20}\)/);
    const token = readFileSync(agencyEnv['AGENCY_TOKEN_FILE']!, 'utf8').trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(mode(agencyEnv['AGENCY_TOKEN_FILE']!)).toBe(0o600);
    const agency = (await (await fetch(`${hubUrl}/v1/agencies/muroran-city`)).json()) as { endpoint?: string; status?: string };
    expect(agency).toMatchObject({ status: 'active' });

    const again = run(REGISTER, [], agencyEnv);
    expect(again.status, again.out).toBe(0);
    expect(again.out).toContain('register: muroran-city is registered and holds its token');
    expect(readFileSync(agencyEnv['AGENCY_TOKEN_FILE']!, 'utf8').trim()).toBe(token);

    unlinkSync(agencyEnv['AGENCY_TOKEN_FILE']!);
    const rotated = run(REGISTER, [], agencyEnv);
    expect(rotated.status, rotated.out).toBe(0);
    expect(rotated.out).toMatch(/register: muroran-city given a new token \(serial \d{20}\)/);
    expect(readFileSync(agencyEnv['AGENCY_TOKEN_FILE']!, 'utf8').trim()).not.toBe(token);

    // And the server serves with what the job left: its key, its copies, its token.
    const node = start(NODE_MAIN, ['serve'], { ...agencyEnv, AGENCY_PORT: String(nodePort), AGENCY_HOST: '127.0.0.1', AGENCY_LOG_LEVEL: 'warn' });
    await waitFor(`http://127.0.0.1:${nodePort}/health/ready`, node);
  });

  it('register-agency fails, naming the variable, when one is missing', () => {
    const { AGENCY_NAME: _dropped, ...rest } = agencyEnv;
    const r = run(REGISTER, [], { ...rest, AGENCY_ID: 'sapporo-city', AGENCY_DATA_DIR: join(dir, 'sapporo-city'), AGENCY_TOKEN_FILE: join(dir, 'sapporo-city', 'hub.token') });
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('AGENCY_NAME is required');
  });
});
