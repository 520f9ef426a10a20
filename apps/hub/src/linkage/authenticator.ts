import { Injectable } from '@nestjs/common';
import type { AgencyId, SubjectId } from '#linkage';
import { CitizenSessions } from '../citizens/citizen-sessions.js';
import { HubProblem } from '../http/hub-problem.js';
import { tokenDigest } from './hub-secrets.js';
import { PrincipalCredentials, type CredentialPrincipal } from '../keys/credential-rotation.js';
import { LinkageViews } from './linkage-views.js';
import { AgencyCertificates } from '../tls/agency-certificates.js';
import { HubTls } from '../tls/hub-tls.js';
import { grpcPeer, peerOfSocket, type PeerTls } from '../tls/peer-certificate.js';

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/;

/**
 * What carries a credential: an HTTP request (its socket says which client certificate the TLS
 * handshake saw), or a gRPC call's metadata in the same shape (its TLS peer is in grpcPeer).
 */
export interface Credentialed {
  readonly headers: { readonly authorization?: string | string[] | undefined };
  readonly raw?: { readonly socket?: unknown };
}

/** The credential a request presented: the digest of its bearer token (the token itself goes no further). */
export interface PresentedCredential {
  readonly digest: string;
}

export type Principal =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'auditor' }
  | { readonly kind: 'agency'; readonly agencyId: AgencyId }
  | { readonly kind: 'citizen'; readonly subjectId: SubjectId };

/**
 * Who a request proves to be, without refusing anything: what refusals are recorded against (I6). A
 * revoked agency's last credential still identifies it; an unknown, malformed or missing one identifies
 * nobody (such refusals are only counted per source).
 */
export type IdentifiedCaller =
  | { readonly kind: 'anonymous' | 'malformed' | 'unknown' }
  | { readonly kind: 'operator' | 'auditor'; readonly credential?: 'rotated' }
  | { readonly kind: 'agency'; readonly agencyId: AgencyId; readonly credential: 'current' | 'revoked' }
  | { readonly kind: 'citizen'; readonly subjectId: SubjectId };

/**
 * Refusals of a rotated operator or auditor token recorded as that principal's (RequestRefused) per
 * minute; past them such a token is treated as unknown (counted per source, I6), so a flood of an old
 * token adds a bounded number of events.
 */
export const ROTATED_REFUSALS_RECORDED_PER_MINUTE = 30;

/** A citizen and what they proved it with: the enrolment secret issued with their number (or again), or a session token. */
export interface AuthenticatedCitizen extends PresentedCredential {
  readonly subjectId: SubjectId;
  readonly via: 'enrolment-secret' | 'session';
}

/** What a digest is as a citizen's credential: admitted, identified but refused (retired, expired), or nothing. */
type CitizenLookup =
  | { readonly kind: 'admitted'; readonly subjectId: SubjectId; readonly via: AuthenticatedCitizen['via'] }
  | { readonly kind: 'retired' | 'expired'; readonly subjectId: SubjectId }
  | undefined;

export interface AuthenticatedAgency extends PresentedCredential {
  readonly agencyId: AgencyId;
}

/**
 * Who is calling. Every principal presents `authorization: Bearer <token>`; the hub compares only
 * SHA-256 digests: agencies' digests are in the registry (events), citizens' in their numbering events,
 * the operator's in keys/operator.token.json. With mutual TLS (HUB_TLS=on) an agency's call is admitted
 * only when it also presents, in the TLS handshake, an unrevoked certificate the hub's CA issued to that
 * same agency (recorded in its certificate stream): a token alone admits no agency call. Citizens, the
 * operator and the auditor keep their tokens over server-authenticated TLS.
 */
@Injectable()
export class Authenticator {
  readonly #mutualTls: boolean;
  /** Per principal: the minute and how many rotated-token refusals were identified in it. */
  readonly #rotatedRefusals = new Map<CredentialPrincipal, { minute: number; count: number }>();

