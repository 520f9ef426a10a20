import { Injectable, Logger, type OnModuleInit, type Provider } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Server as TlsServer } from 'node:tls';
import { HubConfig } from '../config/hub-config.js';
import type { CertificateRecord } from './agency-certificates.js';
import type { EventStore } from '#ledger';
import { EVENT_STORE } from '../ledger/tokens.js';
import { HubProblem } from '../http/hub-problem.js';
import { acceptCsr, csrRequired, type AcceptedCsr } from './csr.js';
import { CA_CERT_FILE, HubCertificateAuthority, type TlsCaRotationRecord } from './hub-ca.js';
import { reloadGrpcServerCredentials } from './peer-certificate.js';

/** The stream of TlsCaKeyRotated events, in rotation order. */
export const TLS_CA_STREAM = '$tls-ca-keys';
export const TLS_CA_KEY_ROTATED = 'TlsCaKeyRotated';

/** Data of TlsCaKeyRotated (schemas/events/tls-ca-key-rotated.v1.json): public, no key material. */
export interface TlsCaKeyRotatedData extends TlsCaRotationRecord {
  readonly caSubject: string;
  readonly caSerialNumber: string;
  readonly rotatedAt: string;
}

/** The log's CA rotations, oldest first, and the stream's last revision (undefined: none yet). */
export async function readTlsCaRotations(store: EventStore): Promise<{ readonly rotations: readonly TlsCaKeyRotatedData[]; readonly revision: number | undefined }> {
  const events = await store.readStream(TLS_CA_STREAM).catch((error: unknown) => {
    if ((error as { code?: string }).code === 'STREAM_NOT_FOUND') return [];
    throw error;
  });
  return { rotations: events.filter((e) => e.type === TLS_CA_KEY_ROTATED).map((e) => e.data as TlsCaKeyRotatedData), revision: events.at(-1)?.streamRevision };
}

/** The certificates the log records for an agency, by fingerprint (AgencyCertificates). */
export interface CertificateRecords {
  records(agencyId: string): Promise<ReadonlyMap<string, CertificateRecord>>;
}

/**
 * The hub's TLS material when HUB_TLS=on (`ca` undefined when off): the CA and the hub's certificate,
 * and the certificates the log records per agency (what an intermediate server's certificate is checked
 * against: issued to the registered agency, not revoked). At module init it gives the HTTPS server
 * (created by hubFastifyAdapter asking for client certificates) its certificate and the CA it verifies
 * clients against, before the hub listens.
 */
@Injectable()
export class HubTls implements OnModuleInit {
  readonly #logger = new Logger('Tls');

  #ca: HubCertificateAuthority | undefined;
  readonly #listeners = new Set<(ca: HubCertificateAuthority) => void>();

  constructor(
    ca: HubCertificateAuthority | undefined,
    private readonly adapterHost: HttpAdapterHost,
    private readonly config: HubConfig,
  ) {
    this.#ca = ca;
  }

  /** The CA (the one that issues now, the trust bundle, the hub's certificate), or undefined with HUB_TLS=off. */
  get ca(): HubCertificateAuthority | undefined {
    return this.#ca;
  }

  /** Calls `listener` with the CA after each change (a rotation, an overlap's end). */
  onChange(listener: (ca: HubCertificateAuthority) => void): void {
    this.#listeners.add(listener);
  }

  /**
   * Switches to `ca` without a restart: the HTTPS server's and the gRPC edge's secure contexts (new
   * connections get the new certificate and the new trust bundle; open ones keep their handshake), and
   * every listener (the hub's calls to intermediate servers).
   */
  use(ca: HubCertificateAuthority): void {
    const previous = this.#ca;
    if (previous === undefined) throw new Error('the hub runs with HUB_TLS=off: no CA to switch');
    this.#ca = ca;
    this.#apply(ca);
    reloadGrpcServerCredentials(previous.hub.certificatePem, { caCertificatePem: ca.trustBundlePem, ...ca.hub });
    for (const listener of this.#listeners) listener(ca);
  }

  #apply(ca: HubCertificateAuthority): boolean {
    const server: unknown = this.adapterHost.httpAdapter?.getHttpServer();
    if (!(server instanceof TlsServer)) return false;
    server.setSecureContext({ key: ca.hub.privateKeyPem, cert: ca.hub.certificatePem, ca: ca.trustBundlePem });
    return true;
  }

  #certificates: CertificateRecords | undefined;

  /** The log's certificates per agency, once AgencyCertificates has attached itself (at module init). */
  get certificates(): CertificateRecords | undefined {
    return this.#certificates;
  }

  attachCertificates(certificates: CertificateRecords): void {
    this.#certificates = certificates;
  }

  /** The CA, or TLS_NOT_ENABLED's cause as an error for callers that need it. */
  get enabled(): boolean {
    return this.ca !== undefined;
  }

  /**
   * The certificate signing request of a registration or renewal, checked before anything is recorded
   * (a refusal records only itself): undefined when none was sent and the hub may make the key;
   * CSR_REQUIRED when none was sent under HUB_TLS_REQUIRE_CSR=on; TLS_NOT_ENABLED when one was sent to a
   * hub on HUB_TLS=off; else acceptCsr's checks (CSR_MALFORMED, CSR_KEY_NOT_ACCEPTED, CSR_SIGNATURE_INVALID).
   */
  async csrOf(pem: string | undefined): Promise<AcceptedCsr | undefined> {
    if (pem === undefined) {
      if (this.enabled && this.config.tls.requireCsr === true) throw csrRequired();
      return undefined;
    }
    if (!this.enabled) throw new HubProblem('TLS_NOT_ENABLED', 'csr was sent, but the hub runs with HUB_TLS=off: it issues no certificates (docs/tls.md)', { field: 'csr' });
    return acceptCsr(pem);
  }

  onModuleInit(): void {
    if (this.#ca === undefined) return;
    if (this.#apply(this.#ca)) {
      this.#logger.log(`HTTPS with the hub's CA (${this.config.keysDir}/${CA_CERT_FILE}); agencies admitted by client certificate (mutual TLS)`);
    }
  }
}

export const HUB_TLS_PROVIDER: Provider = {
  provide: HubTls,
  useFactory: async (config: HubConfig, adapterHost: HttpAdapterHost, store: EventStore) => {
    if (!config.tls.enabled) return new HubTls(undefined, adapterHost, config);
    // The CA after the log's rotations (TlsCaRotations reads them again at bootstrap and on takeover,
    // should the log not answer yet).
    const rotations = await readTlsCaRotations(store).then(
      (r) => r.rotations,
      () => [],
    );
    return new HubTls(await HubCertificateAuthority.withRotations(config.keysDir, config.tls.hostNames, rotations), adapterHost, config);
  },
  inject: [HubConfig, HttpAdapterHost, EVENT_STORE],
};
