import { AsyncLocalStorage } from 'node:async_hooks';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import { ServerCredentials, ServerInterceptingCall, experimental, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import { agencyIdOfCertificate, certificateFingerprint } from './hub-ca.js';

/** A client certificate a peer presented, as the hub recognises it. */
export interface PresentedCertificate {
  /** Lowercase hex SHA-256 of its DER bytes: what registration recorded. */
  readonly fingerprint: string;
  /** The agency its SAN URI names (`urn:linkage-ledger:agency:<id>`), if any. */
  readonly agencyId: string | undefined;
}

/**
 * What a caller's transport proves: `plain` (no TLS: the hub runs with HUB_TLS=off, or a test injects),
 * `none` (TLS without a client certificate), `verified` (a certificate chaining to the hub's CA, within
 * its validity), or `rejected` (a certificate the handshake could not verify, and why).
 */
export type PeerTls =
  | { readonly kind: 'plain' }
  | { readonly kind: 'none' }
  | { readonly kind: 'verified'; readonly certificate: PresentedCertificate }
  | { readonly kind: 'rejected'; readonly reason: 'expired' | 'untrusted'; readonly detail: string; readonly certificate?: PresentedCertificate };

const PLAIN: PeerTls = { kind: 'plain' };
const NONE: PeerTls = { kind: 'none' };

function presented(raw: Buffer): PresentedCertificate {
  return { fingerprint: certificateFingerprint(raw), agencyId: agencyIdOfCertificate(raw) };
}

/** Verification errors (OpenSSL's names, as Node reports them) that mean "outside its validity", not "untrusted". */
const VALIDITY_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** One classification per connection: a keep-alive connection's requests share its handshake. */
const bySocket = new WeakMap<TLSSocket, PeerTls>();

/** What a TLS socket's handshake proved about its client (the server asks for a certificate and rejects none itself). */
export function peerOfSocket(socket: unknown): PeerTls {
  if (!(socket instanceof TLSSocket)) return PLAIN;
  const known = bySocket.get(socket);
  if (known !== undefined) return known;
  const certificate: PeerCertificate | undefined = socket.getPeerCertificate();
  let peer: PeerTls;
  if (certificate === undefined || certificate.raw === undefined) peer = NONE;
  else if (socket.authorized) peer = { kind: 'verified', certificate: presented(certificate.raw) };
  else {
    const code = String(socket.authorizationError ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    peer = { kind: 'rejected', reason: VALIDITY_ERRORS.has(code) ? 'expired' : 'untrusted', detail: code, certificate: presented(certificate.raw) };
  }
  bySocket.set(socket, peer);
  return peer;
}

/**
 * The TLS peer of the gRPC call being served. grpc-js hands a handler no socket, so the credentials'
 * interceptor (grpcServerCredentials) runs the call's handler inside this store.
 */
export const grpcPeer = new AsyncLocalStorage<PeerTls>();

/** The peer of a gRPC call: the authorised certificate grpc-js reports, else what the call's TLS socket says. */
function peerOfGrpcCall(call: ServerInterceptingCallInterface): PeerTls {
  const auth = call.getAuthContext();
  if (auth.sslPeerCertificate?.raw !== undefined) return { kind: 'verified', certificate: presented(auth.sslPeerCertificate.raw) };
  // grpc-js reports only certificates its handshake authorised; to say why another was not, read the
  // socket of the call's HTTP/2 session (the first interceptor gets grpc-js's own call, which holds it).
  const socket = (call as unknown as { stream?: { session?: { socket?: unknown } } }).stream?.session?.socket;
  if (socket instanceof TLSSocket) return peerOfSocket(socket);
  return auth.transportSecurityType === 'ssl' ? NONE : PLAIN;
}

/** Runs each call's handler (started on half-close for unary calls) with its TLS peer in grpcPeer. */
export const peerCertificateInterceptor: ServerInterceptor = (_method, call) => {
  const peer = peerOfGrpcCall(call);
  return new ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveHalfClose: (proceed) => grpcPeer.run(peer, proceed),
        onReceiveMessage: (message, proceed) => grpcPeer.run(peer, () => proceed(message)),
      }),
  });
};

/** TLS that asks every client for a certificate and refuses none at the handshake: the hub refuses, precisely, and records it (I6). */
class RequestingClientCertificates extends ServerCredentials {
  /** The hub's certificate these credentials serve now (which hub's credentials a reload is for). */
  certificatePem: string;

  constructor(ca: string, cert: string, key: string) {
    super({ requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, { ca, cert, key });
    this.certificatePem = cert;
    live.add(new WeakRef(this));
  }

  reload(material: ServerTlsMaterial): void {
    this.certificatePem = material.certificatePem;
    this.updateSecureContextOptions({ ca: material.caCertificatePem, cert: material.certificatePem, key: material.privateKeyPem });
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

/** What a TLS server of the hub serves: the CAs it trusts for client certificates, its certificate and key. */
export interface ServerTlsMaterial {
  readonly caCertificatePem: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

/** The gRPC edges' credentials made in this process (several hubs run in one test process). */
const live = new Set<WeakRef<RequestingClientCertificates>>();

/**
 * Gives the gRPC edge that serves `previousCertificatePem` new material without a restart (a CA
 * rotation): grpc-js sets it as the server's secure context, so new connections see it.
 */
export function reloadGrpcServerCredentials(previousCertificatePem: string, material: ServerTlsMaterial): void {
  for (const ref of live) {
    const credentials = ref.deref();
    if (credentials === undefined) live.delete(ref);
    else if (credentials.certificatePem === previousCertificatePem) credentials.reload(material);
  }
}

/**
 * The gRPC edge's credentials: with TLS, the hub's certificate, the client's certificate requested
 * (checked against the hub's CA, never required by the handshake: a citizen or the operator presents
 * none), and the interceptor that hands each call its peer; without, plaintext HTTP/2.
 */
export function grpcServerCredentials(tls: ServerTlsMaterial | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  return experimental.createServerCredentialsWithInterceptors(new RequestingClientCertificates(tls.caCertificatePem, tls.certificatePem, tls.privateKeyPem), [peerCertificateInterceptor]);
}
