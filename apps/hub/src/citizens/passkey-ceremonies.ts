import { Inject, Injectable } from '@nestjs/common';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { SubjectId } from '#linkage';
import { EventSealer } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import { CLOCK, type Clock } from '../ledger/tokens.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import type { PasskeyCredential } from './citizen-credentials.decider.js';
import { CitizenSessions } from './citizen-sessions.js';
import { CHALLENGE_TTL_MS, WebAuthnChallenges } from './webauthn-challenges.js';

/** The name every citizen's passkey shows: neutral, nothing of the person (the authenticator keeps it). */
export const PASSKEY_USER_NAME = 'マイナンバー利用者';
/** ES256, EdDSA, RS256: what the hub verifies. */
const ALGORITHMS = [-7, -8, -257];

export interface VerifiedRegistration {
  readonly credential: PasskeyCredential;
}

export interface SignedIn {
  readonly session: { readonly token: string; readonly expiresAt: string };
  readonly passkeyId: string;
}

/**
 * The WebAuthn ceremonies, verified by the hub itself (the portal only relays them): options with a
 * fresh single-use challenge, and the verification of what the authenticator answered against that
 * challenge, the portal's origins and the relying party id.
 */
@Injectable()
export class PasskeyCeremonies {
  constructor(
    private readonly config: HubConfig,
    private readonly challenges: WebAuthnChallenges,
    private readonly views: LinkageViews,
    private readonly sessions: CitizenSessions,
    private readonly sealer: EventSealer,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /**
   * The WebAuthn user handle of a person: a keyed digest of their subject id in a domain of its own
   * (pseudorandom, stable for the person, linked to nothing else and never stored).
   */
  userHandle(subjectId: string): Buffer {
    return Buffer.from(this.sealer.handle('citizen-webauthn-user', subjectId), 'hex');
  }

  async registrationOptions(subjectId: SubjectId): Promise<{ challengeId: string; options: PublicKeyCredentialCreationOptionsJSON }> {
    const { challengeId, challenge } = this.challenges.issue({ kind: 'registration', subjectId });
    const { rpId, rpName } = this.config.citizenSignIn;
    const options = await generateRegistrationOptions({
      rpName,
      rpID: rpId,
      userName: PASSKEY_USER_NAME,
      userDisplayName: PASSKEY_USER_NAME,
      userID: new Uint8Array(this.userHandle(subjectId)),
      challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
      timeout: CHALLENGE_TTL_MS,
      attestationType: 'none',
      excludeCredentials: this.views.citizenCredentials.passkeysOf(subjectId).map((p) => ({ id: p.credential.id, ...(p.credential.transports ? { transports: [...p.credential.transports] as never } : {}) })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'preferred' },
      supportedAlgorithmIDs: ALGORITHMS,
    });
    return { challengeId, options };
  }

  async authenticationOptions(): Promise<{ challengeId: string; options: PublicKeyCredentialRequestOptionsJSON }> {
    const { challengeId, challenge } = this.challenges.issue({ kind: 'authentication' });
    const options = await generateAuthenticationOptions({
      rpID: this.config.citizenSignIn.rpId,
      allowCredentials: [],
      challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
      timeout: CHALLENGE_TTL_MS,
      userVerification: 'preferred',
    });
    return { challengeId, options };
  }

  /** Verifies a registration for this person; 400 PASSKEY_REGISTRATION_FAILED with the reason otherwise. */
  async verifyRegistration(subjectId: SubjectId, challengeId: string, response: RegistrationResponseJSON): Promise<VerifiedRegistration> {
    const fail = (why: string) => new HubProblem('PASSKEY_REGISTRATION_FAILED', `the passkey registration was not accepted: ${why}`);
    const challenge = this.challenges.take(challengeId);
    if (challenge === undefined || challenge.kind !== 'registration' || challenge.subjectId !== subjectId) {
      throw fail('the challenge is unknown, was used already or expired (ask for new registration options)');
    }
    const { portalOrigins, rpId } = this.config.citizenSignIn;
    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      verified = await verifyRegistrationResponse({ response, expectedChallenge: challenge.challenge, expectedOrigin: [...portalOrigins], expectedRPID: rpId, requireUserVerification: false, supportedAlgorithmIDs: ALGORITHMS });
    } catch (error) {
      throw fail(reasonOf(error));
    }
    if (!verified.verified) throw fail('the attestation does not verify');
    const { credential } = verified.registrationInfo;
    await this.views.catchUp();
    if (this.views.citizenCredentials.byCredentialId(credential.id) !== undefined) throw fail('this passkey is already enrolled');
    return {
      credential: {
        id: credential.id,
        publicKey: Buffer.from(credential.publicKey).toString('base64url'),
        counter: credential.counter,
        ...(credential.transports && credential.transports.length > 0 ? { transports: [...credential.transports] } : {}),
      },
    };
  }

  /**
   * Verifies a sign-in with a discoverable passkey and begins a session; 401 PASSKEY_VERIFICATION_FAILED
   * for an unknown, used or expired challenge, an unknown or removed passkey, a wrong origin or relying
   * party, or a bad signature.
   */
  async signIn(challengeId: string, response: AuthenticationResponseJSON): Promise<SignedIn> {
    const fail = (why: string) => new HubProblem('PASSKEY_VERIFICATION_FAILED', `the passkey sign-in was not accepted: ${why}`);
    const challenge = this.challenges.take(challengeId);
    if (challenge === undefined || challenge.kind !== 'authentication') throw fail('the challenge is unknown, was used already or expired (ask for new sign-in options)');
    await this.views.catchUp();
    const passkey = this.views.citizenCredentials.byCredentialId(response.id);
    if (passkey === undefined) throw fail('this passkey is not enrolled (or was removed)');
    const userHandle = response.response.userHandle;
    if (userHandle !== undefined && userHandle !== this.userHandle(passkey.subjectId).toString('base64url')) throw fail('the passkey answered for another user');
    const { portalOrigins, rpId } = this.config.citizenSignIn;
    let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
    try {
      verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge.challenge,
        expectedOrigin: [...portalOrigins],
        expectedRPID: rpId,
        credential: { id: passkey.credential.id, publicKey: new Uint8Array(Buffer.from(passkey.credential.publicKey, 'base64url')), counter: passkey.counter },
        requireUserVerification: false,
      });
    } catch (error) {
      throw fail(reasonOf(error));
    }
    if (!verified.verified) throw fail('the signature does not verify');
    this.views.citizenCredentials.used(passkey.credential.id, verified.authenticationInfo.newCounter, this.clock().toISOString());
    return { session: this.sessions.begin(passkey.subjectId, passkey.credential.id), passkeyId: passkey.passkeyId };
  }
}

/** The verifier's reason, short and on one line (it names what did not match, never a key). */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, ' ').slice(0, 300);
}
