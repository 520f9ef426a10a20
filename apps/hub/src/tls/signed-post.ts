import { Logger } from '@nestjs/common';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket, checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { ProvisionSigner } from '../linkage/hub-secrets.js';
import type { CertificateRecord } from './agency-certificates.js';
import { agencyIdOfCertificate, certificateFingerprint } from './hub-ca.js';
import type { HubTls } from './hub-tls.js';

/** What a server's certificate names: the agency of its SAN URI (if any) and its fingerprint. */
interface ServerIdentity {
  readonly holder: string | undefined;
  readonly fingerprint: string;
}

function identityOf(raw: Buffer): ServerIdentity {
  return { holder: agencyIdOfCertificate(raw), fingerprint: certificateFingerprint(raw) };
}

/** Per connection, read once (the certificate is parsed and hashed at the first reuse, not at every request). */
const identities = new WeakMap<TLSSocket, ServerIdentity | null>();

function peerOf(socket: TLSSocket): ServerIdentity | undefined {
  let known = identities.get(socket);
  if (known === undefined) {
    const raw = socket.getPeerCertificate().raw;
    known = raw === undefined ? null : identityOf(raw);
    identities.set(socket, known);
  }
  return known ?? undefined;
}

/** How a signed POST ended: an answer (any status, its body bounded), or why there was none. */
export type SignedPostResult =
  | { readonly kind: 'answered'; readonly status: number; readonly body: Buffer }
  | { readonly kind: 'failed'; readonly reason: 'unreachable' | 'timeout' | 'too-large'; readonly detail: string };

export interface SignedPostOptions {
  /** The whole call's time limit. */
  readonly timeoutMs: number;
  /** Bytes of answer read at most. */
  readonly maxResponseBytes: number;
  /** Past maxResponseBytes: `fail` cuts the call (too-large), `truncate` keeps reading and drops the rest. */
  readonly overflow: 'fail' | 'truncate';
  /**
   * The agency the endpoint was registered for: over https with HUB_TLS=on, its certificate MUST be one
   * the hub's CA issued to this agency (SAN URI), besides naming the endpoint's host.
   */
  readonly agencyId: string;
}

/**
 * The hub's one signed HTTP POST to intermediate servers (provision requests, pushes): the raw body
 * signed in `hub-signature` (ProvisionSigner), keep-alive connections, a deadline and a bounded answer.
 * With HUB_TLS=on, https endpoints are trusted only through the hub's CA, must present the certificate
 * issued to the agency the endpoint is registered for, recorded in the log (AgencyCertificateIssued) and
 * not revoked (AgencyCertificateRevoked: refused from the next call on, on a kept-alive connection too), and
 * see the hub's own certificate as its client's.
 */
export class SignedPoster {
  readonly #http: HttpAgent;
  #https: HttpsAgent;
  readonly #maxSockets: number;
  readonly #pinned: boolean;
  readonly #tls: HubTls | undefined;
  readonly #logger = new Logger('Tls');

  constructor(
    private readonly signer: ProvisionSigner,
    maxSockets: number,
    tls: HubTls | undefined,
  ) {
    this.#tls = tls;
    this.#http = new HttpAgent({ keepAlive: true, maxSockets });
    this.#maxSockets = maxSockets;
    const ca = tls?.ca;
    this.#pinned = ca !== undefined;
    this.#https = this.#agent(ca);
    // A CA rotation: new connections trust the new bundle and present the hub's new certificate; the
    // connections already open finish what they carry and are closed a minute later.
    // (A stand-in for HubTls without rotations, as some tests build one, has no onChange.)
    if (typeof tls?.onChange === 'function') {
      tls.onChange((next) => {
        const previous = this.#https;
        this.#https = this.#agent(next);
        setTimeout(() => previous.destroy(), 60_000).unref();
      });
    }
  }

