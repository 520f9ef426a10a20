import { randomUUID } from 'node:crypto';
import { AgencyProblem } from '../http/agency-problem.js';
import type { HubSettings } from '../config/agency-config.js';
import { keySetOf, type ServedKeySet } from './hub-keys.js';

export interface HubAnswer {
  readonly status: number;
  /** The parsed JSON body, or undefined when the body was not JSON. */
  readonly body: unknown;
  readonly problem: boolean;
}

const ATTEMPTS = 3;

/**
 * The agency's HTTP client for the hub. Every call carries the agency's bearer token; a call that fails
 * on the network (or times out) is sent again with the same idempotency key, so the hub acts once.
 */
export class HubClient {
  constructor(
    private readonly hub: HubSettings,
    private readonly fetchImpl: typeof fetch = fetch,
    private readonly pause: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  get url(): string {
    return this.hub.url;
  }

  async post(path: string, body: unknown, idempotencyKey: string = randomUUID()): Promise<HubAnswer> {
    return this.request('POST', path, body, idempotencyKey);
  }

  /**
   * One call to the hub. A body is sent as JSON; POST and DELETE carry the idempotency key (a retry after
   * a network failure reuses it, so a cancellation is answered as the first); GET is sent again as it is.
   */
  async request(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, idempotencyKey: string = randomUUID()): Promise<HubAnswer> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    let lastError: unknown;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        const res = await this.fetchImpl(`${this.hub.url}${path}`, {
          method,
          headers: {
            ...(text === undefined ? {} : { 'content-type': 'application/json' }),
            accept: 'application/json',
            authorization: `Bearer ${this.hub.token}`,
            ...(method === 'GET' ? {} : { 'idempotency-key': idempotencyKey }),
          },
          ...(text === undefined ? {} : { body: text }),
          signal: AbortSignal.timeout(this.hub.timeoutMs),
        });
        return await answerOf(res);
      } catch (error) {
        if (error instanceof AgencyProblem) throw error;
        lastError = error;
        if (attempt < ATTEMPTS) await this.pause(200 * attempt);
      }
    }
    throw new AgencyProblem('HUB_UNREACHABLE', `the hub at ${this.hub.url} did not answer ${method} ${path.split('?')[0]} after ${ATTEMPTS} attempts (${reasonOf(lastError)}); check AGENCY_HUB_URL and that the hub runs`);
  }

  /** GET {hub}/v1/hub/keys → the hub's provision signing keys: the one that signs now and the others it serves. */
  async provisionSigningKeys(): Promise<ServedKeySet> {
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.hub.url}/v1/hub/keys`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.hub.timeoutMs) });
    } catch (error) {
      throw new AgencyProblem('HUB_UNREACHABLE', `cannot fetch the hub's keys from ${this.hub.url}/v1/hub/keys (${reasonOf(error)}); start the hub or set AGENCY_HUB_PROVISION_KEY`);
    }
    const body = (await res.json().catch(() => undefined)) as unknown;
    const set = res.status === 200 ? keySetOf(body) : undefined;
    if (set === undefined) {
      throw new AgencyProblem('HUB_PROTOCOL_ERROR', `GET ${this.hub.url}/v1/hub/keys answered ${res.status} without a usable provisionSigningKey (and provisionSigningKeys, each key id naming its key); set AGENCY_HUB_PROVISION_KEY instead`);
    }
    return set;
  }

  /** GET {hub}/v1/hub/keys → the hub's provision-signing public key that signs now. */
  async provisionSigningKey(): Promise<string> {
    const set = await this.provisionSigningKeys();
    return set.keys.find((k) => k.keyId === set.currentKeyId)!.publicKey;
  }
}

async function answerOf(res: Response): Promise<HubAnswer> {
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, problem: type.startsWith('application/problem+json') || res.status >= 400 };
}

function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError') return 'timed out';
    const cause = (error as { cause?: { code?: unknown } }).cause;
    return typeof cause?.code === 'string' ? cause.code : error.message;
  }
  return String(error);
}

/**
 * A hub refusal or failure, passed on with the hub's status, code, title, detail and serial; a 401 is
 * this agency's token (502 HUB_AUTHENTICATION_FAILED), an answer without a problem code 502 HUB_PROTOCOL_ERROR.
 */
export function hubProblemOf(res: HubAnswer): AgencyProblem {
  const p = res.body as { code?: unknown; title?: unknown; detail?: unknown; serial?: unknown } | undefined;
  const code = typeof p?.code === 'string' ? p.code : undefined;
  const serial = typeof p?.serial === 'string' ? p.serial : undefined;
  if (res.status === 401) return new AgencyProblem('HUB_AUTHENTICATION_FAILED', `the hub refused this agency's token (${code ?? 401}); check AGENCY_TOKEN_FILE / AGENCY_TOKEN`);
  if (code === undefined || res.status < 400) return new AgencyProblem('HUB_PROTOCOL_ERROR', `the hub answered ${res.status} without ${res.status < 400 ? 'the expected body' : 'a problem code'}`);
  const detail = typeof p?.detail === 'string' ? p.detail : `the hub answered ${code}`;
  const title = typeof p?.title === 'string' ? p.title : 'Refused by the hub';
  return new AgencyProblem(code, detail, serial === undefined ? {} : { serial }, { status: res.status, title });
}
