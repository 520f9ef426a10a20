import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortalConfig } from '../config/portal-config.js';
import { HubClient, type HubAnswer } from '../hub/hub-client.js';
import { PortalProblem } from '../http/portal-problem.js';
import { FailedAttempts } from '../session/attempts.js';
import { Sessions } from '../session/session.js';
import { PORTAL_CONFIG } from '../tokens.js';

type Json = Record<string, unknown>;

/** Hub codes that mean the session cookie admits nothing any more: the cookie is cleared. */
const SESSION_GONE = new Set(['SESSION_EXPIRED', 'UNAUTHENTICATED', 'CREDENTIAL_RETIRED']);

const SECRET = /^[A-Za-z0-9_-]{16,200}$/;
const ID = /^[A-Za-z0-9_.:-]{1,200}$/;

function text(v: unknown, what: string, pattern: RegExp): string {
  if (typeof v !== 'string' || !pattern.test(v)) throw new PortalProblem(400, 'VALIDATION_FAILED', `${what} is missing or malformed`, { errors: [{ field: what }] });
  return v;
}

function object(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PortalProblem(400, 'VALIDATION_FAILED', `${what} must be an object`, { errors: [{ field: what }] });
  return v as Json;
}

/** Only the named query parameters, each once and short, pass to the hub. */
function pick(request: FastifyRequest, names: readonly string[]): URLSearchParams {
  const q = (request.query ?? {}) as Record<string, unknown>;
  const out = new URLSearchParams();
  for (const n of names) {
    const v = q[n];
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string' || v.length > 200) throw new PortalProblem(400, 'VALIDATION_FAILED', `query parameter ${n} is malformed`, { errors: [{ field: n }] });
    out.set(n, v);
  }
  return out;
}

/**
 * The backend for the frontend: each route relays one call of the hub's citizen API with the
 * credential the citizen gave (the one-time secret in the body, or the session token in the cookie).
 * State-changing routes need the portal's Origin and the CSRF token bound to the session (or, before
 * sign-in, to the pre-session cookie).
 */
@Controller('api')
export class ApiController {
  constructor(
    @Inject(PORTAL_CONFIG) private readonly config: PortalConfig,
    private readonly sessions: Sessions,
    private readonly hub: HubClient,
    private readonly attempts: FailedAttempts,
  ) {}

  // ---- session state ----

