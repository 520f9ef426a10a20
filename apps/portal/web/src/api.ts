// The portal's /api, same origin: the session cookie rides along by itself (HttpOnly, the page never sees
// the token); state-changing calls carry the CSRF token the portal bound to this session.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly serial?: string,
    readonly retryAfter?: number,
  ) {
    super(detail);
  }
}

let csrfToken = '';
let onSignedOut: (code: string) => void = () => {};

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called when the portal or the hub says the session admits nothing any more. */
export function onSessionLost(f: (code: string) => void): void {
  onSignedOut = f;
}

const SESSION_LOST = new Set(['NOT_SIGNED_IN', 'SESSION_EXPIRED']);

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  let res: Response;
  const payload = method === 'GET' ? undefined : JSON.stringify(body ?? {});
  try {
    res = await fetch(`/api${path}`, {
      method,
      credentials: 'same-origin',
      headers: {
        accept: 'application/json',
        ...(payload === undefined ? {} : { 'content-type': 'application/json', 'x-csrf-token': csrfToken }),
      },
      ...(payload === undefined ? {} : { body: payload }),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'the portal cannot be reached');
  }
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text === '' ? {} : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const p = (json ?? {}) as { code?: unknown; detail?: unknown; serial?: unknown; retryAfter?: unknown };
    const code = typeof p.code === 'string' ? p.code : `HTTP_${res.status}`;
    const error = new ApiError(res.status, code, typeof p.detail === 'string' ? p.detail : '', typeof p.serial === 'string' ? p.serial : undefined, typeof p.retryAfter === 'number' ? p.retryAfter : undefined);
    if (res.status === 401 && SESSION_LOST.has(code)) onSignedOut(code);
    throw error;
  }
  return json as T;
}
