import canonicalizeModule from 'canonicalize';

type Canonicalize = (input: unknown) => string | undefined;
// The package is CommonJS with an ESM-style declaration; accept either interop shape.
const loaded = canonicalizeModule as unknown as Canonicalize | { default: Canonicalize };

/** RFC 8785 (JCS) canonical JSON text, by the `canonicalize` library; undefined when the value is not JSON. */
export const canonicalize: Canonicalize = typeof loaded === 'function' ? loaded : loaded.default;
