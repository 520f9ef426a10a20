import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPortalConfig } from '../src/config/portal-config.js';
import { createPortalApp } from '../src/portal-app.js';

// A stand-in hub that records the headers of every call the portal makes to it.
const seen: IncomingHttpHeaders[] = [];
let hub: Server;
let dir: string;

async function portalWith(env: Record<string, string>): Promise<NestFastifyApplication> {
  const app = await createPortalApp(loadPortalConfig({ PORTAL_HUB_URL: `http://127.0.0.1:${(hub.address() as { port: number }).port}`, PORTAL_DATA_DIR: join(dir, 'data'), PORTAL_WEB_ROOT: join(dir, 'web'), PORTAL_LOG_LEVEL: 'error', ...env }));
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}

/** Asks for sign-in options as a browser at `remoteAddress` would (pre-session cookie, CSRF token, Origin). */
async function signInOptions(app: NestFastifyApplication, remoteAddress: string, headers: Record<string, string> = {}): Promise<IncomingHttpHeaders> {
  const session = await app.inject({ method: 'GET', url: '/api/session', remoteAddress, headers });
  const cookie = String(session.headers['set-cookie']).split(';')[0]!;
  const { csrfToken } = session.json<{ csrfToken: string }>();
  seen.length = 0;
  const res = await app.inject({ method: 'POST', url: '/api/sessions/options', remoteAddress, headers: { ...headers, cookie, origin: 'http://localhost:3300', 'x-csrf-token': csrfToken, 'content-type': 'application/json' }, payload: '{}' });
  expect(res.statusCode, res.body).toBe(200);
  expect(seen).toHaveLength(1);
  return seen[0]!;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portal-xff-'));
  mkdirSync(join(dir, 'web'));
  writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><html lang="ja"></html>');
  hub = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ challengeId: 'c', options: {} }));
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => hub.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('the portal names the citizen\'s address to the hub (X-Forwarded-For), for the hub\'s per-source counts', () => {
  it('sends the address of the browser that called, not its own', async () => {
    const app = await portalWith({});
    try {
      expect((await signInOptions(app, '198.51.100.21'))['x-forwarded-for']).toBe('198.51.100.21');
      // A browser's own X-Forwarded-For is not believed without PORTAL_TRUSTED_PROXIES.
      expect((await signInOptions(app, '198.51.100.22', { 'x-forwarded-for': '203.0.113.9' }))['x-forwarded-for']).toBe('198.51.100.22');
    } finally {
      await app.close();
    }
  });

  it('behind a trusted proxy, sends the client that proxy names', async () => {
    const app = await portalWith({ PORTAL_TRUSTED_PROXIES: '192.0.2.10' });
    try {
      expect((await signInOptions(app, '192.0.2.10', { 'x-forwarded-for': '203.0.113.9' }))['x-forwarded-for']).toBe('203.0.113.9');
    } finally {
      await app.close();
    }
  });
});
