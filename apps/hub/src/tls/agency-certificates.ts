import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Command, CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import type { Subscription } from 'rxjs';
import type { EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Caller } from '../ledger/idempotency.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import { loadStream, type Fold } from '../ledger/load-stream.js';
import { hasCode, withRetries } from '../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { csrRequired, type AcceptedCsr } from './csr.js';
import type { AgencyIssuedCertificate, IssuedCertificate } from './hub-ca.js';
import { HubTls } from './hub-tls.js';

/**
 * The certificates of one agency: a stream of its own beside the registry's (`agency-certificates-<id>`),
 * one serial per change (I2). The events are public (I10): a certificate is shown to every peer it
 * talks to, and its fingerprint no more admits anyone than an agency's public key. With a certificate
 * signing request the agency keeps its private key and the hub never sees it; without, the hub makes the
 * key, returns it once and never keeps it (schema v2 records which: `keyOrigin`).
 */
export const CERTIFICATE_STREAM_PREFIX = 'agency-certificates-';

export function agencyCertificateStreamId(agencyId: string): string {
  return `${CERTIFICATE_STREAM_PREFIX}${agencyId}`;
}

export interface AgencyCertificateIssuedData {
  readonly agencyId: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** `registration` (issued with the agency's registration) or `renewal` (the earlier ones stay valid until they end or are revoked). */
  readonly occasion: 'registration' | 'renewal';
  readonly issuedAt: string;
  /**
   * Schema v2: `agency` when the hub certified the key of the agency's certificate signing request (the
   * hub never held the private key), `hub` when the hub made the key and answered it once. Absent in v1
   * events, all of which were `hub`.
   */
  readonly keyOrigin?: KeyOrigin;
}

/** Who made a certificate's private key (AgencyCertificateIssued v2). */
export type KeyOrigin = 'agency' | 'hub';

export interface AgencyCertificateRevokedData {
  readonly agencyId: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  readonly reason: string;
  readonly revokedAt: string;
}

export type AgencyCertificateEvent =
  | { readonly type: 'AgencyCertificateIssued'; readonly schemaVersion?: number; readonly data: AgencyCertificateIssuedData; readonly terminal?: 'completed' }
  | { readonly type: 'AgencyCertificateRevoked'; readonly schemaVersion?: number; readonly data: AgencyCertificateRevokedData; readonly terminal?: 'completed' };

export interface CertificateRecord {
  readonly agencyId: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly status: 'issued' | 'revoked';
  /** Who made its private key (the fold sets it: `hub` for every certificate of a v1 event; absent reads as `hub`). */
  readonly keyOrigin?: KeyOrigin;
}

export interface AgencyCertificatesState {
  /** By fingerprint. */
  readonly certificates: ReadonlyMap<string, CertificateRecord>;
}

export type AgencyCertificateCommandData =
  | { readonly type: 'IssueAgencyCertificate'; readonly agencyActive: boolean; readonly certificate: Omit<IssuedCertificate, 'certificatePem' | 'privateKeyPem'>; readonly occasion: AgencyCertificateIssuedData['occasion']; readonly keyOrigin: KeyOrigin; readonly at: string }
  | { readonly type: 'RevokeAgencyCertificate'; readonly fingerprint: string; readonly reason: string; readonly at: string };

/** The decider of an agency's certificates: plain functions, time and the issued certificate given in. */
export const agencyCertificatesDecider = {
  initialState: (): AgencyCertificatesState => ({ certificates: new Map() }),

  evolve(state: AgencyCertificatesState, event: AgencyCertificateEvent): AgencyCertificatesState {
    const certificates = new Map(state.certificates);
    switch (event.type) {
      case 'AgencyCertificateIssued': {
        const { agencyId, serialNumber, fingerprint, notBefore, notAfter, keyOrigin } = event.data;
        certificates.set(fingerprint, { agencyId, serialNumber, fingerprint, notBefore, notAfter, status: 'issued', keyOrigin: keyOrigin ?? 'hub' });
        break;
      }
      case 'AgencyCertificateRevoked': {
        const known = certificates.get(event.data.fingerprint);
        if (known !== undefined) certificates.set(known.fingerprint, { ...known, status: 'revoked' });
        break;
      }
      default: {
        const never: never = event;
        throw new Error(`unknown certificate event ${JSON.stringify(never)}`);
      }
    }
    return { certificates };
  },

  decide(agencyId: string, command: AgencyCertificateCommandData, state: AgencyCertificatesState): AgencyCertificateEvent[] {
    switch (command.type) {
      case 'IssueAgencyCertificate': {
        if (!command.agencyActive) throw new HubProblem('AGENCY_REVOKED', `agency ${agencyId} is not active: the hub issues certificates to active agencies only`, { agencyId });
        const { serialNumber, fingerprint, notBefore, notAfter } = command.certificate;
        return [{ type: 'AgencyCertificateIssued', schemaVersion: 2, data: { agencyId, serialNumber, fingerprint, notBefore, notAfter, occasion: command.occasion, issuedAt: command.at, keyOrigin: command.keyOrigin }, terminal: 'completed' }];
      }
      case 'RevokeAgencyCertificate': {
        const known = state.certificates.get(command.fingerprint);
        if (known === undefined) throw new HubProblem('CERTIFICATE_NOT_FOUND', `agency ${agencyId} holds no certificate with fingerprint ${command.fingerprint}`, { agencyId });
        if (known.status === 'revoked') throw new HubProblem('CERTIFICATE_ALREADY_REVOKED', `the certificate ${command.fingerprint} of agency ${agencyId} is already revoked`, { agencyId });
        return [{ type: 'AgencyCertificateRevoked', schemaVersion: 1, data: { agencyId, serialNumber: known.serialNumber, fingerprint: known.fingerprint, reason: command.reason, revokedAt: command.at }, terminal: 'completed' }];
      }
      default: {
        const never: never = command;
        throw new Error(`unknown certificate command ${JSON.stringify(never)}`);
      }
    }
  },
};

const certificatesFold: Fold<AgencyCertificatesState, AgencyCertificateEvent> = {
  initialState: agencyCertificatesDecider.initialState,
  evolve: agencyCertificatesDecider.evolve,
  types: new Set(['AgencyCertificateIssued', 'AgencyCertificateRevoked']),
};

export interface CertificateOutcome {
  readonly agencyId: string;
  readonly serial: string;
  /** The new certificate (issue only), with the key the hub made when there was no CSR: shown once. */
  readonly issued?: AgencyIssuedCertificate;
}

/** An issue certifies the key of `csr` (checked by acceptCsr before anything is recorded), or, without one, a key the hub makes. */
type CertificateChange = { readonly type: 'issue'; readonly occasion: AgencyCertificateIssuedData['occasion']; readonly csr?: AcceptedCsr } | { readonly type: 'revoke'; readonly fingerprint: string; readonly reason: string };

/** Issue (at registration, or a renewal) or revoke one of an agency's certificates (operator only). */
export class ChangeAgencyCertificatesCommand extends Command<CertificateOutcome> {
  constructor(
    readonly agencyId: string,
    readonly change: CertificateChange,
    readonly caller: Caller,
  ) {
    super();
  }
}

/** The hostname of a registered endpoint, for the certificate's SAN (its intermediate server serves TLS with it). */
function endpointHost(endpoint: string): string[] {
  try {
    const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
    return host === '' ? [] : [host];
  } catch {
    return [];
  }
}

@CommandHandler(ChangeAgencyCertificatesCommand)
export class ChangeAgencyCertificatesHandler implements ICommandHandler<ChangeAgencyCertificatesCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly eventBus: EventBus,
    private readonly views: LinkageViews,
    private readonly tls: HubTls,
    private readonly config: HubConfig,
  ) {}

  async execute({ agencyId, change, caller }: ChangeAgencyCertificatesCommand): Promise<CertificateOutcome> {
    const ca = this.tls.ca;
    if (ca === undefined) throw new HubProblem('TLS_NOT_ENABLED', 'the hub runs with HUB_TLS=off: it issues and revokes no certificates (docs/tls.md)');
    await this.views.catchUp();
    const agency = this.views.agency(agencyId);
    if (agency.status === 'unregistered') throw new HubProblem('AGENCY_NOT_REGISTERED', `no agency is registered under id ${JSON.stringify(agencyId)}`);
    const now = this.clock();
    // HUB_TLS_REQUIRE_CSR=on: the hub makes no agency key (the edges refuse earlier, before a registration is recorded).
    if (change.type === 'issue' && change.csr === undefined && this.config.tls.requireCsr === true) throw csrRequired();
    // The certificate is made once: a retry after a conflict records the same certificate.
    const issued = change.type === 'issue' ? await ca.issueAgencyCertificate(agencyId, endpointHost(agency.agency.endpoint), now, this.config.tls.agencyCertificateDays, change.csr?.spki) : undefined;
    const streamId = agencyCertificateStreamId(agencyId);
    return withRetries(4, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION'), async () => {
      const { state, expectedRevision } = await loadStream(this.store, streamId, certificatesFold);
      const command: AgencyCertificateCommandData =
        change.type === 'issue'
          ? { type: 'IssueAgencyCertificate', agencyActive: agency.status === 'active', certificate: issued!, occasion: change.occasion, keyOrigin: change.csr === undefined ? 'hub' : 'agency', at: now.toISOString() }
          : { type: 'RevokeAgencyCertificate', fingerprint: change.fingerprint, reason: change.reason, at: now.toISOString() };
      const events = agencyCertificatesDecider.decide(agencyId, command, state);
      const result = await this.store.append({ streamId, expectedRevision, events, serial: { allocate: true }, metadata: { actor: caller.actor, correlationId: caller.correlationId } });
      this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
      return { agencyId, serial: result.serial, ...(issued === undefined ? {} : { issued }) };
    });
  }
}

