/**
 * A citizen's sign-in credentials as events (pure: no Nest, no clock, no driver): the passkeys they
 * enrolled, removed, and the enrolment secrets their municipality issued again. Everything personal is
 * sealed by the hub's sealer before it is appended (libs/sealing catalog: the subject, the passkey id, the
 * credential id and public key, the label, the secret's digest), and the stream id is a keyed handle of
 * the subject in a domain of its own, so it links to nothing else of the person (I10).
 *
 * Kept in the hub (not in libs/) for now: it is small, and the libs are being changed by others.
 */

export const CITIZEN_CREDENTIAL_TYPES: ReadonlySet<string> = new Set(['CitizenPasskeyEnrolled', 'CitizenPasskeyRemoved', 'CitizenEnrolmentSecretIssued']);

/** The domain of the keyed handle that names a person's credential stream. */
export const CITIZEN_CREDENTIALS_HANDLE = 'citizen-credentials';

export function citizenCredentialsStreamId(handle: string): string {
  return `citizen-credentials-${handle}`;
}

/** What the hub keeps of a passkey: its WebAuthn credential id and COSE public key (base64url), never a secret. */
export interface PasskeyCredential {
  readonly id: string;
  readonly publicKey: string;
  readonly counter: number;
  readonly transports?: readonly string[];
}

export interface CitizenPasskeyEnrolledData {
  readonly subjectId: string;
  readonly passkeyId: string;
  readonly credential: PasskeyCredential;
  readonly label?: string;
  /** True when the enrolment secret was the credential of this enrolment: it admits nothing any more. */
  readonly secretRetired: boolean;
  readonly enrolledAt: string;
}

export interface CitizenPasskeyRemovedData {
  readonly subjectId: string;
  readonly passkeyId: string;
  readonly removedAt: string;
}

export interface CitizenEnrolmentSecretIssuedData {
  readonly subjectId: string;
  /** SHA-256 of the new secret (the secret itself is handed over once and never kept). */
  readonly credentialDigest: string;
  readonly municipalityCode: string;
  readonly reason: string;
  /** How many passkeys this revoked (every one the person held). */
  readonly passkeysRevoked: number;
  readonly issuedAt: string;
}

export type CitizenCredentialEvent =
  | { readonly type: 'CitizenPasskeyEnrolled'; readonly data: CitizenPasskeyEnrolledData }
  | { readonly type: 'CitizenPasskeyRemoved'; readonly data: CitizenPasskeyRemovedData }
  | { readonly type: 'CitizenEnrolmentSecretIssued'; readonly data: CitizenEnrolmentSecretIssuedData };

export interface DecidedCitizenEvent {
  readonly type: CitizenCredentialEvent['type'];
  readonly schemaVersion: 1;
  readonly data: CitizenCredentialEvent['data'];
  readonly terminal: 'completed';
}

/** The person's credentials as their stream says: the passkeys held now (by passkey id → credential id). */
export interface CitizenCredentialsState {
  readonly passkeys: ReadonlyMap<string, string>;
}

export const initialCitizenCredentials = (): CitizenCredentialsState => ({ passkeys: new Map() });

export function evolveCitizenCredentials(state: CitizenCredentialsState, event: CitizenCredentialEvent): CitizenCredentialsState {
  const passkeys = new Map(state.passkeys);
  switch (event.type) {
    case 'CitizenPasskeyEnrolled':
      passkeys.set(event.data.passkeyId, event.data.credential.id);
      break;
    case 'CitizenPasskeyRemoved':
      passkeys.delete(event.data.passkeyId);
      break;
    case 'CitizenEnrolmentSecretIssued':
      passkeys.clear();
      break;
  }
  return { passkeys };
}

export class CitizenCredentialError extends Error {
  constructor(
    readonly code: 'UNKNOWN_PASSKEY' | 'PASSKEY_REGISTRATION_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'CitizenCredentialError';
  }
}

export type CitizenCredentialCommand =
  | { readonly type: 'EnrolPasskey'; readonly data: CitizenPasskeyEnrolledData }
  | { readonly type: 'RemovePasskey'; readonly data: CitizenPasskeyRemovedData }
  | { readonly type: 'IssueEnrolmentSecret'; readonly data: Omit<CitizenEnrolmentSecretIssuedData, 'passkeysRevoked'> };

const MAX_PASSKEYS = 20;

/** Decides one command against the person's stream. Each command ends a serial of its own. */
export function decideCitizenCredentials(command: CitizenCredentialCommand, state: CitizenCredentialsState): readonly DecidedCitizenEvent[] {
  const one = (type: DecidedCitizenEvent['type'], data: DecidedCitizenEvent['data']): readonly DecidedCitizenEvent[] => [{ type, schemaVersion: 1, data, terminal: 'completed' }];
  switch (command.type) {
    case 'EnrolPasskey': {
      if ([...state.passkeys.values()].includes(command.data.credential.id)) throw new CitizenCredentialError('PASSKEY_REGISTRATION_FAILED', 'this passkey is already enrolled');
      if (state.passkeys.size >= MAX_PASSKEYS) throw new CitizenCredentialError('PASSKEY_REGISTRATION_FAILED', `a citizen holds at most ${MAX_PASSKEYS} passkeys; remove one first`);
      const { label, ...rest } = command.data;
      return one('CitizenPasskeyEnrolled', label === undefined ? rest : { ...rest, label });
    }
    case 'RemovePasskey':
      if (!state.passkeys.has(command.data.passkeyId)) throw new CitizenCredentialError('UNKNOWN_PASSKEY', `you hold no passkey ${command.data.passkeyId}`);
      return one('CitizenPasskeyRemoved', command.data);
    case 'IssueEnrolmentSecret':
      return one('CitizenEnrolmentSecretIssued', { ...command.data, passkeysRevoked: state.passkeys.size });
  }
}
