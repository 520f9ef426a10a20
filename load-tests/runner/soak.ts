/**
 * The soak (issue bar: after warm-up the hub's resident memory stays flat, within 20 %, under a mixed load
 * of about 200 requests/s for 5 minutes). The built hub and Muroran City's intermediate server, driven at
 * fixed rates at the same time by:
 *   queries   the pension service asks Muroran City for local tax information (POST /v1/queries)
 *   notices   Muroran City sends a person a notice through its intermediate server (POST /v1/notices there)
 *   records   Muroran City reads its own provision records, a page at a time (GET /v1/agencies/me/provision-records)
 * The hub's RSS is sampled every few seconds. V8's heap and SQLite's page caches make it a saw-tooth (it
 * climbs until a major collection, then drops), so the bar is on the trend: the mean of the last minute
 * against the mean of the first minute after the warm-up, within 20 %; the peak is reported beside it.
 * A chart of the samples is written as an SVG (default .bench/soak-rss.svg).
 * Loopback only; it stops by itself. Last line: one JSON object with the figures.
 *   npm run build && npm run load:soak -- [--minutes 5] [--warmup 60] [--rate 200] [--people 2000] [--chart file.svg]
 */
import autocannon from 'autocannon';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { queryBodies, runPhase, type PhaseResult } from './drive.js';
import { rssMiB, settledReadiness, startLinkageNetwork } from './network.js';
import { REPO_ROOT } from './processes.js';
import { localIdOf } from './setup.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '60' },
    rate: { type: 'string', default: '200' },
    people: { type: 'string', default: '2000' },
    'sample-every': { type: 'string', default: '5' },
    chart: { type: 'string', default: '.bench/soak-rss.svg' },
  },
});