  // No TLS session is resumed when pinned: a resumed handshake exchanges no certificate, so neither
  // checkServerIdentity nor the check of a kept-alive connection would see one. Every new connection is
  // a full handshake (one per connection; keep-alive makes them few). Intermediate servers are trusted
  // through every CA of the trust bundle (an agency's certificate of the previous CA during an overlap).
  #agent(ca: HubTls['ca']): HttpsAgent {
    return new HttpsAgent({ keepAlive: true, maxSockets: this.#maxSockets, ...(ca === undefined ? {} : { ca: ca.trustBundlePem, cert: ca.hub.certificatePem, key: ca.hub.privateKeyPem, maxCachedSessions: 0 }) });
  }

  /** Whether `protocol` is one this poster speaks (http: or https:). */
  static speaks(protocol: string): boolean {
    return protocol === 'http:' || protocol === 'https:';
  }

  async post(url: URL, body: Buffer, options: SignedPostOptions): Promise<SignedPostResult> {
    const https = url.protocol === 'https:';
    const pinned = https && this.#pinned;
    // The agency's certificates as the log records them now (a revocation drops the cache at once).
    let records: ReadonlyMap<string, CertificateRecord> | undefined;
    const certificates = pinned ? this.#tls?.certificates : undefined;
    if (certificates !== undefined) {
      try {
        records = await certificates.records(options.agencyId);
      } catch (error) {
        return { kind: 'failed', reason: 'unreachable', detail: `the certificates of agency ${options.agencyId} could not be read: ${error instanceof Error ? error.message : String(error)}` };
      }
    }
    const send = https ? httpsRequest : httpRequest;
    return new Promise<SignedPostResult>((resolve) => {
      let settled = false;
      const done = (result: SignedPostResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const fail = (reason: 'unreachable' | 'timeout' | 'too-large', detail: string): void => {
        done({ kind: 'failed', reason, detail });
        req.destroy();
      };
      const req = send(
        url,
        {
          method: 'POST',
          agent: https ? this.#https : this.#http,
          headers: { 'content-type': 'application/json', 'content-length': body.length, ...this.signer.headers(body) },
          ...(pinned ? { checkServerIdentity: (host: string, cert: PeerCertificate) => this.#check(host, cert, options.agencyId, records) } : {}),
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > options.maxResponseBytes) {
              if (options.overflow === 'fail') fail('too-large', `the intermediate server sent more than ${options.maxResponseBytes} bytes`);
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => done({ kind: 'answered', status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', (error) => done({ kind: 'failed', reason: 'unreachable', detail: error.message }));
        },
      );
      const timer = setTimeout(() => fail('timeout', `no answer within ${options.timeoutMs} ms`), options.timeoutMs);
      req.on('error', (error) => done({ kind: 'failed', reason: 'unreachable', detail: error.message }));
      if (!pinned) {
        req.end(body);
        return;
      }
      // A new connection is checked in its handshake (checkServerIdentity), before a byte of the body is
      // sent; a kept-alive one was checked then, so it is checked again here, before the body is written:
      // its certificate may have been revoked since.
      req.once('socket', (socket: Socket) => {
        if (socket instanceof TLSSocket && !socket.connecting) {
          const refusal = this.#refusal(peerOf(socket), options.agencyId, records);
          if (refusal !== undefined) {
            socket.destroy();
            fail('unreachable', this.#refused(options.agencyId, refusal));
            return;
          }
        }
        req.end(body);
      });
    });
  }

  /** The endpoint's certificate names its host (as any TLS client checks) and is the registered agency's, recorded and unrevoked. */
  #check(host: string, cert: PeerCertificate, agencyId: string, records: ReadonlyMap<string, CertificateRecord> | undefined): Error | undefined {
    const named = checkServerIdentity(host, cert);
    if (named !== undefined) return named;
    const refusal = this.#refusal(cert.raw === undefined ? undefined : identityOf(cert.raw), agencyId, records);
    return refusal === undefined ? undefined : new Error(this.#refused(agencyId, refusal));
  }

  /** The refusals of a server's certificate are logged for the operator: the failure the caller sees and the log records is PROVIDER_UNREACHABLE. */
  #refused(agencyId: string, refusal: string): string {
    this.#logger.warn(`refused to call the intermediate server of agency ${agencyId}: ${refusal}`);
    return refusal;
  }

  /** Why the server's certificate is not one to call for `agencyId`, or undefined. */
  #refusal(identity: ServerIdentity | undefined, agencyId: string, records: ReadonlyMap<string, CertificateRecord> | undefined): string | undefined {
    if (identity === undefined) return `the intermediate server presented no certificate on this connection, but the endpoint is registered for agency ${agencyId}`;
    const { holder, fingerprint } = identity;
    if (holder !== agencyId) {
      return `the intermediate server's certificate is ${holder === undefined ? 'no agency\'s' : `agency ${holder}'s`}, but the endpoint is registered for agency ${agencyId}`;
    }
    // Without the log's records (a poster made without them), the CA and the SAN are all that is checked.
    if (records === undefined) return undefined;
    const record = records.get(fingerprint);
    if (record === undefined) return `the intermediate server's certificate ${fingerprint} names agency ${agencyId}, but the log records no such certificate issued to it (CERTIFICATE_NOT_FOUND)`;
    if (record.status === 'revoked') return `the intermediate server's certificate ${fingerprint} of agency ${agencyId} is revoked (AgencyCertificateRevoked): the hub does not call it (CERTIFICATE_REVOKED)`;
    return undefined;
  }

  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}
