import { Inject, Injectable } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import type { SubjectId } from '#linkage';
import { CLOCK, type Clock } from '../ledger/tokens.js';

export const CHALLENGE_TTL_MS = 5 * 60 * 1000;
/** At most this many challenges are outstanding; past it the oldest is dropped (its ceremony then fails). */
export const MAX_CHALLENGES = 10_000;

export type Challenge =
  | { readonly kind: 'registration'; readonly challenge: string; readonly subjectId: SubjectId; readonly expiresAtMs: number }
  | { readonly kind: 'authentication'; readonly challenge: string; readonly expiresAtMs: number };

export type ChallengeRequest = { readonly kind: 'registration'; readonly subjectId: SubjectId } | { readonly kind: 'authentication' };

/**
 * The WebAuthn challenges the hub handed out and not yet seen back: 32 random bytes each, valid for five
 * minutes, taken (and so forgotten) by the first ceremony that presents their id, whatever its outcome.
 * Bounded: expired ones are swept on every issue, and past MAX_CHALLENGES the oldest goes.
 */
@Injectable()
export class WebAuthnChallenges {
  readonly #challenges = new Map<string, Challenge>();

  constructor(@Inject(CLOCK) private readonly clock: Clock) {}

  issue(request: ChallengeRequest): { readonly challengeId: string; readonly challenge: string } {
    const now = this.clock().getTime();
    for (const [id, c] of this.#challenges) {
      if (c.expiresAtMs > now && this.#challenges.size < MAX_CHALLENGES) break;
      this.#challenges.delete(id);
    }
    const challengeId = randomUUID();
    const challenge = randomBytes(32).toString('base64url');
    const expiresAtMs = now + CHALLENGE_TTL_MS;
    this.#challenges.set(challengeId, request.kind === 'registration' ? { kind: 'registration', challenge, subjectId: request.subjectId, expiresAtMs } : { kind: 'authentication', challenge, expiresAtMs });
    return { challengeId, challenge };
  }

  /** The challenge of this id, once: undefined when unknown, used already, or expired. */
  take(challengeId: string): Challenge | undefined {
    const c = this.#challenges.get(challengeId);
    if (c === undefined) return undefined;
    this.#challenges.delete(challengeId);
    return c.expiresAtMs > this.clock().getTime() ? c : undefined;
  }

  get size(): number {
    return this.#challenges.size;
  }
}
