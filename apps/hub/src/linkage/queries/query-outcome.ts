import type { QueryBatch } from '#linkage';

/** What the requester is told about one query. */
export interface QueryAnswer {
  /** The relayed bytes, base64url; absent when the answer was already relayed (an idempotent replay: the hub keeps no answers, I5). */
  readonly data?: string;
  readonly encrypted: boolean;
  /** Hex SHA-256 of the relayed bytes, as recorded in ProvisionAnswered. */
  readonly digest: string;
  readonly size: number;
}

export type QueryOutcomeKind = 'answered' | 'refused-by-provider' | 'denied' | 'failed';

export interface QueryResult {
  readonly serial: string;
  readonly queryId: string;
  readonly outcome: QueryOutcomeKind;
  readonly tableVersion?: number;
  readonly answer?: QueryAnswer;
  /** The provider's refusal reason, the denial reason or the failure reason. */
  readonly reason?: string;
  /** Extra facts of a denial (allowed items, kinds…): never another agency's code. */
  readonly details?: Readonly<Record<string, unknown>>;
  /** Of a failure: why the hub refused to call the provider (its certificate), in words for the requester. */
  readonly cause?: string;
  readonly batch?: QueryBatch;
  /** True when rebuilt from the log for a retry with the same idempotency key. */
  readonly replayed: boolean;
}
