import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { tlsOptionsOf, type PhaseResult } from './drive.js';
import type { LinkageFixture } from './setup.js';

/**
 * A fixed-rate phase at a constant arrival rate, as k6's `constant-arrival-rate` executor runs it
 * (load-tests/k6/linkage.ts): request i is due at start + i / rate, whatever became of the ones before it
 * (an open model). Latency runs from the request's due time, not from when a connection was free to send
 * it, so a hub that falls behind sees its backlog in the percentiles (no coordinated omission).
 *
 * Autocannon's `overallRate` is not this: each connection may send its share of the second as soon as the
 * second begins, so the whole second's requests arrive in a burst and queue behind each other, and its
 * histogram adds, for each answer of L ms, about L more samples (it corrects for coordinated omission with
 * an interval of 1 ms). Its percentiles at a fixed rate measure the burst, not the service.
 */
export interface PacedPhaseOptions {
  readonly name: string;
  /** At most this many keep-alive connections; a connection is opened when every open one is busy. */
  readonly connections: number;
  readonly durationSeconds: number;
  /** Requests per second, evenly spaced. */
  readonly rate: number;
  /** Per request, seconds (headers and body). */
  readonly timeoutSeconds: number;
  /**
   * Seconds at the same rate, on the same connections, before the measured `durationSeconds`: the pool opens
   * its connections (under TLS, their handshakes) there. Errors in it still count; its latencies do not.
   */
  readonly leadInSeconds?: number;
}

export interface PacedPhaseResult extends PhaseResult {
  /** How late the generator itself sent its requests (ms after their due time): near 0 unless it was starved of CPU. */
  readonly sendLagMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Connections the pool opened in the phase, lead-in included (each a full TLS handshake under TLS). */
  readonly connectionsOpened: number;
  /** The lead-in's requests and latency (not in `latencyMs`). */
  readonly leadIn?: { readonly seconds: number; readonly requests: number; readonly p99: number; readonly max: number };
}

const ANSWERED = '"outcome":"answered"';

/** The value at quantile q (0–1) of ascending `sorted`, nearest rank. */
export function quantile(sorted: Float64Array | readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** The due time (ms after the start) of request i at `rate` per second. */
export function dueAt(i: number, rate: number): number {
  return (i * 1000) / rate;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

export async function runPacedPhase(fixture: LinkageFixture, bodies: readonly string[], options: PacedPhaseOptions): Promise<PacedPhaseResult> {
  if (!(options.rate > 0)) throw new Error(`a paced phase needs a rate above 0, got ${options.rate}`);
  const url = new URL(`${fixture.hubUrl}/v1/queries`);
  const tls = tlsOptionsOf(fixture);
  let connectionsOpened = 0;
  const pool = new Pool(url.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: options.timeoutSeconds * 1000,
    bodyTimeout: options.timeoutSeconds * 1000,
    // Under TLS the hub's certificate is verified against its CA alone, and the client certificate is the
    // requester's; no session is resumed, so every connection pays a full handshake (the worst case).
    ...(tls === undefined ? {} : { connect: { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: true, maxCachedSessions: 0 } }),
  });
  pool.on('connect', () => {
    connectionsOpened++;
  });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${fixture.requesterToken}` };
  const leadIn = Math.max(0, Math.round(options.rate * (options.leadInSeconds ?? 0)));
  const total = leadIn + Math.max(1, Math.round(options.rate * options.durationSeconds));
  const latencies = new Float64Array(total);
  const lags = new Float64Array(total);
  const statuses: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  let completed = 0;
  let notAnswered = 0;
  let socketErrors = 0;
  let timeouts = 0;
  let lastEnd = 0;
  const inFlight = new Set<Promise<void>>();

  const send = (i: number, due: number, start: number): Promise<void> => {
    const sentAt = performance.now();
    lags[i] = sentAt - start - due;
    return pool
      .request({ path: url.pathname, method: 'POST', headers, body: bodies[i % bodies.length]! })
      .then(async (res) => {
        const text = await res.body.text();
        const status = String(res.statusCode);
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (res.statusCode === 200 && !text.includes(ANSWERED)) notAnswered++;
        if (res.statusCode !== 200) {
          const code = /"code":"([A-Z_]+)"/.exec(text)?.[1] ?? `HTTP ${status}`;
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        }
      })
      .catch((error: unknown) => {
        const code = (error as { code?: string }).code ?? 'ERROR';
        if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') timeouts++;
        else socketErrors++;
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
      })
      .finally(() => {
        const end = performance.now();
        latencies[i] = end - start - due;
        if (i >= leadIn) {
          lastEnd = Math.max(lastEnd, end - start);
          completed++;
        }
      });
  };

  const start = performance.now();
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now() - start;
      while (next < total && dueAt(next, options.rate) <= now) {
        const p = send(next, dueAt(next, options.rate), start);
        inFlight.add(p);
        void p.then(() => inFlight.delete(p));
        next++;
      }
      if (next >= total) {
        resolve();
        return;
      }
      // Sleep until the next request is due (timers fire up to ~1 ms late; the lag is measured).
      setTimeout(tick, Math.max(0, dueAt(next, options.rate) - (performance.now() - start) - 0.5));
    };
    tick();
  });
  await Promise.all(inFlight);
  await pool.close();

  const sorted = latencies.slice(leadIn).sort();
  const lagSorted = lags.slice(leadIn).sort();
  const leadSorted = latencies.slice(0, leadIn).sort();
  const non200 = Object.entries(statuses).reduce((n, [status, count]) => (status === '200' ? n : n + count), 0);
  const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length);
  // The rate achieved: requests over the time from the first due time to the last answer (a hub that
  // cannot keep up stretches the phase, and its rate drops below the target).
  const spanSeconds = Math.max(options.durationSeconds, (lastEnd - dueAt(leadIn, options.rate)) / 1000);
  return {
    name: options.name,
    connections: options.connections,
    durationSeconds: options.durationSeconds,
    rateTarget: options.rate,
    requests: completed,
    perSecond: completed / spanSeconds,
    latencyMs: {
      p50: round2(quantile(sorted, 0.5)),
      p90: round2(quantile(sorted, 0.9)),
      p99: round2(quantile(sorted, 0.99)),
      p99_9: round2(quantile(sorted, 0.999)),
      max: round2(sorted[sorted.length - 1] ?? 0),
      mean: round2(mean),
    },
    errors: non200 + notAnswered + socketErrors + timeouts,
    statuses,
    errorCodes,
    notAnswered,
    socketErrors,
    timeouts,
    sendLagMs: { p50: round2(quantile(lagSorted, 0.5)), p99: round2(quantile(lagSorted, 0.99)), max: round2(lagSorted[lagSorted.length - 1] ?? 0) },
    connectionsOpened,
    allRequests: completed + leadIn,
    ...(leadIn === 0 ? {} : { leadIn: { seconds: options.leadInSeconds!, requests: leadIn, p99: round2(quantile(leadSorted, 0.99)), max: round2(leadSorted[leadSorted.length - 1] ?? 0) } }),
  };
}
