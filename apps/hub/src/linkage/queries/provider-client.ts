import { Injectable, Logger } from '@nestjs/common';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { ChannelCredentials, Metadata, status as GrpcStatus, type Client as GrpcClient, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROVIDER_REFUSAL_REASONS, PROVISION_PROTOCOL, type ProviderRefusalReason, type ProvisionRequest, type QueryFailureReason } from '#linkage';
import { HubConfig } from '../../config/hub-config.js';
import { ProvisionSigner } from '../hub-secrets.js';
import { SERVER_LOADER_OPTIONS, defaultProtoDir, serviceClient } from '../../grpc/proto-files.js';
import { HubTls } from '../../tls/hub-tls.js';
import { SignedPoster } from '../../tls/signed-post.js';
import type { CertificateRecord } from '../../tls/agency-certificates.js';
import { certificateFingerprint } from '../../tls/hub-ca.js';
import { PROVIDER_CERTIFICATE_CAUSES, certificateRefusal, refusalOfDetail, type CertificateRefusal, type ProviderCertificateRefusal } from './provider-certificate.js';

/** The provision protocol over gRPC (schemas/proto/linkage_ledger/v1/intermediate_server.proto). */
const INTERMEDIATE_SERVER_PROTO = 'linkage_ledger/v1/intermediate_server.proto';
const INTERMEDIATE_SERVER_SERVICE = 'linkage_ledger.v1.IntermediateServer';
/** Requests in one batch call at most (schemas/provision/README.md). */
const MAX_BATCH = 1000;

type UnaryMethod = (request: { body: Buffer; hubSignature: string; hubSignatureKey: string }, metadata: Metadata, options: { deadline: number }, done: (error: ServiceError | null, reply?: { body?: Buffer }) => void) => void;

/** One provision request as the hub sends it: the protocol always named. */
export type ProvisionRequestBody = ProvisionRequest & { readonly protocol: typeof PROVISION_PROTOCOL };

export type ProviderReply =
  | { readonly kind: 'answered'; readonly bytes: Buffer; readonly encrypted: boolean }
  | { readonly kind: 'refused'; readonly reason: ProviderRefusalReason }
  | {
      readonly kind: 'failed';
      readonly reason: QueryFailureReason;
      /** For the hub's log (may name the endpoint). */
      readonly detail: string;
      /** Set when the hub refused the server's certificate: the cause in words, fit for the requester. */
      readonly cause?: string;
    };

/** One gRPC channel to a provider's endpoint, for one agency. */
interface GrpcChannel {
  readonly client: GrpcClient;
  /** With HUB_TLS=on: the agency's certificates as last read (checkServerIdentity runs synchronously in each handshake). */
  records: ReadonlyMap<string, CertificateRecord> | undefined;
  /** Fingerprints of the certificates this channel's handshakes accepted (its connections). */
  readonly accepted: Set<string>;
  /** The refusal of the last handshake, if it was refused. */
  refusal: CertificateRefusal | undefined;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

class CallFailure extends Error {
  constructor(
    readonly reason: QueryFailureReason,
    detail: string,
    readonly refusal?: ProviderCertificateRefusal,
    /** The provider refused the call as a whole before recording anything (HTTP 4xx; gRPC INVALID_ARGUMENT, UNAUTHENTICATED, UNIMPLEMENTED). */
    readonly refusedWhole = false,
  ) {
    super(detail);
  }
}

/** A single provision waiting to be sent with the others of its turn of the event loop. */
interface Queued {
  readonly request: ProvisionRequestBody;
  readonly resolve: (reply: ProviderReply) => void;
}

/**
 * Calls intermediate servers (中間サーバー) with signed provision requests over HTTP(S) (SignedPoster:
 * keep-alive connections; with HUB_TLS=on the provider's certificate is checked against its registration) or gRPC (grpc:// plaintext, grpcs:// TLS; one channel per endpoint), whichever scheme
 * the provider registered, with one deadline per call (HUB_PROVIDER_TIMEOUT_MS) and a cap on what it
 * reads (HUB_MAX_ANSWER_BYTES of answer). Never throws: every way a call can go wrong is a ProviderReply
 * of kind `failed` with the reason its query's serial ends with.
 */
@Injectable()
export class ProviderClient {
  readonly #poster: SignedPoster;
  readonly #grpc = new Map<string, GrpcChannel>();
  readonly #logger = new Logger('Tls');
  #grpcService: ReturnType<typeof serviceClient> | undefined;
  readonly #timeoutMs: number;
  readonly #maxAnswerBytes: number;
  readonly #tls: HubTls;
  /** Single provisions sent together per turn of the event loop (HUB_PROVIDER_COALESCE). */
  readonly #coalesce: boolean;
  readonly #queued = new Map<string, Queued[]>();

