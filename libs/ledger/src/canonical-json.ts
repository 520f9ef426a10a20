import canonicalizeModule from 'canonicalize';

type Canonicalize = (input: unknown) => string | undefined;
// The package is CommonJS with an ESM-style declaration; accept either interop shape.
const loaded = canonicalizeModule as unknown as Canonicalize | { default: Canonicalize };
const library: Canonicalize = typeof loaded === 'function' ? loaded : loaded.default;

/**
 * RFC 8785 (JCS) canonical JSON text; undefined when the value is not JSON (e.g. a function).
 *
 * For plain JSON data (the only thing events carry) RFC 8785 is ECMAScript JSON.stringify with object
 * keys sorted by UTF-16 code units, so this sorts keys into a copy and lets the native serializer
 * write it. Anything else (class instances, toJSON, non-finite numbers, BigInt…) goes to the RFC 8785
 * library, which is also the reference a property test holds this function to.
 */
export function canonicalize(input: unknown): string | undefined {
  const sorted = sortedCopy(input, 0);
  return sorted === NOT_PLAIN ? library(input) : JSON.stringify(sorted);
}

const NOT_PLAIN = Symbol('not plain JSON');
const MAX_DEPTH = 64;
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/;

function sortedCopy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : NOT_PLAIN;
    case 'object': {
      if (value === null) return null;
      if (depth > MAX_DEPTH) return NOT_PLAIN;
      if (Array.isArray(value)) {
        let copy: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          const c = item === undefined ? null : sortedCopy(item, depth + 1);
          if (c === NOT_PLAIN) return NOT_PLAIN;
          if (c !== item) (copy ??= value.slice())[i] = c;
        }
        return copy ?? value;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      let ordered = true;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        // JS objects always list array-index keys first, in numeric order: no copy can hold them sorted.
        const first = key.charCodeAt(0);
        if (first >= 48 && first <= 57 && ARRAY_INDEX.test(key)) return NOT_PLAIN;
        if (i > 0 && keys[i - 1]! > key) ordered = false;
      }
      if (!ordered) keys.sort();
      let copy: Record<string, unknown> | undefined = ordered ? undefined : (Object.create(null) as Record<string, unknown>);
      for (const key of keys) {
        const item = record[key];
        if (item === undefined) {
          if (copy === undefined) copy = copyUpTo(record, keys, key);
          continue;
        }
        const c = sortedCopy(item, depth + 1);
        if (c === NOT_PLAIN) return NOT_PLAIN;
        if (copy === undefined && c !== item) copy = copyUpTo(record, keys, key);
        if (copy !== undefined) copy[key] = c;
      }
      return copy ?? value;
    }
    default:
      // undefined, functions, symbols and BigInt are not JSON: the library decides what they become.
      return NOT_PLAIN;
  }
}

function copyUpTo(record: Record<string, unknown>, keys: readonly string[], stop: string): Record<string, unknown> {
  // A null prototype keeps a "__proto__" key an ordinary own property.
  const copy = Object.create(null) as Record<string, unknown>;
  for (const key of keys) {
    if (key === stop) break;
    if (record[key] !== undefined) copy[key] = record[key];
  }
  return copy;
}

/** The RFC 8785 library itself, for tests that hold `canonicalize` to it. */
export const canonicalizeWithLibrary: Canonicalize = library;
