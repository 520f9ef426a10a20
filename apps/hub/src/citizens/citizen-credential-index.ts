import type { SubjectId } from '#linkage';
import type { CitizenEnrolmentSecretIssuedData, CitizenPasskeyEnrolledData, CitizenPasskeyRemovedData, PasskeyCredential } from './citizen-credentials.decider.js';

/** A passkey the hub knows (in memory, from the log; the counter and last use from sign-ins since start). */
export interface KnownPasskey {
  readonly subjectId: SubjectId;
  readonly passkeyId: string;
  readonly credential: PasskeyCredential;
  readonly label: string | undefined;
  readonly createdAt: string;
  counter: number;
  lastUsedAt: string | undefined;
}

/**
 * The fold of citizens' credential events that sign-in consults (owned by LinkageViews, which reads the
 * log and opens the events): passkeys by WebAuthn credential id and by person, and which enrolment
 * secret of a person still admits them. Only people who ever enrolled a passkey or were issued a secret
 * again have an entry here; everyone else's secret is the one issued with their number.
 */
export class CitizenCredentialIndex {
  readonly #byCredentialId = new Map<string, KnownPasskey>();
  readonly #bySubject = new Map<string, Map<string, string>>();
  /**
   * Per person: absent, the secret issued with the number admits them; a digest, only that (re-issued)
   * secret does; null, no secret does any more (retired by their first passkey).
   */
  readonly #secret = new Map<string, string | null>();

  enrolled(d: CitizenPasskeyEnrolledData): void {
    const subjectId = d.subjectId as SubjectId;
    this.#byCredentialId.set(d.credential.id, { subjectId, passkeyId: d.passkeyId, credential: d.credential, label: d.label, createdAt: d.enrolledAt, counter: d.credential.counter, lastUsedAt: undefined });
    let mine = this.#bySubject.get(subjectId);
    if (mine === undefined) this.#bySubject.set(subjectId, (mine = new Map()));
    mine.set(d.passkeyId, d.credential.id);
    if (d.secretRetired) this.#secret.set(subjectId, null);
  }

  removed(d: CitizenPasskeyRemovedData): void {
    const mine = this.#bySubject.get(d.subjectId);
    const credentialId = mine?.get(d.passkeyId);
    if (credentialId === undefined) return;
    mine!.delete(d.passkeyId);
    this.#byCredentialId.delete(credentialId);
  }

  /** A new enrolment secret: every passkey of the person goes, and only the new secret admits them. */
  secretIssued(d: CitizenEnrolmentSecretIssuedData): void {
    this.#dropPasskeys(d.subjectId);
    this.#secret.set(d.subjectId, d.credentialDigest);
  }

  /** An erasure: nothing of the person admits anyone any more. */
  forget(subjectId: string): void {
    this.#dropPasskeys(subjectId);
    this.#secret.delete(subjectId);
  }

  #dropPasskeys(subjectId: string): void {
    const mine = this.#bySubject.get(subjectId);
    if (mine === undefined) return;
    for (const credentialId of mine.values()) this.#byCredentialId.delete(credentialId);
    this.#bySubject.delete(subjectId);
  }

  /** Whether a secret digest that names this person still admits them. */
  secretAdmits(subjectId: string, digest: string): boolean {
    const current = this.#secret.get(subjectId);
    return current === undefined || current === digest;
  }

  /** Whether the person still holds a secret that admits them (none once a passkey retired it). */
  holdsSecret(subjectId: string): boolean {
    return this.#secret.get(subjectId) !== null;
  }

  byCredentialId(credentialId: string): KnownPasskey | undefined {
    return this.#byCredentialId.get(credentialId);
  }

  /** The person's passkeys, oldest first. */
  passkeysOf(subjectId: string): KnownPasskey[] {
    const mine = this.#bySubject.get(subjectId);
    if (mine === undefined) return [];
    return [...mine.values()].map((id) => this.#byCredentialId.get(id)!).filter((p) => p !== undefined);
  }

  /** Whether this passkey (by credential id) is still the person's. */
  holds(subjectId: string, credentialId: string): boolean {
    return this.#byCredentialId.get(credentialId)?.subjectId === subjectId;
  }
}
