import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PortalConfigError, loadPortalConfig } from '../src/config/portal-config.js';
import { contentSecurityPolicy } from '../src/http/security-headers.js';
import { loadPortalKey } from '../src/session/portal-key.js';
import { Sessions } from '../src/session/session.js';

describe('the portal configuration', () => {
  it('defaults to port 3300 on localhost over the hub at 127.0.0.1:8080, cookies not Secure on http://localhost only', () => {
    const c = loadPortalConfig({});
    expect(c).toMatchObject({ port: 3300, hubUrl: 'http://127.0.0.1:8080', origin: 'http://localhost:3300', secureCookies: false });
    expect(loadPortalConfig({ PORTAL_ORIGIN: 'https://portal.example.jp' }).secureCookies).toBe(true);
  });

  it('refuses a plain-http origin that is not localhost, a path in the hub URL, a bad port', () => {
    expect(() => loadPortalConfig({ PORTAL_ORIGIN: 'http://portal.example.jp' })).toThrow(PortalConfigError);
    expect(() => loadPortalConfig({ PORTAL_HUB_URL: 'http://127.0.0.1:8080/v1' })).toThrow(/PORTAL_HUB_URL/);
    expect(() => loadPortalConfig({ PORTAL_PORT: '70000' })).toThrow(/PORTAL_PORT/);
    expect(() => loadPortalConfig({ PORTAL_ORIGIN: 'https://portal.example.jp/path' })).toThrow(/PORTAL_ORIGIN/);
    expect(() => loadPortalConfig({ PORTAL_TRUSTED_PROXIES: '10.0.0.0/33' })).toThrow(/PORTAL_TRUSTED_PROXIES/);
    expect(() => loadPortalConfig({ PORTAL_TRUSTED_PROXIES: 'proxy.example' })).toThrow(/PORTAL_TRUSTED_PROXIES/);
    expect(loadPortalConfig({ PORTAL_TRUSTED_PROXIES: '10.0.0.1, 2001:db8::/32' }).trustedProxies).toEqual(['10.0.0.1', '2001:db8::/32']);
    expect(loadPortalConfig({}).trustedProxies).toEqual([]);
  });

  it('has a CSP with no inline script, no third-party host and no framing', () => {
    const csp = contentSecurityPolicy(loadPortalConfig({ PORTAL_ORIGIN: 'https://portal.example.jp' }));
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe|https?:|\*/);
  });
});

describe('the CSRF tokens', () => {
  it('are bound to the session token under the portal key made at first start (mode 0600)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portal-key-'));
    try {
      const key = loadPortalKey(dir);
      expect(statSync(join(dir, 'portal.key.json')).mode & 0o777).toBe(0o600);
      expect(loadPortalKey(dir).equals(key)).toBe(true);
      const sessions = new Sessions(loadPortalConfig({}), key);
      const token = 'A'.repeat(43);
      const csrf = sessions.csrfFor('session', token);
      expect(sessions.checkCsrf('session', token, csrf)).toBe(true);
      expect(sessions.checkCsrf('session', 'B'.repeat(43), csrf)).toBe(false);
      expect(sessions.checkCsrf('pre', token, csrf)).toBe(false);
      expect(sessions.checkCsrf('session', token, undefined)).toBe(false);
      expect(new Sessions(loadPortalConfig({}), Buffer.alloc(32, 1)).checkCsrf('session', token, csrf)).toBe(false);
      expect(new Sessions(loadPortalConfig({ PORTAL_ORIGIN: 'https://portal.example.jp' }), key).sessionCookie).toBe('__Host-portal-session');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('failed enrolment and sign-in attempts', () => {
  it('are limited per client address and minute, and forgotten after it', async () => {
    const { FailedAttempts } = await import('../src/session/attempts.js');
    const attempts = new FailedAttempts(3, 60_000, 2);
    const t0 = 1_000_000;
    for (let i = 0; i < 3; i++) {
      expect(attempts.retryAfter('10.0.0.1', t0 + i)).toBe(0);
      attempts.failed('10.0.0.1', t0 + i);
    }
    expect(attempts.retryAfter('10.0.0.1', t0 + 10)).toBe(60);
    expect(attempts.retryAfter('10.0.0.2', t0 + 10)).toBe(0);
    expect(attempts.retryAfter('10.0.0.1', t0 + 60_000)).toBe(0);
    // Bounded memory: a third client evicts the stale or oldest.
    attempts.failed('10.0.0.2', t0 + 20);
    attempts.failed('10.0.0.3', t0 + 30);
    expect(attempts.retryAfter('10.0.0.1', t0 + 40)).toBe(0);
  });
});
