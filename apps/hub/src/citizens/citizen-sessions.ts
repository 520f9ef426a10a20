import { Inject, Injectable } from '@nestjs/common';
import type { SubjectId } from '#linkage';
import { EventSealer } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { CLOCK, type Clock } from '../ledger/tokens.js';
import { newBearerToken, tokenDigest } from '../linkage/hub-secrets.js';
import { LinkageViews } from '../linkage/linkage-views.js';

interface Session {
  readonly subjectId: SubjectId;
  /** The WebAuthn credential id of the passkey it was begun with: the session lives only as long as that passkey. */
  readonly credentialId: string;
  readonly expiresAtMs: number;
  lastUsedMs: number;
  ended: boolean;
}

/** What a presented session token proves. */
export type SessionCheck = { readonly kind: 'live'; readonly subjectId: SubjectId } | { readonly kind: 'expired'; readonly subjectId: SubjectId } | { readonly kind: 'unknown' };

/** At most this many sessions are held; past it the oldest one ends (its token becomes unknown). */
export const MAX_SESSIONS = 200_000;

/**
 * Citizens' sessions, issued after a verified passkey ceremony: a 32-byte random token handed over once,
 * of which the hub keeps only the SHA-256 digest, in memory (a restart signs everyone out). A session ends
 * when unused for `sessionIdleSeconds`, `sessionMaxSeconds` after it began, when signed out, and when its
 * passkey is removed or revoked (a new enrolment secret, an erasure). Ended sessions are remembered until
 * their absolute expiry, so their token answers SESSION_EXPIRED rather than UNAUTHENTICATED.
 */
@Injectable()
export class CitizenSessions {
  readonly #sessions = new Map<string, Session>();
  /** The bound (a test may lower it). */
  maxSessions = MAX_SESSIONS;

  constructor(
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly config: HubConfig,
    private readonly views: LinkageViews,
    private readonly sealer: EventSealer,
  ) {}

  /** Begins a session; answers the token (shown once) and its absolute expiry. */
  begin(subjectId: SubjectId, credentialId: string): { readonly token: string; readonly expiresAt: string } {
    const now = this.clock().getTime();
    this.#sweep(now);
    const token = newBearerToken();
    const expiresAtMs = now + this.config.citizenSignIn.sessionMaxSeconds * 1000;
    this.#sessions.set(tokenDigest(token), { subjectId, credentialId, expiresAtMs, lastUsedMs: now, ended: false });
    return { token, expiresAt: new Date(expiresAtMs).toISOString() };
  }

  /** Checks a presented token's digest; a live session's idle time starts again (when `touch`). */
  check(digest: string, touch = true): SessionCheck {
    const session = this.#sessions.get(digest);
    if (session === undefined) return { kind: 'unknown' };
    const now = this.clock().getTime();
    const { sessionIdleSeconds } = this.config.citizenSignIn;
    if (!session.ended && (now >= session.expiresAtMs || now - session.lastUsedMs >= sessionIdleSeconds * 1000 || !this.views.citizenCredentials.holds(session.subjectId, session.credentialId))) {
      session.ended = true;
    }
    if (session.ended) {
      // An erased person (their key shredded) is nobody any more: their token proves no one.
      if (this.sealer.isErased(session.subjectId)) {
        this.#sessions.delete(digest);
        return { kind: 'unknown' };
      }
      return { kind: 'expired', subjectId: session.subjectId };
    }
    if (touch) session.lastUsedMs = now;
    return { kind: 'live', subjectId: session.subjectId };
  }

  /** Ends a session (sign-out); true when it was live. */
  end(digest: string): boolean {
    const session = this.#sessions.get(digest);
    if (session === undefined || session.ended) return false;
    session.ended = true;
    return true;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Forgets sessions past their absolute expiry (they are in the order they began, so expire in order). */
  #sweep(now: number): void {
    for (const [digest, session] of this.#sessions) {
      if (session.expiresAtMs > now && this.#sessions.size < this.maxSessions) break;
      this.#sessions.delete(digest);
    }
  }
}