  @Get('session')
  async session(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<Json> {
    const token = this.sessions.token(request);
    if (token !== undefined) {
      const answer = await this.hub.call('GET', '/v1/citizens/me/notices', { token, query: new URLSearchParams({ limit: '1' }) });
      if (answer.status === 200) {
        const body = JSON.parse(answer.text) as { unread?: unknown };
        return { signedIn: true, csrfToken: this.sessions.csrfFor('session', token), unread: typeof body.unread === 'number' ? body.unread : null };
      }
      if (answer.status !== 401) throw HubClient.problem(answer);
      this.sessions.clearSession(reply);
    }
    const pre = this.sessions.pre(request) ?? this.sessions.newPre(reply);
    return { signedIn: false, csrfToken: this.sessions.csrfFor('pre', pre) };
  }

  // ---- enrolment with the one-time secret, and sign-in with a passkey (before a session) ----

  @Post('enrolment/options')
  @HttpCode(200)
  async enrolmentOptions(@Req() request: FastifyRequest, @Body() body: unknown): Promise<unknown> {
    this.guardPre(request);
    const secret = text(object(body, 'body')['secret'], 'secret', SECRET);
    return HubClient.json(await this.attempt(request, () => this.hub.call('POST', '/v1/citizens/passkeys/registration-options', { token: secret, body: {} })));
  }

  @Post('enrolment')
  @HttpCode(201)
  async enrol(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<Json> {
    this.guardPre(request);
    const b = object(body, 'body');
    const secret = text(b['secret'], 'secret', SECRET);
    const forward = this.registration(b);
    return this.openSession(reply, await this.attempt(request, () => this.hub.call('POST', '/v1/citizens/passkeys', { token: secret, body: forward })));
  }

  @Post('sessions/options')
  @HttpCode(200)
  async signInOptions(@Req() request: FastifyRequest): Promise<unknown> {
    this.guardPre(request);
    return HubClient.json(await this.hub.call('POST', '/v1/citizens/sessions/options', { body: {} }));
  }

  @Post('sessions')
  @HttpCode(201)
  async signIn(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<Json> {
    this.guardPre(request);
    const b = object(body, 'body');
    const forward = { challengeId: text(b['challengeId'], 'challengeId', ID), response: object(b['response'], 'response') };
    return this.openSession(reply, await this.attempt(request, () => this.hub.call('POST', '/v1/citizens/sessions', { body: forward })));
  }

  // ---- with a session ----

  @Post('signout')
  @HttpCode(204)
  async signOut(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    const token = this.guardSession(request);
    // The cookie goes whatever the hub says; the hub ends the session so the token admits nothing more.
    this.sessions.clearSession(reply);
    const answer = await this.hub.call('DELETE', '/v1/citizens/me/session', { token });
    if (answer.status >= 400 && answer.status !== 401) throw HubClient.problem(answer);
  }

  @Get('records')
  async records(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    return this.get(request, reply, '/v1/citizens/me/provision-records', ['from', 'to', 'agencyId', 'limit', 'after']);
  }

  @Get('records.csv')
  async recordsCsv(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const token = this.requireSession(request);
    const answer = await this.hub.call('GET', '/v1/citizens/me/provision-records.csv', { token, query: pick(request, ['from', 'to', 'agencyId']) });
    if (answer.status >= 400) throw this.failed(answer, reply);
    void reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="provision-records.csv"; filename*=UTF-8''${encodeURIComponent('情報提供等記録.csv')}`);
    return answer.text;
  }

  @Get('statistics')
  async statistics(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    return this.get(request, reply, '/v1/citizens/me/statistics', ['from', 'to']);
  }

  @Get('notices')
  async notices(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    return this.get(request, reply, '/v1/citizens/me/notices', ['limit', 'before']);
  }

  @Post('notices/:noticeId/read')
  @HttpCode(200)
  async readNotice(@Req() request: FastifyRequest, @Param('noticeId') noticeId: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    const token = this.guardSession(request);
    const id = text(noticeId, 'noticeId', ID);
    return this.json(reply, await this.hub.call('POST', `/v1/citizens/me/notices/${encodeURIComponent(id)}/read`, { token, body: {} }));
  }

  @Get('self-information/options')
  async selfInformationOptions(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    return this.get(request, reply, '/v1/citizens/me/self-information/options', []);
  }

  @Post('self-information-requests')
  @HttpCode(200)
  async selfInformation(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    const token = this.guardSession(request);
    const b = object(body, 'body');
    const forward = {
      providerAgencyId: text(b['providerAgencyId'], 'providerAgencyId', ID),
      itemCode: text(b['itemCode'], 'itemCode', ID),
      answerPublicKey: text(b['answerPublicKey'], 'answerPublicKey', /^[A-Za-z0-9_-]{43}$/),
    };
    return this.json(reply, await this.hub.call('POST', '/v1/citizens/me/self-information-requests', { token, body: forward }));
  }

  @Get('passkeys')
  async passkeys(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    return this.get(request, reply, '/v1/citizens/me/passkeys', []);
  }

  @Post('passkeys/options')
  @HttpCode(200)
  async addPasskeyOptions(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    const token = this.guardSession(request);
    return this.json(reply, await this.hub.call('POST', '/v1/citizens/passkeys/registration-options', { token, body: {} }));
  }

  @Post('passkeys')
  @HttpCode(201)
  async addPasskey(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<Json> {
    const token = this.guardSession(request);
    const answer = await this.hub.call('POST', '/v1/citizens/passkeys', { token, body: this.registration(object(body, 'body')) });
    if (answer.status >= 400) throw this.failed(answer, reply);
    const created = HubClient.json(answer) as Json;
    const { session, ...rest } = created;
    void session;
    return { ...rest, csrfToken: this.sessions.csrfFor('session', token) };
  }

  @Delete('passkeys/:passkeyId')
  async removePasskey(@Req() request: FastifyRequest, @Param('passkeyId') passkeyId: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    const token = this.guardSession(request);
    const id = text(passkeyId, 'passkeyId', ID);
    return this.json(reply, await this.hub.call('DELETE', `/v1/citizens/me/passkeys/${encodeURIComponent(id)}`, { token }));
  }

  // ---- tamper evidence: what the browser verifies ----

  @Get('audit/proofs/inclusion')
  async inclusion(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    // With the session: a party of the serial gets the openings of its own fields.
    return this.get(request, reply, '/v1/audit/proofs/inclusion', ['serial', 'size']);
  }

  @Get('audit/checkpoint')
  async checkpoint(@Req() request: FastifyRequest): Promise<unknown> {
    const size = pick(request, ['size']).get('size');
    if (size !== null && !/^\d{1,15}$/.test(size)) throw new PortalProblem(400, 'VALIDATION_FAILED', 'size must be a tree size', { errors: [{ field: 'size' }] });
    const path = size === null ? '/v1/audit/checkpoint' : `/v1/audit/checkpoints/${size}`;
    return HubClient.json(await this.hub.call('GET', path, { query: new URLSearchParams({ format: 'json' }) }));
  }

  @Get('audit/verifier-key')
  async verifierKey(): Promise<unknown> {
    return HubClient.json(await this.hub.call('GET', '/v1/audit/verifier-key', { query: new URLSearchParams({ format: 'json' }) }));
  }

  /** The log's checkpoint keys, first to newest: the browser checks them as a chain from the key it pinned. */
  @Get('audit/verifier-keys')
  async verifierKeys(): Promise<unknown> {
    return HubClient.json(await this.hub.call('GET', '/v1/audit/verifier-keys', {}));
  }

  // ---- helpers ----

  /** A pre-session call to the hub, refused here while this client has failed too often. */
  private async attempt(request: FastifyRequest, call: () => Promise<HubAnswer>): Promise<HubAnswer> {
    const client = request.ip;
    const wait = this.attempts.retryAfter(client);
    if (wait > 0) throw new PortalProblem(429, 'TOO_MANY_ATTEMPTS', `too many failed attempts from this address; try again in ${wait} s`, { retryAfter: wait });
    const answer = await call();
    if (answer.status === 400 || answer.status === 401 || answer.status === 403) this.attempts.failed(client);
    return answer;
  }

  private registration(b: Json): Json {
    const label = b['label'];
    if (label !== undefined && (typeof label !== 'string' || label.length > 64)) throw new PortalProblem(400, 'VALIDATION_FAILED', 'label must be at most 64 characters', { errors: [{ field: 'label' }] });
    return { challengeId: text(b['challengeId'], 'challengeId', ID), response: object(b['response'], 'response'), ...(typeof label === 'string' && label.trim() !== '' ? { label: label.trim() } : {}) };
  }

  private openSession(reply: FastifyReply, answer: HubAnswer): Json {
    const created = HubClient.json(answer) as Json;
    const session = created['session'] as { token?: unknown; expiresAt?: unknown } | undefined;
    if (typeof session?.token !== 'string' || typeof session.expiresAt !== 'string') throw new PortalProblem(502, 'HUB_ANSWER_INVALID', 'the hub opened no session');
    this.sessions.setSession(reply, session.token, session.expiresAt);
    // The token itself never reaches the page's JavaScript: it lives in the HttpOnly cookie only.
    const { session: _session, ...rest } = created;
    return { ...rest, expiresAt: session.expiresAt, csrfToken: this.sessions.csrfFor('session', session.token) };
  }

  private async get(request: FastifyRequest, reply: FastifyReply, path: string, names: readonly string[]): Promise<unknown> {
    const token = this.requireSession(request);
    return this.json(reply, await this.hub.call('GET', path, { token, query: pick(request, names) }));
  }

  private json(reply: FastifyReply, answer: HubAnswer): unknown {
    if (answer.status >= 400) throw this.failed(answer, reply);
    return HubClient.json(answer);
  }

  private failed(answer: HubAnswer, reply: FastifyReply): PortalProblem {
    const problem = HubClient.problem(answer);
    if (answer.status === 401 && SESSION_GONE.has(problem.code)) this.sessions.clearSession(reply);
    return problem;
  }

  private requireSession(request: FastifyRequest): string {
    const token = this.sessions.token(request);
    if (token === undefined) throw new PortalProblem(401, 'NOT_SIGNED_IN', 'sign in first');
    return token;
  }

  private checkOrigin(request: FastifyRequest): void {
    const origin = request.headers.origin;
    if (origin !== this.config.origin) throw new PortalProblem(403, 'ORIGIN_REFUSED', `state-changing calls must come from ${this.config.origin}`);
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') throw new PortalProblem(403, 'ORIGIN_REFUSED', 'state-changing calls must be same-origin');
  }

  private guardSession(request: FastifyRequest): string {
    this.checkOrigin(request);
    const token = this.requireSession(request);
    if (!this.sessions.checkCsrf('session', token, request.headers['x-csrf-token'])) throw new PortalProblem(403, 'CSRF_TOKEN_INVALID', 'the X-CSRF-Token header does not match this session');
    return token;
  }

  private guardPre(request: FastifyRequest): void {
    this.checkOrigin(request);
    const pre = this.sessions.pre(request);
    if (pre === undefined || !this.sessions.checkCsrf('pre', pre, request.headers['x-csrf-token'])) {
      throw new PortalProblem(403, 'CSRF_TOKEN_INVALID', 'the X-CSRF-Token header does not match this browser: reload the page');
    }
  }
}
