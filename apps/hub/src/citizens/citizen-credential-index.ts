import type { KnownPasskey, SqliteLookupStore } from '../state/lookup-store.js';

export type { KnownPasskey } from '../state/lookup-store.js';

/**
 * What sign-in consults of citizens' credential events: passkeys by WebAuthn credential id and by person,
 * and which enrolment secret of a person still admits them. Read from the hub's lookup file (folded by
 * LinkageViews, which reads the log and opens the events), so nothing per person is held in memory (I11).
 * Only people who ever enrolled a passkey or were issued a secret again have rows; everyone else's secret
 * is the one issued with their number.
 */
export class CitizenCredentialIndex {
  constructor(private readonly lookups: SqliteLookupStore) {}

  /** Whether a secret digest that names this person still admits them. */
  secretAdmits(subjectId: string, digest: string): boolean {
    return this.lookups.secretAdmits(subjectId, digest);
  }

  /** Whether the person still holds a secret that admits them (none once a passkey retired it). */
  holdsSecret(subjectId: string): boolean {
    return this.lookups.holdsSecret(subjectId);
  }

  byCredentialId(credentialId: string): KnownPasskey | undefined {
    return this.lookups.passkeyByCredentialId(credentialId);
  }

  /** The person's passkeys, oldest first. */
  passkeysOf(subjectId: string): KnownPasskey[] {
    return this.lookups.passkeysOf(subjectId);
  }

  /** Whether this passkey (by credential id) is still the person's. */
  holds(subjectId: string, credentialId: string): boolean {
    return this.lookups.holdsPasskey(subjectId, credentialId);
  }

  /** A verified sign-in with this passkey: its new signature counter and the time. */
  used(credentialId: string, counter: number, at: string): void {
    this.lookups.passkeyUsed(credentialId, counter, at);
  }
}
