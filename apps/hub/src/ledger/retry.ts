/**
 * Runs `attempt` until it succeeds, an error is not retryable, or `attempts` are used up; the last
 * error is thrown. Used for optimistic concurrency (WRONG_EXPECTED_REVISION) and fresh-number draws.
 */
export async function withRetries<T>(attempts: number, retryable: (error: unknown) => boolean, attempt: (n: number) => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= attempts || !retryable(error)) throw error;
    }
  }
}

/** True for an error carrying one of `codes` (the libs' errors all have a stable string `code`). */
export function hasCode(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && codes.includes((error as { code?: unknown }).code as string);
}
