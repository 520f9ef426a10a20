import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { HubConfig } from '../config/hub-config.js';
import { ProvisionSigner } from '../linkage/hub-secrets.js';

/** The push as the subscriber's intermediate server receives it (`POST {endpoint}/v1/pushes`). */
export interface PushBody {
  readonly pushId: string;
  readonly serial: string;
  readonly subscriptionId: string;
  /** The subscriber the push is for: its intermediate server refuses a push naming another agency. */
  readonly subscriberAgencyId: string;
  /** The subscriber's own code for the person. */
  readonly code: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCode: string;
  readonly updatedAt: string;
  readonly issuedAt: string;
}

export type PushTry = { readonly ok: true; readonly duplicate: boolean } | { readonly ok: false; readonly error: string };

/** Answers read at most (the receiver answers `{ pushId, duplicate }`). */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Posts one push to an intermediate server, signed as provision requests are (`hub-signature`: the hub's
 * Ed25519 signature of the raw body, ProvisionSigner), over keep-alive connections, within
 * HUB_PUSH_TIMEOUT_MS. Any 2xx is a delivery; everything else is a failed try with its reason. Never throws.
 */
@Injectable()
export class PushSender implements OnApplicationShutdown {
  readonly #http: HttpAgent;
  readonly #https: HttpsAgent;
  readonly #timeoutMs: number;

  constructor(
    private readonly signer: ProvisionSigner,
    config: HubConfig,
  ) {
    this.#timeoutMs = config.pushes.timeoutMs;
    const sockets = Math.max(16, config.pushes.concurrency);
    this.#http = new HttpAgent({ keepAlive: true, maxSockets: sockets });
    this.#https = new HttpsAgent({ keepAlive: true, maxSockets: sockets });
  }

  send(endpoint: string, push: PushBody): Promise<PushTry> {
    let url: URL;
    try {
      url = new URL(`${endpoint.replace(/\/+$/, '')}/v1/pushes`);
    } catch {
      return Promise.resolve({ ok: false, error: `the registered endpoint ${JSON.stringify(endpoint)} is not a URL` });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.resolve({ ok: false, error: `pushes go over http(s); the registered endpoint uses ${url.protocol}` });
    }
    const body = Buffer.from(JSON.stringify(push), 'utf8');
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<PushTry>((resolve) => {
      let settled = false;
      const done = (result: PushTry): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = send(
        url,
        {
          method: 'POST',
          agent: url.protocol === 'https:' ? this.#https : this.#http,
          headers: { 'content-type': 'application/json', 'content-length': body.length, 'hub-signature': this.signer.signature(body) },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) return done({ ok: false, error: `the receiver answered HTTP ${status}` });
            let duplicate = false;
            try {
              duplicate = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { duplicate?: unknown } | null)?.duplicate === true;
            } catch {
              // Any 2xx is a delivery; the answer's body is informative only.
            }
            done({ ok: true, duplicate });
          });
          res.on('error', (error) => done({ ok: false, error: error.message }));
        },
      );
      const timer = setTimeout(() => {
        done({ ok: false, error: `no answer within ${this.#timeoutMs} ms` });
        req.destroy();
      }, this.#timeoutMs);
      req.on('error', (error) => done({ ok: false, error: `unreachable: ${error.message}` }));
      req.end(body);
    });
  }

  onApplicationShutdown(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}
