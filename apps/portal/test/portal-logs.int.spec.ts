import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPortalConfig } from '../src/config/portal-config.js';
import { createPortalApp } from '../src/portal-app.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portal-logs-'));
  mkdirSync(join(dir, 'web'));
  writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><html lang="ja"></html>');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the portal\'s logs', () => {
  it('are one JSON object per line, a line per answered request with its id and route, and never a URL, cookie, header or body', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        done();
      },
    });
    const SECRET = 'AOYAMA-SECRET-7f3a9c';
    const config = loadPortalConfig({ PORTAL_HUB_URL: 'http://127.0.0.1:9', PORTAL_DATA_DIR: join(dir, 'data'), PORTAL_WEB_ROOT: join(dir, 'web'), PORTAL_LOG_LEVEL: 'debug' });
    const app = await createPortalApp(config, { logStream: stream });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    let cookie = '';
    try {
      const session = await app.inject({ method: 'GET', url: `/api/session?probe=${SECRET}` });
      cookie = String(session.headers['set-cookie']).split(';')[0]!;
      // No CSRF token: refused before the hub is asked; the secret is in the body, a header and the cookie.
      const refused = await app.inject({
        method: 'POST',
        url: '/api/sessions/options',
        headers: { cookie: `${cookie}; extra=${SECRET}`, origin: 'http://localhost:3300', 'content-type': 'application/json', 'x-secret': SECRET },
        payload: JSON.stringify({ citizenSecret: SECRET }),
      });
      expect(refused.statusCode).toBeGreaterThanOrEqual(400);
    } finally {
      await app.close();
    }
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const entry of parsed) expect(entry['app']).toBe('portal');
    const requests = parsed.filter((e) => e['msg'] === 'request');
    expect(requests.map((r) => [r['route'], r['status']])).toEqual([
      ['/api/session', 200],
      ['/api/sessions/options', 403],
    ]);
    for (const r of requests) expect(r['correlationId']).toMatch(/^[0-9a-f-]{36}$/);
    const text = lines.join('\n');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(cookie.split('=')[1]!);
    expect(text).not.toContain('probe=');
  });
});
