import autocannon from 'autocannon';
import type { LinkageFixture } from './setup.js';

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
  readonly notAnswered: number;
  readonly socketErrors: number;
  readonly timeouts: number;
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
  const result = await autocannon({
    url: `${fixture.hubUrl}/v1/queries`,
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
    notAnswered,
    socketErrors: result.errors - result.timeouts,
    timeouts: result.timeouts,
  };
}