  constructor(
    private readonly signer: ProvisionSigner,
    config: HubConfig,
    tls: HubTls,
  ) {
    this.#poster = new SignedPoster(signer, 256, tls);
    this.#tls = tls;
    // A CA rotation: new channels trust the new bundle and present the hub's new certificate; the open
    // ones finish what they carry and are closed a minute later (as SignedPoster's connections).
    tls.onChange(() => {
      const previous = [...this.#grpc.values()];
      this.#grpc.clear();
      setTimeout(() => {
        for (const channel of previous) channel.client.close();
      }, 60_000).unref();
    });
    this.#timeoutMs = config.linkage.providerTimeoutMs;
    this.#maxAnswerBytes = config.linkage.maxAnswerBytes;
    this.#coalesce = config.linkage.coalesceProvisions;
  }

  /**
   * One provision request. Requests to one provider issued in the same turn of the event loop (under load, the
   * queries whose first append one group commit made durable) go as one batch call (`/v1/provisions/batch`,
   * gRPC ProvideBatch): one signature, one connection write and one check of it at the intermediate server for
   * all, each request still its own serial, record and answer. A batch the provider refuses as a whole (nothing
   * recorded: a request it would not take) goes again one request per call, so that a bad request fails alone.
   */
  provide(endpoint: string, request: ProvisionRequestBody): Promise<ProviderReply> {
    if (!this.#coalesce) return this.#provideOne(endpoint, request);
    return new Promise<ProviderReply>((resolve) => {
      const key = `${request.providerAgencyId}\n${endpoint}`;
      let queue = this.#queued.get(key);
      if (queue === undefined) {
        queue = [];
        this.#queued.set(key, queue);
        setImmediate(() => this.#flush(key, endpoint));
      }
      queue.push({ request, resolve });
    });
  }

  #flush(key: string, endpoint: string): void {
    const queue = this.#queued.get(key) ?? [];
    this.#queued.delete(key);
    for (let i = 0; i < queue.length; i += MAX_BATCH) {
      const part = queue.slice(i, i + MAX_BATCH);
      if (part.length === 1) void this.#provideOne(endpoint, part[0]!.request).then(part[0]!.resolve);
      else void this.#provideCoalesced(endpoint, part);
    }
  }

  async #provideCoalesced(endpoint: string, part: readonly Queued[]): Promise<void> {
    const replies = await this.#provideMany(endpoint, part.map((q) => q.request));
    if (replies.refusedWhole) {
      await Promise.all(part.map(async (q) => q.resolve(await this.#provideOne(endpoint, q.request))));
      return;
    }
    part.forEach((q, i) => q.resolve(replies.replies[i]!));
  }

  async #provideOne(endpoint: string, request: ProvisionRequestBody): Promise<ProviderReply> {
    try {
      const body = await this.#call(endpoint, '/v1/provisions', request, 1, request.providerAgencyId);
      return this.#reply(body, request);
    } catch (error) {
      return failed(error);
    }
  }

  /** One call for many requests to the same provider (bulk queries); one reply per request, in order. */
  async provideBatch(endpoint: string, requests: readonly ProvisionRequestBody[]): Promise<ProviderReply[]> {
    return (await this.#provideMany(endpoint, requests)).replies;
  }

  async #provideMany(endpoint: string, requests: readonly ProvisionRequestBody[]): Promise<{ readonly replies: ProviderReply[]; readonly refusedWhole: boolean }> {
    try {
      const body = await this.#call(endpoint, '/v1/provisions/batch', { protocol: PROVISION_PROTOCOL, requests }, requests.length, requests[0]?.providerAgencyId ?? '');
      const responses = (body as { responses?: unknown } | null)?.responses;
      if (!Array.isArray(responses) || responses.length !== requests.length) {
        throw new CallFailure('PROVIDER_PROTOCOL_ERROR', `the batch answer must hold "responses", one per request (${requests.length})`);
      }
      const replies = requests.map((r, i) => {
        try {
          return this.#reply(responses[i], r);
        } catch (error) {
          return failed(error);
        }
      });
      return { replies, refusedWhole: false };
    } catch (error) {
      const reply = failed(error);
      return { replies: requests.map(() => reply), refusedWhole: error instanceof CallFailure && error.refusedWhole };
    }
  }

  #reply(body: unknown, request: ProvisionRequestBody): ProviderReply {
    const b = body as { status?: unknown; answer?: unknown; encrypted?: unknown; reason?: unknown } | null;
    if (b !== null && typeof b === 'object' && b.status === 'refused') {
      if (!(PROVIDER_REFUSAL_REASONS as readonly unknown[]).includes(b.reason)) {
        throw new CallFailure('PROVIDER_PROTOCOL_ERROR', `a refusal needs a reason among ${PROVIDER_REFUSAL_REASONS.join(', ')}`);
      }
      return { kind: 'refused', reason: b.reason as ProviderRefusalReason };
    }
    if (b === null || typeof b !== 'object' || b.status !== 'answered' || typeof b.answer !== 'string' || !BASE64URL.test(b.answer) || typeof b.encrypted !== 'boolean') {
      throw new CallFailure('PROVIDER_PROTOCOL_ERROR', 'the answer must be {"status":"answered","answer":<base64url>,"encrypted":<boolean>} or {"status":"refused","reason":…}');
    }
    if (request.answerPublicKey !== undefined && !b.encrypted) {
      throw new CallFailure('PROVIDER_PROTOCOL_ERROR', 'the requester gave a public key, but the provider answered in plaintext');
    }
    const bytes = Buffer.from(b.answer, 'base64url');
    if (bytes.length > this.#maxAnswerBytes) throw new CallFailure('ANSWER_TOO_LARGE', `the answer has ${bytes.length} bytes; the hub relays at most ${this.#maxAnswerBytes}`);
    return { kind: 'answered', bytes, encrypted: b.encrypted };
  }

  #call(endpoint: string, path: string, payload: unknown, answers: number, agencyId: string): Promise<unknown> {
    let url: URL;
    try {
      url = new URL(`${endpoint.replace(/\/+$/, '')}${path}`);
    } catch {
      return Promise.reject(new CallFailure('PROVIDER_UNREACHABLE', `the registered endpoint ${JSON.stringify(endpoint)} is not a URL`));
    }
    const body = Buffer.from(JSON.stringify(payload), 'utf8');
    // Base64url grows the answer by 4/3; the JSON around it is small.
    const maxResponseBytes = this.#maxResponseBytes(answers);
    if (url.protocol === 'grpc:' || url.protocol === 'grpcs:') return this.#callGrpc(url, path === '/v1/provisions' ? 'provide' : 'provideBatch', body, maxResponseBytes, agencyId);
    if (!SignedPoster.speaks(url.protocol)) {
      return Promise.reject(new CallFailure('PROVIDER_UNREACHABLE', `the hub calls intermediate servers over http(s) or grpc(s); the registered endpoint uses ${url.protocol}`));
    }
    return this.#poster.post(url, body, { timeoutMs: this.#timeoutMs, maxResponseBytes, overflow: 'fail', agencyId }).then((result) => {
      if (result.kind === 'failed') {
        throw new CallFailure(result.reason === 'timeout' ? 'PROVIDER_TIMEOUT' : result.reason === 'too-large' ? 'ANSWER_TOO_LARGE' : 'PROVIDER_UNREACHABLE', result.detail, result.reason === 'unreachable' ? refusalOfDetail(result.detail) : undefined);
      }
      if (result.status !== 200) throw new CallFailure('PROVIDER_PROTOCOL_ERROR', `the provider answered HTTP ${result.status}`, undefined, result.status >= 400 && result.status < 500);
      try {
        return JSON.parse(result.body.toString('utf8')) as unknown;
      } catch {
        throw new CallFailure('PROVIDER_PROTOCOL_ERROR', 'the provider\'s answer is not JSON');
      }
    });
  }

