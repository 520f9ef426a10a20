import { errorCodes, type FastifyRequest } from 'fastify';
import { HubProblem, RequestValidationError, type FieldError } from './hub-problem.js';
import { FORBIDDEN_KEYS } from './query-parameters.js';

/** No request of this API nests deeper than 3; far deeper JSON is refused before anything walks it recursively. */
export const MAX_JSON_DEPTH = 32;
const SHOWN = 10;

/**
 * The hub's JSON body parser (application/json). Well-formed JSON (RFC 8259) is parsed as it is, then
 * refused when it holds a key `__proto__`, `constructor` or `prototype` anywhere (400 FORBIDDEN_KEY
 * naming each: they would reach an object's prototype in code that copies the body), or nests deeper
 * than MAX_JSON_DEPTH (400 VALIDATION_FAILED). Empty or malformed bodies are Fastify's own errors.
 */
export function parseJsonBody(_request: FastifyRequest, body: string | Buffer, done: (error: Error | null, value?: unknown) => void): void {
  // A leading byte order mark is not JSON, but harmless: accepted, as before.
  const raw = typeof body === 'string' ? body : body.toString('utf8');
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  if (text.length === 0) {
    done(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY());
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY());
    return;
  }
  done(shapeProblem(value) ?? null, value);
}

/** Walks the parsed value without recursion: forbidden keys (with their paths), or a nesting too deep. */
function shapeProblem(root: unknown): HubProblem | undefined {
  const forbidden: FieldError[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: root, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) {
      return new RequestValidationError([{ field: path || '(body)', message: `nests deeper than ${MAX_JSON_DEPTH} levels of objects and arrays; no request of this API nests more than 3` }]);
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]`, depth: depth + 1 });
      continue;
    }
    for (const key of Object.keys(value).reverse()) {
      const at = path ? `${path}.${key}` : key;
      if (FORBIDDEN_KEYS.has(key)) forbidden.push({ field: at, message: `is a key the hub refuses (it could change what objects inherit); remove "${key}"` });
      stack.push({ value: (value as Record<string, unknown>)[key], path: at, depth: depth + 1 });
    }
  }
  if (forbidden.length === 0) return undefined;
  const shown = forbidden.slice(0, SHOWN);
  const detail = `the body holds the key${shown.length > 1 ? 's' : ''} ${shown.map((f) => f.field).join(', ')}${forbidden.length > SHOWN ? ` and ${forbidden.length - SHOWN} more` : ''}; __proto__, constructor and prototype are refused anywhere in a body: remove them`;
  return new HubProblem('FORBIDDEN_KEY', detail, { errors: shown });
}