function positive(name: keyof typeof values, max: number): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(values[name])}`);
  return n;
}

const MINUTES = positive('minutes', 600);
const WARMUP = positive('warmup', 3600);
const RATE = positive('rate', 20_000);
const PEOPLE = positive('people', 100_000);
const SAMPLE_EVERY = positive('sample-every', 600);
const CHART = resolve(REPO_ROOT, values.chart!);
const DURATION = MINUTES * 60;
if (WARMUP >= DURATION) throw new Error(`--warmup (${WARMUP} s) must be shorter than the soak (${DURATION} s)`);
/** The bar: the last minute's mean RSS within this factor of the first minute's after the warm-up. */
const FLAT_BAR = 1.2;
const WINDOW_S = 60;
/** The mix, as shares of --rate. */
const SHARES = { queries: 0.8, notices: 0.1, records: 0.1 } as const;

const log = (line: string): void => void process.stderr.write(`${line}\n`);

interface Sample {
  readonly t: number;
  readonly rssMiB: number;
}

/** A fixed-rate autocannon run of one request shape. */
async function drive(name: string, url: string, rate: number, request: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: (i: number) => string }): Promise<PhaseResult> {
  let next = 0;
  const statuses: Record<string, number> = {};
  const result = await autocannon({
    url,
    method: request.method,
    headers: request.headers,
    connections: Math.max(2, Math.ceil(rate / 8)),
    duration: DURATION,
    overallRate: rate,
    timeout: 10,
    requests: [
      {
        method: request.method,
        setupRequest: (r) => {
          if (request.body !== undefined) r.body = request.body(next++);
          return r;
        },
        onResponse: (status) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
        },
      },
    ],
  });
  const ok = request.method === 'POST' ? ['200', '201'] : ['200'];
  const failed = Object.entries(statuses).reduce((n, [s, c]) => (ok.includes(s) ? n : n + c), 0);
  return {
    name,
    connections: result.connections,
    durationSeconds: DURATION,
    rateTarget: rate,
    requests: result.requests.total,
    perSecond: result.requests.total / DURATION,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, p99_9: result.latency.p99_9, max: result.latency.max, mean: result.latency.mean },
    errors: failed + result.errors,
    statuses,
    notAnswered: 0,
    socketErrors: result.errors - result.timeouts,
    timeouts: result.timeouts,
  };
}

/** A line chart of the samples, the warm-up shaded and the bar's band drawn. */
function chart(samples: readonly Sample[], warmup: number, baseline: number): string {
  const w = 720;
  const h = 320;
  const pad = { left: 56, right: 16, top: 28, bottom: 40 };
  const maxT = Math.max(...samples.map((s) => s.t), 1);
  const maxY = Math.max(...samples.map((s) => s.rssMiB), baseline * FLAT_BAR) * 1.1;
  const x = (t: number): number => pad.left + (t / maxT) * (w - pad.left - pad.right);
  const y = (v: number): number => h - pad.bottom - (v / maxY) * (h - pad.top - pad.bottom);
  const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.rssMiB).toFixed(1)}`).join(' ');
  const ticks = Array.from({ length: 5 }, (_, i) => (maxY / 4) * i);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="#fff"/>`,
    `<text x="${pad.left}" y="18" font-size="14">Hub RSS (MiB) during the soak: ${RATE} requests/s for ${MINUTES} min</text>`,
    `<rect x="${x(0)}" y="${pad.top}" width="${(x(warmup) - x(0)).toFixed(1)}" height="${h - pad.top - pad.bottom}" fill="#eee"/>`,
    `<text x="${x(0) + 4}" y="${pad.top + 14}" fill="#666">warm-up</text>`,
    `<rect x="${x(warmup).toFixed(1)}" y="${y(baseline * FLAT_BAR).toFixed(1)}" width="${(x(maxT) - x(warmup)).toFixed(1)}" height="${(y(baseline) - y(baseline * FLAT_BAR)).toFixed(1)}" fill="#d8f0d8"/>`,
    ...ticks.map((v) => `<line x1="${pad.left}" x2="${w - pad.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/><text x="${pad.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(0)}</text>`),
    ...Array.from({ length: Math.floor(maxT / 60) + 1 }, (_, i) => i * 60).map((t) => `<text x="${x(t).toFixed(1)}" y="${h - pad.bottom + 16}" text-anchor="middle">${t}</text>`),
    `<polyline points="${points}" fill="none" stroke="#0031d8" stroke-width="2"/>`,
    `<text x="${(w / 2).toFixed(0)}" y="${h - 10}" text-anchor="middle">seconds (green band: mean of the first minute after warm-up … +${Math.round((FLAT_BAR - 1) * 100)} %)</text>`,
    '</svg>',
  ].join('\n');
}

async function main(): Promise<boolean> {
  const network = await startLinkageNetwork({ people: PEOPLE, redisUrl: 'redis://127.0.0.1:6379', log });
  try {
    const pid = network.hub.child.pid;
    const samples: Sample[] = [];
    const started = Date.now();
    const sample = (): void => {
      const rss = rssMiB(pid);
      if (rss !== undefined) samples.push({ t: (Date.now() - started) / 1000, rssMiB: rss });
    };
    sample();
    const sampler = setInterval(() => {
      sample();
      const last = samples.at(-1);
      if (last !== undefined) log(`  ${last.t.toFixed(0).padStart(4)} s  hub RSS ${last.rssMiB.toFixed(1)} MiB`);
    }, SAMPLE_EVERY * 1000);
    log(`soak: ${RATE} requests/s for ${MINUTES} min (warm-up ${WARMUP} s): ${JSON.stringify(SHARES)}`);
    const bodies = queryBodies(network.fixture);
    const muroran = { authorization: `Bearer ${network.registered.muroranToken}` };
    const phases = await Promise.all([
      runPhase(network.fixture, bodies, { name: 'queries', connections: Math.max(2, Math.ceil((RATE * SHARES.queries) / 8)), durationSeconds: DURATION, overallRate: Math.round(RATE * SHARES.queries), timeoutSeconds: 10 }),
      drive('notices', `${network.nodeUrl}/v1/notices`, Math.max(1, Math.round(RATE * SHARES.notices)), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: (i) => JSON.stringify({ localId: localIdOf(i % PEOPLE), title: '住民税 課税証明書のご案内', body: `通知 ${i}: 課税証明書はマイナポータルから取得できます。` }),
      }),
      drive('records', `${network.hubUrl}/v1/agencies/me/provision-records?limit=20`, Math.max(1, Math.round(RATE * SHARES.records)), { method: 'GET', headers: muroran }),
    ]);
    clearInterval(sampler);
    sample();
    const ready = await settledReadiness(network.hubUrl, 30_000);

    const after = samples.filter((s) => s.t >= WARMUP);
    const mean = (xs: readonly Sample[]): number => xs.reduce((n, x) => n + x.rssMiB, 0) / Math.max(1, xs.length);
    const end = samples.at(-1)?.t ?? 0;
    const firstWindow = after.filter((s) => s.t < WARMUP + WINDOW_S);
    const lastWindow = after.filter((s) => s.t > end - WINDOW_S);
    const baseline = mean(firstWindow);
    const last = mean(lastWindow);
    const peak = Math.max(...after.map((s) => s.rssMiB));
    const growth = last / baseline;
    const errors = phases.reduce((n, p) => n + p.errors, 0);
    const requests = phases.reduce((n, p) => n + p.requests, 0);
    mkdirSync(dirname(CHART), { recursive: true });
    writeFileSync(CHART, chart(samples, WARMUP, baseline));
    const tick = (ok: boolean): string => (ok ? '✓' : '✗');
    const bars = { rss_flat: growth <= FLAT_BAR, no_errors: errors === 0, no_open_serials: ready.body['openSerials'] === 0 };
    for (const p of phases) {
      log(`  ${p.name.padEnd(8)} ${p.requests} requests, ${p.perSecond.toFixed(1)}/s, p50 ${p.latencyMs.p50} ms, p99 ${p.latencyMs.p99} ms, errors ${p.errors}${p.errors > 0 ? ` ${JSON.stringify(p.statuses)}` : ''}`);
    }
    process.stdout.write(
      [
        `${tick(bars.rss_flat)} hub RSS, mean of the last minute ${last.toFixed(1)} MiB = ${growth.toFixed(3)} × the first minute after warm-up ${baseline.toFixed(1)} MiB (bar ≤ ${FLAT_BAR}×); peak ${peak.toFixed(1)} MiB = ${(peak / baseline).toFixed(3)} ×; at start ${samples[0]?.rssMiB.toFixed(1)} MiB`,
        `${tick(bars.no_errors)} ${requests} requests, errors ${errors}`,
        `${tick(bars.no_open_serials)} open serials after the soak: ${String(ready.body['openSerials'])}; log head ${String(ready.body['head'])} events`,
        `chart: ${CHART}`,
        `load average (1 min) ${loadavg()[0]!.toFixed(2)}`,
      ].join('\n') + '\n',
    );
    process.stdout.write(
      `${JSON.stringify({
        bench: 'soak',
        minutes: MINUTES,
        rate: RATE,
        requests,
        events: ready.body['head'],
        rss_mib_start: Number(samples[0]?.rssMiB.toFixed(1)),
        rss_mib_first_minute: Number(baseline.toFixed(1)),
        rss_mib_last_minute: Number(last.toFixed(1)),
        rss_mib_peak_after_warmup: Number(peak.toFixed(1)),
        rss_growth: Number(growth.toFixed(3)),
        rss_peak_ratio: Number((peak / baseline).toFixed(3)),
        p99_ms: Object.fromEntries(phases.map((p) => [p.name, p.latencyMs.p99])),
        errors,
        bars,
      })}\n`,
    );
    return Object.values(bars).every(Boolean);
  } finally {
    await network.close();
  }
}

let passed = false;
try {
  passed = await main();
} catch (error) {
  log(`soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}
process.exit(passed ? 0 : 1);
