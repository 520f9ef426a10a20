import { AsyncLocalStorage } from 'node:async_hooks';
import { PortalProblem } from '../http/portal-problem.js';

/** The citizen's address for the request being served (set by the portal's onRequest hook). */
export const clientAddress = new AsyncLocalStorage<string>();

export interface HubAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  readonly headers: Headers;
}

/** Fields of a hub problem the browser may see (never anything else the hub might add). */
const PROBLEM_FIELDS = ['code', 'detail', 'serial', 'errors', 'retryAfter'] as const;

/**
 * The hub's citizen API, called with the citizen's own credential (the enrolment secret once, then the
 * session token): the portal has no credential of its own at the hub.
 */
export class HubClient {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 15_000,
  ) {}

  async call(method: 'GET' | 'POST' | 'DELETE', path: string, options: { token?: string; body?: unknown; query?: URLSearchParams } = {}): Promise<HubAnswer> {
    const q = options.query !== undefined && [...options.query.keys()].length > 0 ? `?${options.query.toString()}` : '';
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}${q}`, {
        method,
        headers: {
          accept: 'application/json, text/csv, text/plain',
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
          ...forwardedFor(),
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const timeout = error instanceof Error && error.name === 'TimeoutError';
      throw new PortalProblem(timeout ? 504 : 502, timeout ? 'HUB_TIMEOUT' : 'HUB_UNAVAILABLE', timeout ? 'the hub did not answer in time' : 'the hub cannot be reached');
    }
    // Decoded keeping a byte order mark: the hub's CSV starts with one for spreadsheet programs.
    const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(await res.arrayBuffer());
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, headers: res.headers };
  }

  /** The JSON of a successful answer, or the hub's problem as the portal's (its code kept). */
  static json(answer: HubAnswer): unknown {
    if (answer.status >= 400) throw HubClient.problem(answer);
    if (answer.text === '') return {};
    try {
      return JSON.parse(answer.text) as unknown;
    } catch {
      throw new PortalProblem(502, 'HUB_ANSWER_INVALID', 'the hub answered something that is not JSON');
    }
  }

  static problem(answer: HubAnswer): PortalProblem {
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {
      // not JSON: only the status is known
    }
    const extra: Record<string, unknown> = {};
    for (const k of PROBLEM_FIELDS) if (body[k] !== undefined && k !== 'code' && k !== 'detail') extra[k] = body[k];
    const code = typeof body['code'] === 'string' ? body['code'] : answer.status === 404 ? 'NOT_FOUND' : `HUB_${answer.status}`;
    const detail = typeof body['detail'] === 'string' ? body['detail'] : `the hub answered ${answer.status}`;
    return new PortalProblem(answer.status, code, detail, extra);
  }
}

function forwardedFor(): Record<string, string> {
  const address = clientAddress.getStore();
  return address === undefined || address === '' ? {} : { 'x-forwarded-for': address };
}
