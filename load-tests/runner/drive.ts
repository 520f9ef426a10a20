import autocannon from 'autocannon';
import { connect } from 'node:tls';
import type { AgencyTlsMaterial, LinkageFixture } from './setup.js';

export interface PhaseOptions {
  readonly name: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** Requests per second over all connections; absent: as fast as the hub answers. */
  readonly overallRate?: number;
  /** Autocannon's per-request timeout, seconds. */
  readonly timeoutSeconds: number;
}

export interface PhaseResult {
  readonly name: string;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly rateTarget?: number;
  readonly requests: number;
  readonly perSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p99_9: number; readonly max: number; readonly mean: number };
  /** Every request that did not end in HTTP 200 with outcome "answered": other statuses, socket errors, timeouts. */
  readonly errors: number;
  readonly statuses: Readonly<Record<string, number>>;
  /** The problem `code` of answers other than 200 (e.g. PROVIDER_TIMEOUT), counted. */
  readonly errorCodes?: Readonly<Record<string, number>>;
  readonly notAnswered: number;
  readonly socketErrors: number;
  readonly timeouts: number;
  /**
   * Every request of the phase when it had a lead-in whose figures are left out (a paced phase): what the
   * processes' CPU in the phase is divided by. Absent: `requests`.
   */
  readonly allRequests?: number;
}

/** One request body per code: the hub's POST /v1/queries, rotated so the load touches every person. */
export function queryBodies(fixture: LinkageFixture): string[] {
  return fixture.codes.map((code) =>
    JSON.stringify({
      providerAgencyId: fixture.providerAgencyId,
      procedureCode: fixture.procedureCode,
      itemCodes: fixture.itemCodes,
      code,
      ...(fixture.answerPublicKey === undefined ? {} : { answerPublicKey: fixture.answerPublicKey }),
    }),
  );
}

const ANSWERED = '"outcome":"answered"';

/** Drives POST /v1/queries with autocannon for one phase and summarises it. */
export async function runPhase(fixture: LinkageFixture, bodies: readonly string[], options: PhaseOptions): Promise<PhaseResult> {
  let next = 0;
  let notAnswered = 0;
  const statuses: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  const tls = tlsOptionsOf(fixture);
  const result = await autocannon({
    url: `${fixture.hubUrl}/v1/queries`,
    ...(tls === undefined ? {} : { tlsOptions: tls }),
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${fixture.requesterToken}` },
    connections: options.connections,
    duration: options.durationSeconds,
    timeout: options.timeoutSeconds,
    ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => {
          request.body = bodies[next++ % bodies.length]!;
          return request;
        },
        onResponse: (status, body) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status === 200 && !body.includes(ANSWERED)) notAnswered++;
          if (status !== 200) {
            const code = /"code":"([A-Z_]+)"/.exec(body)?.[1] ?? `HTTP ${status}`;
            errorCodes[code] = (errorCodes[code] ?? 0) + 1;
          }
        },
      },
    ],
  });
  const non200 = Object.entries(statuses).reduce((n, [status, count]) => (status === '200' ? n : n + count), 0);
  return {
    name: options.name,
    connections: options.connections,
    durationSeconds: options.durationSeconds,
    ...(options.overallRate === undefined ? {} : { rateTarget: options.overallRate }),
    requests: result.requests.total,
    perSecond: result.requests.total / options.durationSeconds,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, p99_9: result.latency.p99_9, max: result.latency.max, mean: result.latency.mean },
    // Autocannon counts a timeout among its errors too.
    errors: non200 + notAnswered + result.errors,
    statuses,
    errorCodes,
    notAnswered,
    socketErrors: result.errors - result.timeouts,
    timeouts: result.timeouts,
  };
}

/**
 * What autocannon hands to tls.connect for an https:// target: the requester's client certificate and key
 * (mutual TLS) and the hub's CA. Autocannon connects with rejectUnauthorized: false whatever it is given, so
 * the server's certificate is checked once before each phase by verifyServerCertificate instead.
 */
export function tlsOptionsOf(fixture: LinkageFixture): { ca: string; cert: string; key: string } | undefined {
  if (!fixture.hubUrl.startsWith('https:')) return undefined;
  if (fixture.tls === undefined) throw new Error(`${fixture.hubUrl} is https but the fixture holds no client certificate (tls)`);
  return { ca: fixture.tls.caCertificatePem, cert: fixture.tls.certificatePem, key: fixture.tls.privateKeyPem };
}

/** What the TLS handshake with the hub showed, checked as a client that trusts only the hub's CA. */
export interface VerifiedServer {
  readonly protocol: string;
  readonly cipher: string;
  /** SHA-256 fingerprint of the server's certificate (colon-separated hex, as node:tls gives it). */
  readonly fingerprint256: string;
  readonly subjectAltName: string;
  readonly issuer: string;
}

/**
 * Connects to `url`'s host and port as the load generator does (the same client certificate), but with the
 * server's certificate verified against `tls.caCertificatePem` alone and the host checked against its SAN.
 * Rejects when the server speaks no TLS, or its certificate does not chain to that CA or name the host.
 */
export async function verifyServerCertificate(url: string, tls: AgencyTlsMaterial, timeoutMs = 10_000): Promise<VerifiedServer> {
  const target = new URL(url);
  if (target.protocol !== 'https:') throw new Error(`${url} is not an https:// URL`);
  return new Promise<VerifiedServer>((resolve, reject) => {
    const socket = connect({ host: target.hostname, port: Number(target.port || 443), ca: tls.caCertificatePem, cert: tls.certificatePem, key: tls.privateKeyPem, rejectUnauthorized: true, timeout: timeoutMs }, () => {
      const peer = socket.getPeerCertificate();
      const verified: VerifiedServer = {
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: socket.getCipher().name,
        fingerprint256: peer.fingerprint256,
        subjectAltName: peer.subjectaltname ?? '',
        issuer: Object.entries(peer.issuer ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(', '),
      };
      socket.end();
      resolve(verified);
    });
    socket.once('timeout', () => socket.destroy(new Error(`no TLS handshake with ${url} within ${timeoutMs} ms`)));
    socket.once('error', reject);
  });
}
