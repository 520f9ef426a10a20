import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortalConfig } from '../config/portal-config.js';

/**
 * Cookies and CSRF. The session cookie holds the hub's session token (the portal keeps no session
 * store: it is the citizen's own session, opened by the hub after a passkey ceremony). Before sign-in a
 * `pre` cookie (random) binds the CSRF token of the enrolment and sign-in calls, so a foreign site cannot
 * sign a browser into someone else's session either.
 */
export class Sessions {
  readonly sessionCookie: string;
  readonly preCookie: string;

  constructor(
    private readonly config: PortalConfig,
    private readonly key: Buffer,
  ) {
    // __Host- cookies need Secure; on http://localhost the plain names are used.
    this.sessionCookie = config.secureCookies ? '__Host-portal-session' : 'portal-session';
    this.preCookie = config.secureCookies ? '__Host-portal-pre' : 'portal-pre';
  }

  cookies(request: FastifyRequest): Record<string, string> {
    const out: Record<string, string> = {};
    for (const part of (request.headers.cookie ?? '').split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const name = part.slice(0, eq).trim();
      if (name !== '' && !(name in out)) out[name] = part.slice(eq + 1).trim();
    }
    return out;
  }

  /** The hub session token of this request, if it carries one of the right shape. */
  token(request: FastifyRequest): string | undefined {
    const t = this.cookies(request)[this.sessionCookie];
    return t !== undefined && /^[A-Za-z0-9_-]{20,200}$/.test(t) ? t : undefined;
  }

  pre(request: FastifyRequest): string | undefined {
    const t = this.cookies(request)[this.preCookie];
    return t !== undefined && /^[A-Za-z0-9_-]{43}$/.test(t) ? t : undefined;
  }

  /** The CSRF token bound to a session token (or to a pre-session nonce). */
  csrfFor(kind: 'session' | 'pre', value: string): string {
    return createHmac('sha256', this.key).update(`linkage-ledger/portal/csrf/${kind}\0${value}`).digest('base64url');
  }

  checkCsrf(kind: 'session' | 'pre', value: string, given: unknown): boolean {
    if (typeof given !== 'string') return false;
    const want = Buffer.from(this.csrfFor(kind, value));
    const got = Buffer.from(given);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private attributes(maxAgeSeconds: number): string {
    return `; Path=/; HttpOnly; SameSite=Strict${this.config.secureCookies ? '; Secure' : ''}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
  }

  setSession(reply: FastifyReply, token: string, expiresAt: string): void {
    const seconds = (Date.parse(expiresAt) - Date.now()) / 1000;
    this.append(reply, `${this.sessionCookie}=${token}${this.attributes(Number.isFinite(seconds) ? seconds : 900)}`);
    this.append(reply, `${this.preCookie}=${this.attributes(0)}`);
  }

  clearSession(reply: FastifyReply): void {
    this.append(reply, `${this.sessionCookie}=${this.attributes(0)}`);
  }

  /** A fresh pre-session nonce in its cookie (one hour). */
  newPre(reply: FastifyReply): string {
    const nonce = randomBytes(32).toString('base64url');
    this.append(reply, `${this.preCookie}=${nonce}${this.attributes(3600)}`);
    return nonce;
  }

  private append(reply: FastifyReply, cookie: string): void {
    const prior = reply.getHeader('set-cookie');
    const list = prior === undefined ? [] : Array.isArray(prior) ? prior.map(String) : [String(prior)];
    void reply.header('set-cookie', [...list, cookie]);
  }
}
