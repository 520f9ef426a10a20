import { Injectable } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import type { AgencyId, SubjectId } from '#linkage';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import { loadOrCreateAuditorTokenDigest, loadOrCreateOperatorTokenDigest, tokenDigest } from './hub-secrets.js';
import { LinkageViews } from './linkage-views.js';

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/;

/** What carries a credential: an HTTP request, or a gRPC call's metadata in the same shape. */
export interface Credentialed {
  readonly headers: { readonly authorization?: string | string[] | undefined };
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

export interface AuthenticatedAgency extends PresentedCredential {
  readonly agencyId: AgencyId;
}

/**
 * Who is calling. Every principal presents `authorization: Bearer <token>`; the hub compares only
 * SHA-256 digests: agencies' digests are in the registry (events), citizens' in their numbering events,
 * the operator's in keys/operator.token.json. The shape (a credential → one principal) admits mutual TLS
 * later: a certificate fingerprint is another digest to look up.
 */
@Injectable()
export class Authenticator {
  readonly #operator: Buffer;
  readonly #auditor: Buffer;

  constructor(
    private readonly views: LinkageViews,
    config: HubConfig,
  ) {
    this.#operator = Buffer.from(loadOrCreateOperatorTokenDigest(config.keysDir), 'hex');
    this.#auditor = Buffer.from(loadOrCreateAuditorTokenDigest(config.keysDir), 'hex');
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
    if (agencyId === undefined) throw new HubProblem('UNAUTHENTICATED', 'the bearer token is not the current credential of an active agency');
    return { agencyId: agencyId as AgencyId, digest };
  }

  operator(request: Credentialed): void {
    const presented = Buffer.from(this.credential(request).digest, 'hex');
    if (!timingSafeEqual(presented, this.#operator)) {
      throw new HubProblem('FORBIDDEN', 'only the hub operator may do this; present the token of keys/operator.token.json');
    }
  }

  /**
   * Who may issue or change the individual numbers of a municipality's residents: the operator (for any
   * municipality, as J-LIS generates numbers on a municipality's request), or the active municipality
   * agency registered with that municipality code. Answers the actor of the events.
   */
  async numbering(request: Credentialed, municipalityCode: string): Promise<string> {
    const { digest } = this.credential(request);
    if (timingSafeEqual(Buffer.from(digest, 'hex'), this.#operator)) return NUMBERING_OPERATOR;
    await this.views.catchUp();
    const agencyId = this.views.agencyByCredential(digest);
    if (agencyId === undefined) {
      // Another principal (the auditor, a citizen) is known but not allowed; an unknown token is not authenticated.
      const known = timingSafeEqual(Buffer.from(digest, 'hex'), this.#auditor) || this.views.citizenByCredential(digest) !== undefined;
      if (known) throw new HubProblem('FORBIDDEN', 'only the hub operator, or the municipality\'s own agency, numbers residents');
      throw new HubProblem('UNAUTHENTICATED', 'the bearer token is neither the operator\'s nor the current credential of an active agency');
    }
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
    const presented = Buffer.from(this.credential(request).digest, 'hex');
    if (timingSafeEqual(presented, this.#auditor)) return;
    // principal() is 401 for a token nobody holds; the operator is not one of its principals.
    if (!timingSafeEqual(presented, this.#operator)) await this.principal(request);
    throw new HubProblem('FORBIDDEN', 'only the auditor may read raw events; present the token of keys/auditor.token.json');
  }

  /** True when the request carries the auditor's token; 401 for a malformed or missing one. */
  isAuditor(request: Credentialed): boolean {
    return timingSafeEqual(Buffer.from(this.credential(request).digest, 'hex'), this.#auditor);
  }

  /** The request's principal when it presents a credential, without failing: for answers that depend on who asks. */
  async principal(request: Credentialed): Promise<Principal> {
    if (request.headers.authorization === undefined) return { kind: 'anonymous' };
    const { digest } = this.credential(request);
    if (this.isAuditor(request)) return { kind: 'auditor' };
    await this.views.catchUp();
    const agencyId = this.views.agencyByCredential(digest);
    if (agencyId !== undefined) return { kind: 'agency', agencyId: agencyId as AgencyId };
    const subjectId = this.views.citizenByCredential(digest);
    if (subjectId !== undefined) return { kind: 'citizen', subjectId };
    throw new HubProblem('UNAUTHENTICATED', 'the bearer token is not a credential this hub knows');
  }

  async citizen(request: Credentialed): Promise<SubjectId> {
    const { digest } = this.credential(request);
    await this.views.catchUp();
    const subject = this.views.citizenByCredential(digest);
    if (subject === undefined) throw new HubProblem('UNAUTHENTICATED', 'the bearer token is not a citizen credential issued with an individual number');
    return subject;
  }

  #bearer(request: Credentialed): string {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match) throw new HubProblem('UNAUTHENTICATED', 'send the credential as "authorization: Bearer <token>"', { wwwAuthenticate: 'Bearer' });
    return match[1]!;
  }
}

/** The actor of numbering done with the operator's token. */
export const NUMBERING_OPERATOR = 'operator:hub';
