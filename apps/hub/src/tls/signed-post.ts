import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { ProvisionSigner } from '../linkage/hub-secrets.js';
import { agencyIdOfCertificate } from './hub-ca.js';
import type { HubTls } from './hub-tls.js';

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
 * issued to the agency the endpoint is registered for, and see the hub's own certificate as its client's.
 */
export class SignedPoster {
  readonly #http: HttpAgent;
  readonly #https: HttpsAgent;
  readonly #pinned: boolean;

  constructor(
    private readonly signer: ProvisionSigner,
    maxSockets: number,
    tls: HubTls | undefined,
  ) {
    this.#http = new HttpAgent({ keepAlive: true, maxSockets });
    const ca = tls?.ca;
    this.#pinned = ca !== undefined;
    this.#https = new HttpsAgent({ keepAlive: true, maxSockets, ...(ca === undefined ? {} : { ca: ca.caCertificatePem, cert: ca.hub.certificatePem, key: ca.hub.privateKeyPem }) });
  }

  /** Whether `protocol` is one this poster speaks (http: or https:). */
  static speaks(protocol: string): boolean {
    return protocol === 'http:' || protocol === 'https:';
  }

  post(url: URL, body: Buffer, options: SignedPostOptions): Promise<SignedPostResult> {
    const https = url.protocol === 'https:';
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
          ...(https && this.#pinned ? { checkServerIdentity: (host: string, cert: PeerCertificate) => this.#check(host, cert, options.agencyId) } : {}),
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
      req.end(body);
    });
  }

  /** The endpoint's certificate names its host (as any TLS client checks) and is the registered agency's. */
  #check(host: string, cert: PeerCertificate, agencyId: string): Error | undefined {
    const named = checkServerIdentity(host, cert);
    if (named !== undefined) return named;
    const holder = cert.raw === undefined ? undefined : agencyIdOfCertificate(cert.raw);
    if (holder !== agencyId) {
      return new Error(`the intermediate server's certificate is ${holder === undefined ? 'no agency\'s' : `agency ${holder}'s`}, but the endpoint is registered for agency ${agencyId}`);
    }
    return undefined;
  }

  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}
