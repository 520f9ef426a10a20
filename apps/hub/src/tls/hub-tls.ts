import { Injectable, Logger, type OnModuleInit, type Provider } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Server as TlsServer } from 'node:tls';
import { HubConfig } from '../config/hub-config.js';
import type { CertificateRecord } from './agency-certificates.js';
import { CA_CERT_FILE, HubCertificateAuthority } from './hub-ca.js';

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

  constructor(
    readonly ca: HubCertificateAuthority | undefined,
    private readonly adapterHost: HttpAdapterHost,
    private readonly config: HubConfig,
  ) {}

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

  onModuleInit(): void {
    if (this.ca === undefined) return;
    const server: unknown = this.adapterHost.httpAdapter?.getHttpServer();
    if (server instanceof TlsServer) {
      server.setSecureContext({ key: this.ca.hub.privateKeyPem, cert: this.ca.hub.certificatePem, ca: this.ca.caCertificatePem });
      this.#logger.log(`HTTPS with the hub's CA (${this.config.keysDir}/${CA_CERT_FILE}); agencies admitted by client certificate (mutual TLS)`);
    }
  }
}

export const HUB_TLS_PROVIDER: Provider = {
  provide: HubTls,
  useFactory: async (config: HubConfig, adapterHost: HttpAdapterHost) =>
    new HubTls(config.tls.enabled ? await HubCertificateAuthority.loadOrCreate(config.keysDir, config.tls.hostNames) : undefined, adapterHost, config),
  inject: [HubConfig, HttpAdapterHost],
};