/**
 * The certificates the hub issued, by agency, read from their streams when first asked and dropped from
 * the cache when this hub appends to one (a revocation admits nothing from the next request on). Agencies
 * are few (thousands at most), so the cache is bounded by the registry, not the population (I11).
 */
@Injectable()
export class AgencyCertificates implements OnModuleDestroy {
  readonly #cache = new Map<string, Promise<AgencyCertificatesState>>();
  readonly #subscription: Subscription;

  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    eventBus: EventBus,
    tls: HubTls,
  ) {
    this.#subscription = eventBus.subscribe((event) => {
      if (event instanceof EventsAppended && event.streamId.startsWith(CERTIFICATE_STREAM_PREFIX)) this.#cache.delete(event.streamId.slice(CERTIFICATE_STREAM_PREFIX.length));
    });
    // The hub's calls to intermediate servers check the server's certificate against these (SignedPoster).
    tls.attachCertificates(this);
  }

  /** The record of the certificate with this fingerprint among the agency's, or undefined. */
  async find(agencyId: string, fingerprint: string): Promise<CertificateRecord | undefined> {
    return (await this.records(agencyId)).get(fingerprint);
  }

  /** The agency's certificates by fingerprint, as its stream says now (cached until this hub appends to it). */
  async records(agencyId: string): Promise<ReadonlyMap<string, CertificateRecord>> {
    let state = this.#cache.get(agencyId);
    if (state === undefined) {
      state = loadStream(this.store, agencyCertificateStreamId(agencyId), certificatesFold).then((s) => s.state);
      this.#cache.set(agencyId, state);
      state.catch(() => this.#cache.delete(agencyId));
    }
    return (await state).certificates;
  }

  /** Every certificate of an agency (for its GET). */
  async of(agencyId: string): Promise<readonly CertificateRecord[]> {
    const { state } = await loadStream(this.store, agencyCertificateStreamId(agencyId), certificatesFold);
    return [...state.certificates.values()];
  }

  onModuleDestroy(): void {
    this.#subscription.unsubscribe();
  }
}
