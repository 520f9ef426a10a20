import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsFetch } from '../../agency-node/src/hub/tls-fetch.js';
import { MAIN_JS } from './support/spawned-hub.js';

/**
 * The built hub started as `npm run start:hub` starts it, with no HUB_TLS at all: TLS is the process's
 * default. (Tests of other things spawn it with HUB_TLS=off, and drive it in process without TLS.)
 */

let work: string;
let child: ChildProcess | undefined;
let output = '';
let baseUrl: string;

beforeAll(async () => {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` before the e2e tier`);
  work = mkdtempSync(join(tmpdir(), 'tls-default-'));
  child = spawn(process.execPath, [MAIN_JS], {
    cwd: work,
    // Nothing but what a port-0 start in a fresh directory needs: the defaults are what is tested.
    env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', HUB_PORT: '0', HUB_REDIS_URL: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const url = /listening on (https?:\/\/[^\s,]+)/.exec(output)?.[1];
    if (url !== undefined) {
      baseUrl = url.replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
      break;
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the hub did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 90_000);

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((done) => child!.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  }
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the built hub without HUB_TLS (its default)', () => {
  it('serves HTTPS with a certificate of the CA it made at first start in ./data/keys (its key 0600), and says so', async () => {
    expect(baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const caFile = join(work, 'data', 'keys', 'tls-ca.cert.pem');
    expect(readFileSync(caFile, 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(statSync(join(work, 'data', 'keys', 'tls-ca.key.json')).mode & 0o077).toBe(0);
    expect(statSync(join(work, 'data', 'keys', 'tls-hub.key.json')).mode & 0o077).toBe(0);
    expect(output).toContain('agencies admitted by client certificate (mutual TLS)');
    const trusting = tlsFetch({ caCertificatePem: readFileSync(caFile, 'utf8') });
    let ready: Response | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      ready = await trusting(`${baseUrl}/health/ready`).catch(() => undefined);
      if (ready?.status === 200) break;
    }
    expect(ready?.status).toBe(200);
  });

  it('answers nothing over plain HTTP, nor to a client that does not trust its CA', async () => {
    await expect(fetch(`${baseUrl.replace('https:', 'http:')}/health/live`)).rejects.toThrow();
    await expect(fetch(`${baseUrl}/health/live`)).rejects.toThrow();
  });

  it('admits no agency call by a token alone: registration answers a certificate (mutual TLS is on)', async () => {
    const trusting = tlsFetch({ caCertificatePem: readFileSync(join(work, 'data', 'keys', 'tls-ca.cert.pem'), 'utf8') });
    const operator = (JSON.parse(readFileSync(join(work, 'data', 'keys', 'operator.token.json'), 'utf8')) as { token: string }).token;
    const registered = await trusting(`${baseUrl}/v1/agencies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agencyId: 'tls-default-city', name: '既定市', kind: 'municipality', municipalityCode: '011002', endpoint: 'https://127.0.0.1:9', publicKey: 'A'.repeat(43) }),
    });
    const body = (await registered.json()) as { token?: string; certificate?: { certificatePem: string } };
    expect(registered.status, JSON.stringify(body)).toBe(201);
    expect(body.certificate?.certificatePem).toContain('BEGIN CERTIFICATE');
    const alone = await trusting(`${baseUrl}/v1/agencies/me/statistics`, { headers: { authorization: `Bearer ${body.token}` } });
    expect(alone.status).toBe(401);
    expect(((await alone.json()) as { code: string }).code).toBe('CLIENT_CERTIFICATE_REQUIRED');
  });
});
