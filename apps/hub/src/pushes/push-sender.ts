import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { HubConfig } from '../config/hub-config.js';
import { ProvisionSigner } from '../linkage/hub-secrets.js';
import { HubTls } from '../tls/hub-tls.js';
import { SignedPoster } from '../tls/signed-post.js';

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
 * Posts one push to an intermediate server, signed as provision requests are (SignedPoster: the hub's
 * Ed25519 `hub-signature` of the raw body, keep-alive connections, with HUB_TLS=on the subscriber's
 * certificate checked against its registration), within HUB_PUSH_TIMEOUT_MS. Any 2xx is a delivery;
 * everything else is a failed try with its reason. Never throws.
 */
@Injectable()
export class PushSender implements OnApplicationShutdown {
  readonly #poster: SignedPoster;
  readonly #timeoutMs: number;

  constructor(signer: ProvisionSigner, config: HubConfig, tls: HubTls) {
    this.#timeoutMs = config.pushes.timeoutMs;
    this.#poster = new SignedPoster(signer, Math.max(16, config.pushes.concurrency), tls);
  }

  async send(endpoint: string, push: PushBody): Promise<PushTry> {
    let url: URL;
    try {
      url = new URL(`${endpoint.replace(/\/+$/, '')}/v1/pushes`);
    } catch {
      return { ok: false, error: `the registered endpoint ${JSON.stringify(endpoint)} is not a URL` };
    }
    if (!SignedPoster.speaks(url.protocol)) return { ok: false, error: `pushes go over http(s); the registered endpoint uses ${url.protocol}` };
    const body = Buffer.from(JSON.stringify(push), 'utf8');
    const result = await this.#poster.post(url, body, { timeoutMs: this.#timeoutMs, maxResponseBytes: MAX_ANSWER_BYTES, overflow: 'truncate', agencyId: push.subscriberAgencyId });
    if (result.kind === 'failed') return { ok: false, error: result.reason === 'unreachable' ? `unreachable: ${result.detail}` : result.detail };
    if (result.status < 200 || result.status > 299) return { ok: false, error: `the receiver answered HTTP ${result.status}` };
    let duplicate = false;
    try {
      duplicate = (JSON.parse(result.body.toString('utf8')) as { duplicate?: unknown } | null)?.duplicate === true;
    } catch {
      // Any 2xx is a delivery; the answer's body is informative only.
    }
    return { ok: true, duplicate };
  }

  onApplicationShutdown(): void {
    this.#poster.close();
  }
}
