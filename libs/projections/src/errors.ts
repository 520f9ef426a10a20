/** Every stable error code of the projections library. */
export type ProjectionErrorCode =
  /** Events were handed over with a hole after the checkpoint: the projection would silently miss rows. */
  | 'PROJECTION_GAP'
  /** A view was asked with an argument it cannot use (a malformed month, instant or limit). */
  | 'INVALID_ARGUMENT'
  /** The projection file was written by another layout version of this library. */
  | 'LAYOUT_MISMATCH'
  /** The store was closed. */
  | 'PROJECTION_CLOSED';

export class ProjectionError extends Error {
  readonly code: ProjectionErrorCode;

  constructor(code: ProjectionErrorCode, message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProjectionError';
    this.code = code;
  }
}
