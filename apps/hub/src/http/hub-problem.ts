import { PROBLEM_CATALOG, type ProblemCode } from './problem-catalog.js';

export interface FieldError {
  /** The body field, query or path parameter, or header that is wrong. */
  readonly field: string;
  readonly message: string;
}

/** An error the hub itself raises with a problem code (the libs raise theirs with their own codes). */
export class HubProblem extends Error {
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    detail: string,
    readonly extensions: Readonly<Record<string, unknown>> = {},
  ) {
    super(detail);
    this.name = 'HubProblem';
    this.status = PROBLEM_CATALOG[code].status;
  }
}

/** 400 VALIDATION_FAILED with one entry per wrong field. */
export class RequestValidationError extends HubProblem {
  constructor(readonly errors: readonly FieldError[]) {
    super(
      'VALIDATION_FAILED',
      errors.length === 1 ? `${errors[0]!.field}: ${errors[0]!.message}` : `${errors.length} fields are not valid; see errors`,
      { errors },
    );
  }
}
