/**
 * Failed enrolment and sign-in attempts per client address, per minute. The hub sees every portal call
 * as coming from the portal, and counts its unidentified refusals per source: without this, one client
 * failing sign-ins in a loop would spend the allowance of every citizen behind the portal. Past
 * `limit` failures in the window the portal answers 429 itself, without asking the hub.
 */
export class FailedAttempts {
  readonly #windows = new Map<string, { start: number; failures: number }>();

  constructor(
    private readonly limit = 10,
    private readonly windowMs = 60_000,
    private readonly maxClients = 100_000,
  ) {}

  /** Seconds to wait, or 0 when the client may try. */
  retryAfter(client: string, now = Date.now()): number {
    const w = this.#windows.get(client);
    if (w === undefined || now - w.start >= this.windowMs) return 0;
    return w.failures >= this.limit ? Math.ceil((w.start + this.windowMs - now) / 1000) : 0;
  }

  failed(client: string, now = Date.now()): void {
    let w = this.#windows.get(client);
    if (w === undefined || now - w.start >= this.windowMs) {
      if (this.#windows.size >= this.maxClients) this.#sweep(now);
      w = { start: now, failures: 0 };
      this.#windows.set(client, w);
    }
    w.failures++;
  }

  #sweep(now: number): void {
    for (const [k, w] of this.#windows) if (now - w.start >= this.windowMs) this.#windows.delete(k);
    // Still full: forget the oldest (a Map iterates in insertion order).
    while (this.#windows.size >= this.maxClients) this.#windows.delete(this.#windows.keys().next().value as string);
  }
}
