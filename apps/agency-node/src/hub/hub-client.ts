import { randomUUID } from 'node:crypto';
import { AgencyProblem } from '../http/agency-problem.js';
import type { HubSettings } from '../config/agency-config.js';

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
    const text = JSON.stringify(body);
    let lastError: unknown;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        const res = await this.fetchImpl(`${this.hub.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${this.hub.token}`, 'idempotency-key': idempotencyKey },
          body: text,
          signal: AbortSignal.timeout(this.hub.timeoutMs),
        });
        return await answerOf(res);
      } catch (error) {
        if (error instanceof AgencyProblem) throw error;
        lastError = error;
        if (attempt < ATTEMPTS) await this.pause(200 * attempt);
      }
    }
    throw new AgencyProblem('HUB_UNREACHABLE', `the hub at ${this.hub.url} did not answer POST ${path} after ${ATTEMPTS} attempts (${reasonOf(lastError)}); check AGENCY_HUB_URL and that the hub runs`);
  }

  /** GET {hub}/v1/hub/keys → the hub's provision-signing public key. */
  async provisionSigningKey(): Promise<string> {
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.hub.url}/v1/hub/keys`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.hub.timeoutMs) });
    } catch (error) {
      throw new AgencyProblem('HUB_UNREACHABLE', `cannot fetch the hub's keys from ${this.hub.url}/v1/hub/keys (${reasonOf(error)}); start the hub or set AGENCY_HUB_PROVISION_KEY`);
    }
    const body = (await res.json().catch(() => undefined)) as { provisionSigningKey?: unknown } | undefined;
    if (res.status !== 200 || typeof body?.provisionSigningKey !== 'string') {
      throw new AgencyProblem('HUB_PROTOCOL_ERROR', `GET ${this.hub.url}/v1/hub/keys answered ${res.status} without a provisionSigningKey; set AGENCY_HUB_PROVISION_KEY instead`);
    }
    return body.provisionSigningKey;
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