  constructor(
    private readonly views: LinkageViews,
    private readonly sessions: CitizenSessions,
    tls: HubTls,
    private readonly certificates: AgencyCertificates,
    private readonly credentials: PrincipalCredentials,
  ) {
    this.#mutualTls = tls.enabled;
  }

  /**
   * The operator or auditor whose current token this is, the log's rotations read first (a rotation at
   * another hub sharing the keys dir counts at once); undefined for any other token.
   */
  async #keyHolder(digest: Buffer): Promise<CredentialPrincipal | undefined> {
    const held = this.#held(digest);
    if (held === undefined) return undefined;
    await this.credentials.refresh();
    return this.#held(digest);
  }

  #held(digest: Buffer): CredentialPrincipal | undefined {
    if (this.credentials.admits('operator', digest)) return 'operator';
    if (this.credentials.admits('auditor', digest)) return 'auditor';
    return undefined;
  }

  /**
   * For a token that is no current credential: the operator or auditor whose token a rotation retired
   * (the log read first), or, after the rotated token of another hub's rotation was just read, the
   * principal whose new token it is.
   */
  async #afterRotation(token: string, digest: Buffer): Promise<{ readonly principal: CredentialPrincipal; readonly rotated: boolean } | undefined> {
    await this.credentials.refresh();
    const held = this.#held(digest);
    if (held !== undefined) return { principal: held, rotated: false };
    const rotated = this.credentials.rotated(token);
    return rotated === undefined ? undefined : { principal: rotated, rotated: true };
  }

  /** 401 CREDENTIAL_ROTATED when the token is the operator's or auditor's that a rotation retired (no read of the log). */
  #refuseRotated(token: string): void {
    const rotated = this.credentials.rotated(token);
    if (rotated !== undefined) throw rotatedProblem(rotated);
  }

  /** The presented bearer credential; 401 when there is none or it is malformed. */
  credential(request: Credentialed): PresentedCredential {
    return { digest: tokenDigest(this.#bearer(request)) };
  }

  /** The active agency the bearer token belongs to; 401 otherwise. */
  async agency(request: Credentialed): Promise<AuthenticatedAgency> {
    const { digest } = this.credential(request);
    // Every event acknowledged before this request counts: a registration, rotation or revocation a moment ago.
    await this.views.catchUp();
    const agencyId = this.views.agencyByCredential(digest);
    if (agencyId === undefined) {
      const revoked = this.views.revokedAgencyByCredential(digest);
      if (revoked !== undefined) throw new HubProblem('CREDENTIAL_REVOKED', `the bearer token was the credential of agency ${revoked}, which is revoked; it admits nothing any more`, { agencyId: revoked });
      throw new HubProblem('UNAUTHENTICATED', 'the bearer token is not the current credential of an active agency');
    }
    if (this.#mutualTls) await this.#requireCertificate(request, agencyId);
    return { agencyId: agencyId as AgencyId, digest };
  }

  /** The TLS peer of a request: its socket's handshake (HTTP), or the gRPC call's (grpcPeer); `plain` without TLS. */
  #peer(request: Credentialed): PeerTls {
    if (request.raw?.socket !== undefined) return peerOfSocket(request.raw.socket);
    return grpcPeer.getStore() ?? { kind: 'plain' };
  }

  /**
   * Mutual TLS: the request's client certificate MUST be one the hub's CA issued to `agencyId`, recorded
   * in the log, unrevoked and within its validity; else a precise 401 (403 for another agency's).
   */
  async #requireCertificate(request: Credentialed, agencyId: string): Promise<void> {
    const peer = this.#peer(request);
    switch (peer.kind) {
      case 'plain':
      case 'none':
        throw new HubProblem('CLIENT_CERTIFICATE_REQUIRED', `agency ${agencyId}'s token alone admits nothing: the hub runs with mutual TLS, so present the client certificate issued to the agency (docs/tls.md)`, { agencyId });
      case 'rejected':
        throw peer.reason === 'expired'
          ? new HubProblem('CLIENT_CERTIFICATE_EXPIRED', `the client certificate is outside its validity (${peer.detail}): renew it (POST /v1/agencies/${agencyId}/certificates)`, { agencyId })
          : new HubProblem('CLIENT_CERTIFICATE_UNTRUSTED', `the client certificate does not chain to the hub's CA (${peer.detail}): present the certificate the hub issued to the agency`, { agencyId });
      case 'verified': {
        const { fingerprint, agencyId: named } = peer.certificate;
        const record = named === undefined ? undefined : await this.certificates.find(named, fingerprint);
        if (record === undefined) {
          throw new HubProblem('CLIENT_CERTIFICATE_UNTRUSTED', `the client certificate (SHA-256 ${fingerprint}) was not issued at an agency's registration or renewal recorded in the log`, { agencyId });
        }
        if (record.status === 'revoked') throw new HubProblem('CLIENT_CERTIFICATE_REVOKED', `the client certificate (SHA-256 ${fingerprint}) of agency ${record.agencyId} was revoked; it admits nothing any more`, { agencyId });
        if (record.agencyId !== agencyId) {
          throw new HubProblem('CLIENT_CERTIFICATE_MISMATCH', `the client certificate is agency ${record.agencyId}'s, but the bearer token is agency ${agencyId}'s: present both of one agency`, { agencyId });
        }
        return;
      }
      default: {
        const never: never = peer;
        throw new Error(`unknown TLS peer ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * The operator's current token, or 401 CREDENTIAL_ROTATED for one a rotation retired, else 403. The
   * log's rotations were read by `identify`, which every command runs first (the refusal guard).
   */
  operator(request: Credentialed): void {
    const token = this.#bearer(request);
    if (!this.credentials.admits('operator', Buffer.from(tokenDigest(token), 'hex'))) {
      this.#refuseRotated(token);
      throw new HubProblem('FORBIDDEN', 'only the hub operator may do this; present the token of keys/operator.token.json');
    }
  }

  /**
   * Who may issue or change the individual numbers of a municipality's residents: the operator (for any
   * municipality, as J-LIS generates numbers on a municipality's request), or the active municipality
   * agency registered with that municipality code. Answers the actor of the events.
   */
  async numbering(request: Credentialed, municipalityCode: string): Promise<string> {
    const token = this.#bearer(request);
    const digest = tokenDigest(token);
    const bytes = Buffer.from(digest, 'hex');
    if ((await this.#keyHolder(bytes)) === 'operator') return NUMBERING_OPERATOR;
    await this.views.catchUp();
    const agencyId = this.views.agencyByCredential(digest);
    if (agencyId === undefined) {
      const after = await this.#afterRotation(token, bytes);
      if (after?.rotated === true) throw rotatedProblem(after.principal);
      if (after?.principal === 'operator') return NUMBERING_OPERATOR;
      // Another principal (the auditor, a citizen) is known but not allowed; an unknown token is not authenticated.
      const known = after !== undefined || this.#citizenLookup(digest, false) !== undefined;
      if (known) throw new HubProblem('FORBIDDEN', 'only the hub operator, or the municipality\'s own agency, numbers residents');
      throw new HubProblem('UNAUTHENTICATED', 'the bearer token is neither the operator\'s nor the current credential of an active agency');
    }
    if (this.#mutualTls) await this.#requireCertificate(request, agencyId);
    const state = this.views.agency(agencyId);
    const own = state.status === 'active' ? state.agency.municipalityCode : undefined;
    if (own !== municipalityCode) {
      throw new HubProblem(
        'FORBIDDEN',
        own === undefined
          ? `agency ${agencyId} is not registered with a municipality code: only the operator, or the municipality's own agency, numbers its residents`
          : `agency ${agencyId} numbers the residents of municipality ${own} only, not ${municipalityCode}`,
      );
    }
    return `agency:${agencyId}`;
  }

  /**
   * The auditor reads the raw log (envelopes hold subject ids and agency codes, I7): 401 for a missing
   * or unknown token, 403 for a principal the hub knows (the operator, an agency, a citizen). Await it:
   * it catches the views up first, so an agency registered a moment ago is known.
   */
  async requireAuditor(request: Credentialed): Promise<void> {
    const token = this.#bearer(request);
    const presented = Buffer.from(tokenDigest(token), 'hex');
    let holder = await this.#keyHolder(presented);
    if (holder === undefined) {
      const after = await this.#afterRotation(token, presented);
      if (after?.rotated === true) throw rotatedProblem(after.principal);
      holder = after?.principal;
    }
    if (holder === 'auditor') return;
    // principal() is 401 for a token nobody holds; the operator is not one of its principals.
    if (holder !== 'operator') await this.principal(request);
    throw new HubProblem('FORBIDDEN', 'only the auditor may read raw events; present the token of keys/auditor.token.json');
  }

  /** True when the request carries the auditor's token; 401 for a malformed or missing one. */
  isAuditor(request: Credentialed): boolean {
    return this.credentials.admits('auditor', Buffer.from(this.credential(request).digest, 'hex'));
  }

  /**
   * Who may rotate the auditor's credential: the auditor (its own) or the operator (to cut off a leaked
   * auditor token). 401 CREDENTIAL_ROTATED for a retired token of either, 403 for anyone else.
   */
  async auditorOrOperator(request: Credentialed): Promise<CredentialPrincipal> {
    const token = this.#bearer(request);
    const presented = Buffer.from(tokenDigest(token), 'hex');
    const holder = (await this.#keyHolder(presented)) ?? (await this.#afterRotation(token, presented));
    if (typeof holder === 'string') return holder;
    if (holder?.rotated === true) throw rotatedProblem(holder.principal);
    if (holder !== undefined) return holder.principal;
    throw new HubProblem('FORBIDDEN', 'only the auditor (its own) or the hub operator rotates the auditor\'s credential');
  }

  /** The request's principal when it presents a credential, without failing: for answers that depend on who asks. */
  async principal(request: Credentialed): Promise<Principal> {
    if (request.headers.authorization === undefined) return { kind: 'anonymous' };
    const token = this.#bearer(request);
    const digest = tokenDigest(token);
    if ((await this.#keyHolder(Buffer.from(digest, 'hex'))) === 'auditor') return { kind: 'auditor' };
    await this.views.catchUp();
    const agencyId = this.views.agencyByCredential(digest);
    if (agencyId !== undefined) {
      // What an agency is shown as itself (its openings in a proof) needs its certificate too under mutual TLS.
      if (this.#mutualTls) await this.#requireCertificate(request, agencyId);
      return { kind: 'agency', agencyId: agencyId as AgencyId };
    }
    if (this.#citizenLookup(digest, false) === undefined) {
      const after = await this.#afterRotation(token, Buffer.from(digest, 'hex'));
      if (after?.rotated === true) throw rotatedProblem(after.principal);
      if (after?.principal === 'auditor') return { kind: 'auditor' };
    }
    return { kind: 'citizen', subjectId: this.#admitCitizen(digest).subjectId };
  }

  /** Who the request proves to be (never throws for a bad credential: it is then `unknown` or `malformed`). */
  async identify(request: Credentialed): Promise<IdentifiedCaller> {
    const header = request.headers.authorization;
    if (header === undefined) return { kind: 'anonymous' };
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match) return { kind: 'malformed' };
    const token = match[1]!;
    const digest = tokenDigest(token);
    const bytes = Buffer.from(digest, 'hex');
    const holder = await this.#keyHolder(bytes);
    if (holder !== undefined) return { kind: holder };
    await this.views.catchUp();
    const agencyId = this.views.agencyByCredential(digest);
    if (agencyId !== undefined) return { kind: 'agency', agencyId: agencyId as AgencyId, credential: 'current' };
    const revoked = this.views.revokedAgencyByCredential(digest);
    if (revoked !== undefined) return { kind: 'agency', agencyId: revoked as AgencyId, credential: 'revoked' };
    // A retired secret or an expired session still proves who it was (its refusal is the citizen's, I6).
    const citizen = this.#citizenLookup(digest, false);
    if (citizen !== undefined) return { kind: 'citizen', subjectId: citizen.subjectId };
    // A token of the operator or auditor that a rotation (here or at another hub) retired, or just issued.
    const after = await this.#afterRotation(token, bytes);
    if (after === undefined) return { kind: 'unknown' };
    if (!after.rotated) return { kind: after.principal };
    return this.#countRotated(after.principal) ? { kind: after.principal, credential: 'rotated' } : { kind: 'unknown' };
  }

  /** True while this minute's refusals of the principal's rotated tokens may still be recorded as its own. */
  #countRotated(principal: CredentialPrincipal): boolean {
    const minute = Math.floor(Date.now() / 60_000);
    const tally = this.#rotatedRefusals.get(principal);
    if (tally === undefined || tally.minute !== minute) {
      this.#rotatedRefusals.set(principal, { minute, count: 1 });
      return true;
    }
    tally.count += 1;
    return tally.count <= ROTATED_REFUSALS_RECORDED_PER_MINUTE;
  }

  /**
   * The citizen a request proves: their enrolment secret while no passkey retired it, or a live session
   * token. 401 CREDENTIAL_RETIRED for a retired or replaced secret, SESSION_EXPIRED for an ended session.
   */
  async citizen(request: Credentialed): Promise<SubjectId> {
    return (await this.citizenCredential(request)).subjectId;
  }

  /** As `citizen`, saying which kind of credential it was. */
  async citizenCredential(request: Credentialed): Promise<AuthenticatedCitizen> {
    const { digest } = this.credential(request);
    await this.views.catchUp();
    const { subjectId, via } = this.#admitCitizen(digest);
    return { subjectId, via, digest };
  }

  #admitCitizen(digest: string): { readonly subjectId: SubjectId; readonly via: AuthenticatedCitizen['via'] } {
    const found = this.#citizenLookup(digest, true);
    if (found === undefined) throw new HubProblem('UNAUTHENTICATED', 'the bearer token is not a citizen credential: neither the enrolment secret issued with an individual number nor a session token');
    if (found.kind !== 'admitted') {
      throw found.kind === 'retired'
        ? new HubProblem('CREDENTIAL_RETIRED', 'this enrolment secret was retired (a passkey was enrolled with it, or the municipality issued a new one): sign in with a passkey')
        : new HubProblem('SESSION_EXPIRED', 'this session expired or was ended: sign in again with a passkey');
    }
    return found;
  }

  /** What a digest is as a citizen credential; a live session's idle time starts again when `touch`. */
  #citizenLookup(digest: string, touch: boolean): CitizenLookup {
    const subjectId = this.views.citizenByCredential(digest);
    if (subjectId !== undefined) return { kind: 'admitted', subjectId, via: 'enrolment-secret' };
    const retired = this.views.citizenByRetiredSecret(digest);
    if (retired !== undefined) return { kind: 'retired', subjectId: retired };
    const session = this.sessions.check(digest, touch);
    if (session.kind === 'live') return { kind: 'admitted', subjectId: session.subjectId, via: 'session' };
    if (session.kind === 'expired') return { kind: 'expired', subjectId: session.subjectId };
    return undefined;
  }

  #bearer(request: Credentialed): string {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match) throw new HubProblem('UNAUTHENTICATED', 'send the credential as "authorization: Bearer <token>"', { wwwAuthenticate: 'Bearer' });
    return match[1]!;
  }
}

function rotatedProblem(principal: CredentialPrincipal): HubProblem {
  return new HubProblem('CREDENTIAL_ROTATED', `the bearer token was the ${principal}'s credential until a rotation replaced it; it admits nothing any more: use the token now in keys/${principal}.token.json`, { principal });
}

/** The actor of numbering done with the operator's token. */
export const NUMBERING_OPERATOR = 'operator:hub';
