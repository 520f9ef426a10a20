import canonicalizeModule from 'canonicalize';

type Canonicalize = (input: unknown) => string | undefined;
// The package is CommonJS with an ESM-style declaration; accept either interop shape.
const loaded = canonicalizeModule as unknown as Canonicalize | { default: Canonicalize };

/** The RFC 8785 (JCS) reference: the `canonicalize` library. */
export const canonicalizeReference: Canonicalize = typeof loaded === 'function' ? loaded : loaded.default;

/**
 * RFC 8785 (JCS) canonical JSON text; undefined when the value is not JSON (e.g. a function).
 *
 * For plain JSON data (what events carry) RFC 8785 is ECMAScript JSON.stringify of each string and
 * number with object keys sorted by UTF-16 code units, so this writes that directly. Anything else
 * (class instances, toJSON, undefined in arrays, non-finite numbers, BigInt, deep nesting) goes to the
 * library, so the output is the library's for every input (a property test pins it).
 */
export function canonicalize(input: unknown): string | undefined {
  const text = write(input, 0);
  return text === undefined ? canonicalizeReference(input) : text;
}

const MAX_DEPTH = 64;
/** `"key":` texts of recently seen keys; event data reuses a small vocabulary of keys. */
const quotedKeys = new Map<string, string>();

function quotedKey(key: string): string {
  let q = quotedKeys.get(key);
  if (q === undefined) {
    q = `${JSON.stringify(key)}:`;
    if (quotedKeys.size < 4096) quotedKeys.set(key, q);
  }
  return q;
}

/** Canonical text of plain JSON, or undefined as soon as the value is not plain JSON. */
function write(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth > MAX_DEPTH) return undefined;
      if (Array.isArray(value)) {
        if (Object.getPrototypeOf(value) !== Array.prototype) return undefined;
        let text = '[';
        for (let i = 0; i < value.length; i++) {
          const item = write(value[i], depth + 1);
          if (item === undefined) return undefined;
          text += i === 0 ? item : `,${item}`;
        }
        return `${text}]`;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return undefined;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      sortKeys(keys);
      let text = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const v = record[key];
        // The library leaves out undefined members; functions and symbols are not plain JSON.
        if (v === undefined) continue;
        const item = write(v, depth + 1);
        if (item === undefined) return undefined;
        text += text.length === 1 ? quotedKey(key) + item : `,${quotedKey(key)}${item}`;
      }
      return `${text}}`;
    }
    default:
      return undefined;
  }
}

/** Sorts by UTF-16 code units, as Array.prototype.sort does; insertion sort for the usual few keys. */
function sortKeys(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
}