  #maxResponseBytes(answers: number): number {
    return Math.ceil((this.#maxAnswerBytes * 4) / 3 + 1024) * answers;
  }

  /**
   * The same signed JSON document over gRPC: `body` and `hubSignature` instead of a body and a header. With
   * HUB_TLS=on a grpcs server's certificate is checked as over https: in each handshake (checkServerIdentity
   * against the agency's records read before the call), and before each call on an open channel: a channel
   * that accepted a certificate the log no longer records as issued and unrevoked is closed, so the call
   * goes over a new connection whose handshake refuses it.
   */
  async #callGrpc(url: URL, method: 'provide' | 'provideBatch', body: Buffer, maxResponseBytes: number, agencyId: string): Promise<unknown> {
    const pinned = url.protocol === 'grpcs:' && this.#tls.ca !== undefined;
    let records: ReadonlyMap<string, CertificateRecord> | undefined;
    const certificates = pinned ? this.#tls.certificates : undefined;
    if (certificates !== undefined) {
      try {
        records = await certificates.records(agencyId);
      } catch (error) {
        throw new CallFailure('PROVIDER_UNREACHABLE', `the certificates of agency ${agencyId} could not be read: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    let channel: GrpcChannel;
    try {
      channel = this.#grpcChannel(url, agencyId, pinned);
      if (records !== undefined) {
        if ([...channel.accepted].some((fingerprint) => records!.get(fingerprint)?.status !== 'issued')) {
          this.#drop(url, agencyId, channel);
          channel = this.#grpcChannel(url, agencyId, pinned);
        }
        channel.records = records;
      }
    } catch (error) {
      throw new CallFailure('PROVIDER_UNREACHABLE', error instanceof Error ? error.message : String(error));
    }
    const call = (channel.client as unknown as Record<'provide' | 'provideBatch', UnaryMethod>)[method].bind(channel.client);
    return new Promise<unknown>((resolve, fail) => {
      const { signature, keyId } = this.signer.sign(body);
      call({ body, hubSignature: signature, hubSignatureKey: keyId }, new Metadata(), { deadline: Date.now() + this.#timeoutMs }, (error, reply) => {
        if (error) {
          const refusal = error.code === GrpcStatus.UNAVAILABLE ? channel.refusal : undefined;
          if (refusal === undefined) return fail(this.#grpcFailure(error));
          // A refused handshake: the next call opens a new channel (no reconnection backoff), checked again.
          this.#drop(url, agencyId, channel);
          return fail(new CallFailure('PROVIDER_UNREACHABLE', refusal.message, refusal.kind));
        }
        const bytes = reply?.body ?? Buffer.alloc(0);
        if (bytes.length > maxResponseBytes) return fail(new CallFailure('ANSWER_TOO_LARGE', `the provider sent more than ${maxResponseBytes} bytes`));
        try {
          resolve(JSON.parse(bytes.toString('utf8')));
        } catch {
          fail(new CallFailure('PROVIDER_PROTOCOL_ERROR', 'the provider\'s answer is not JSON'));
        }
      });
    });
  }

  #grpcFailure(error: ServiceError): CallFailure {
    const problem = error.metadata?.get('problem-code')[0];
    const name = GrpcStatus[error.code] ?? String(error.code);
    switch (error.code) {
      case GrpcStatus.DEADLINE_EXCEEDED:
        return new CallFailure('PROVIDER_TIMEOUT', `no answer within ${this.#timeoutMs} ms`);
      case GrpcStatus.UNAVAILABLE:
        return new CallFailure('PROVIDER_UNREACHABLE', `gRPC ${name}: ${error.details}`);
      case GrpcStatus.RESOURCE_EXHAUSTED:
        return new CallFailure('ANSWER_TOO_LARGE', `gRPC ${name}: ${error.details}`);
      default:
        return new CallFailure('PROVIDER_PROTOCOL_ERROR', `the provider answered gRPC ${name}${problem === undefined ? '' : ` (${String(problem)})`}`, undefined, error.code === GrpcStatus.INVALID_ARGUMENT || error.code === GrpcStatus.UNAUTHENTICATED || error.code === GrpcStatus.UNIMPLEMENTED);
    }
  }

  /**
   * One channel per provider endpoint and agency, kept for the hub's lifetime unless a certificate it
   * accepted is revoked or a handshake is refused. Its connections are its own (a local subchannel pool),
   * so closing it closes them.
   */
  #grpcChannel(url: URL, agencyId: string, pinned: boolean): GrpcChannel {
    const key = `${agencyId} ${url.protocol}//${url.host}`;
    let channel = this.#grpc.get(key);
    if (channel === undefined) {
      this.#grpcService ??= serviceClient(loadSync([INTERMEDIATE_SERVER_PROTO], { ...SERVER_LOADER_OPTIONS, includeDirs: [defaultProtoDir()] }), INTERMEDIATE_SERVER_SERVICE);
      const ca = this.#tls.ca;
      const state: { records: GrpcChannel['records']; accepted: Set<string>; refusal: GrpcChannel['refusal'] } = { records: undefined, accepted: new Set(), refusal: undefined };
      // With HUB_TLS=on a grpcs endpoint is trusted through the hub's CAs (the trust bundle), sees the hub's certificate as its
      // client's, and must present the certificate issued to the registered agency, recorded and unrevoked.
      const verify = {
        checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined => {
          const named = checkServerIdentity(host, cert);
          if (named !== undefined) return named;
          const refusal = certificateRefusal(cert.raw, agencyId, state.records);
          state.refusal = refusal;
          if (refusal !== undefined) {
            this.#logger.warn(`refused to call the intermediate server of agency ${agencyId}: ${refusal.message}`);
            return new Error(refusal.message);
          }
          state.accepted.add(certificateFingerprintOf(cert));
          return undefined;
        },
      };
      const credentials =
        url.protocol !== 'grpcs:'
          ? ChannelCredentials.createInsecure()
          : ca === undefined
            ? ChannelCredentials.createSsl()
            : ChannelCredentials.createSsl(Buffer.from(ca.trustBundlePem), Buffer.from(ca.hub.privateKeyPem), Buffer.from(ca.hub.certificatePem), pinned ? verify : {});
      // What one batch may bring back; each call is checked against its own bound as it arrives.
      const client = new this.#grpcService(url.host, credentials, { 'grpc.max_receive_message_length': Math.min(2 ** 31 - 1, this.#maxResponseBytes(MAX_BATCH)), 'grpc.use_local_subchannel_pool': 1 });
      channel = Object.assign(state, { client });
      this.#grpc.set(key, channel);
    }
    return channel;
  }

  #drop(url: URL, agencyId: string, channel: GrpcChannel): void {
    const key = `${agencyId} ${url.protocol}//${url.host}`;
    if (this.#grpc.get(key) === channel) this.#grpc.delete(key);
    channel.client.close();
  }

  close(): void {
    this.#poster.close();
    for (const channel of this.#grpc.values()) channel.client.close();
    this.#grpc.clear();
  }
}

function failed(error: unknown): ProviderReply {
  if (error instanceof CallFailure) return { kind: 'failed', reason: error.reason, detail: error.message, ...(error.refusal === undefined ? {} : { cause: PROVIDER_CERTIFICATE_CAUSES[error.refusal] }) };
  return { kind: 'failed', reason: 'PROVIDER_UNREACHABLE', detail: error instanceof Error ? error.message : String(error) };
}

function certificateFingerprintOf(cert: PeerCertificate): string {
  return cert.raw === undefined ? '' : certificateFingerprint(cert.raw);
}
