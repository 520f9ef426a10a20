/** Every stable error code of the mapper. Adapters translate driver errors into these at the edge. */
export type MapperErrorCode =
  /** The backing store (Redis) cannot answer now; the caller may fall back (FallbackCodeMapper). */
  | 'MAPPER_UNAVAILABLE'
  /** The Redis data under this prefix was written with another layout (bucket bits, version). */
  | 'LAYOUT_MISMATCH'
  /** An event would give a (subject, agency) a second code, or a code to a second owner. */
  | 'CODE_CONFLICT'
  /** An AgencyCodeIssued event that does not have the shape the mapper relies on. */
  | 'INVALID_EVENT'
  /** Events were handed over out of position order. */
  | 'OUT_OF_ORDER'
  | 'TOO_MANY_AGENCIES'
  /** A caller handed over a malformed argument: a code key that is not 16 bytes, a subject id that is not a UUID. */
  | 'INVALID_INPUT'
  /** More than 256 people share one subject tag: only a broken tag function gets there. */
  | 'TAG_OVERFLOW';

export class MapperError extends Error {
  readonly code: MapperErrorCode;

  constructor(code: MapperErrorCode, message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MapperError';
    this.code = code;
  }
}

/** Redis (or whatever backs a mapper) is unreachable, timed out or answered with an error. */
export class MapperUnavailableError extends MapperError {
  constructor(message: string, cause?: unknown) {
    super('MAPPER_UNAVAILABLE', message, { cause });
    this.name = 'MapperUnavailableError';
  }
}

export function isMapperUnavailable(error: unknown): error is MapperUnavailableError {
  return error instanceof MapperError && error.code === 'MAPPER_UNAVAILABLE';
}
