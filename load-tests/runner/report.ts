import type { PhaseResult } from './drive.js';

export interface CpuShare {
  readonly hub: number;
  readonly node: number;
  readonly generator: number;
  readonly wallSeconds: number;
}

const COLUMNS = ['phase', 'conns', 'requests', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'cpu hub', 'cpu node', 'cpu gen', 'hub ms/q', 'node ms/q'] as const;

function cells(phase: PhaseResult, cpu: CpuShare): string[] {
  const ms = (v: number): string => v.toFixed(1);
  const core = (v: number): string => `${(v * 100).toFixed(0)}%`;
  return [
    phase.name,
    String(phase.connections),
    String(phase.requests),
    phase.perSecond.toFixed(0),
    ms(phase.latencyMs.p50),
    ms(phase.latencyMs.p90),
    ms(phase.latencyMs.p99),
    ms(phase.latencyMs.p99_9),
    ms(phase.latencyMs.max),
    String(phase.errors),
    core(cpu.hub),
    core(cpu.node),
    core(cpu.generator),
    // CPU time per request: unlike the rate, it hardly depends on what else the machine runs.
    perQuery(cpu.hub, cpu.wallSeconds, phase.allRequests ?? phase.requests),
    perQuery(cpu.node, cpu.wallSeconds, phase.allRequests ?? phase.requests),
  ];
}

function perQuery(share: number, wallSeconds: number, requests: number): string {
  return requests === 0 ? '-' : ((share * wallSeconds * 1000) / requests).toFixed(2);
}

/** A plain-text table; CPU is each process's share of one core during the phase, and its CPU ms per request. */
export function formatTable(rows: readonly { phase: PhaseResult; cpu: CpuShare }[]): string {
  const table = [COLUMNS.slice(), ...rows.map((r) => cells(r.phase, r.cpu))];
  const widths = COLUMNS.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const line = (row: readonly string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const details = rows
    .filter((r) => r.phase.errors > 0)
    .map((r) => `  ${r.phase.name}: statuses ${JSON.stringify(r.phase.statuses)}, 200 but not answered ${r.phase.notAnswered}, socket errors ${r.phase.socketErrors}, timeouts ${r.phase.timeouts}`);
  return [line(table[0]!), line(COLUMNS.map((_, i) => '-'.repeat(widths[i]!))), ...table.slice(1).map(line), ...details].join('\n');
}

/** The last line of the run. */
export function summaryLine(max: PhaseResult, rate: PhaseResult, rateTarget: number, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    bench: 'linkage-http',
    max_per_s: Math.round(max.perSecond),
    p99_ms_at_max: max.latencyMs.p99,
    rate_target: rateTarget,
    rate_achieved: Math.round(rate.perSecond),
    p50_ms_at_rate: rate.latencyMs.p50,
    p99_ms_at_rate: rate.latencyMs.p99,
    errors: max.errors + rate.errors,
    ...extra,
  };
}

/** One phase against one target (the relay baseline, the linkage over HTTP or over TLS) and each process's CPU in it. */
export interface TargetRow {
  readonly target: string;
  readonly phase: PhaseResult;
  /** Each process's CPU during the phase as a share of one core, the load generator's as `generator`. */
  readonly cpu: Readonly<Record<string, number>>;
  readonly wallSeconds: number;
}

/** CPU milliseconds per request of each process in a row (3 decimals): over every request of the phase, a lead-in's included (its CPU is in the row too). */
export function cpuMsPerQuery(row: TargetRow): Record<string, number> {
  const requests = row.phase.allRequests ?? row.phase.requests;
  return Object.fromEntries(Object.entries(row.cpu).map(([name, share]) => [name, requests === 0 ? 0 : Number(((share * row.wallSeconds * 1000) / requests).toFixed(3))]));
}

/** CPU ms per request of all a target's processes together (the load generator's included), averaged over its rows. */
export function totalCpuMsPerQuery(rows: readonly TargetRow[]): number {
  return rows.reduce((sum, row) => sum + Object.values(cpuMsPerQuery(row)).reduce((a, b) => a + b, 0), 0) / rows.length;
}

const TARGET_COLUMNS = ['target', 'phase', 'conns', 'requests', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'cpu (share of a core)', 'CPU ms per query'] as const;

/** A plain-text table of target rows; the last two columns name the processes. */
export function formatTargetTable(rows: readonly TargetRow[]): string {
  const ms = (v: number): string => v.toFixed(1);
  const table = [
    TARGET_COLUMNS.slice(),
    ...rows.map((r) => {
      const perQuery = cpuMsPerQuery(r);
      return [
        r.target,
        r.phase.name,
        String(r.phase.connections),
        String(r.phase.requests),
        r.phase.perSecond.toFixed(0),
        ms(r.phase.latencyMs.p50),
        ms(r.phase.latencyMs.p90),
        ms(r.phase.latencyMs.p99),
        ms(r.phase.latencyMs.p99_9),
        ms(r.phase.latencyMs.max),
        String(r.phase.errors),
        Object.entries(r.cpu).map(([name, share]) => `${name} ${(share * 100).toFixed(0)}%`).join(' '),
        Object.entries(perQuery).map(([name, v]) => `${name} ${v.toFixed(2)}`).join(' '),
      ];
    }),
  ];
  const widths = TARGET_COLUMNS.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const line = (row: readonly string[]): string => row.map((c, i) => (i < 2 || i >= 11 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const details = rows
    .filter((r) => r.phase.errors > 0)
    .map((r) => `  ${r.target} ${r.phase.name}: statuses ${JSON.stringify(r.phase.statuses)}, codes ${JSON.stringify(r.phase.errorCodes ?? {})}, 200 but not answered ${r.phase.notAnswered}, socket errors ${r.phase.socketErrors}, timeouts ${r.phase.timeouts}`);
  return [line(table[0]!), line(TARGET_COLUMNS.map((_, i) => '-'.repeat(widths[i]!))), ...table.slice(1).map(line), ...details].join('\n');
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** a / b rounded to 3 decimals; null when b is 0 (nothing to compare with). */
export function ratio(a: number, b: number): number | null {
  return b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? null : Number((a / b).toFixed(3));
}

/**
 * The figures of one target over its rounds: medians of the max phase's rate and p99 (at the connection count
 * where that median is highest), of the fixed-rate phase's p50, p99 and CPU.
 */
export interface TargetFigures {
  readonly maxPerSecond: number;
  /** The connection count of that max. */
  readonly maxConnections: number;
  readonly p99MsAtMax: number;
  readonly rateAchieved: number;
  readonly p50MsAtRate: number;
  readonly p99MsAtRate: number;
  readonly cpuMsPerQueryAtRate: Record<string, number>;
  readonly errors: number;
}

export function figuresOf(max: readonly TargetRow[], rate: readonly TargetRow[]): TargetFigures {
  const names = [...new Set(rate.flatMap((r) => Object.keys(r.cpu)))];
  const perQuery = rate.map(cpuMsPerQuery);
  const best = maxByConnections(max).reduce<MaxAtConnections | undefined>((a, b) => (a === undefined || b.perSecond > a.perSecond ? b : a), undefined);
  return {
    maxPerSecond: best?.perSecond ?? Number.NaN,
    maxConnections: best?.connections ?? Number.NaN,
    p99MsAtMax: best?.p99Ms ?? Number.NaN,
    rateAchieved: Math.round(median(rate.map((r) => r.phase.perSecond))),
    p50MsAtRate: median(rate.map((r) => r.phase.latencyMs.p50)),
    p99MsAtRate: median(rate.map((r) => r.phase.latencyMs.p99)),
    cpuMsPerQueryAtRate: Object.fromEntries(names.map((n) => [n, Number(median(perQuery.map((p) => p[n] ?? 0)).toFixed(3))])),
    errors: [...max, ...rate].reduce((n, r) => n + r.phase.errors, 0),
  };
}

/** A target's max phases at one connection count: the medians over its rounds. */
export interface MaxAtConnections {
  readonly connections: number;
  readonly perSecond: number;
  readonly p99Ms: number;
}

/**
 * The max phases' medians per connection count, fewest connections first. A closed-loop generator keeps as many
 * requests in flight as it has connections: a target whose latency leaves its processes idle at one count
 * serves more at a higher one, so its max is the best of these.
 */
export function maxByConnections(rows: readonly TargetRow[]): MaxAtConnections[] {
  const counts = [...new Set(rows.map((r) => r.phase.connections))].sort((a, b) => a - b);
  return counts.map((connections) => {
    const at = rows.filter((r) => r.phase.connections === connections);
    return { connections, perSecond: Math.round(median(at.map((r) => r.phase.perSecond))), p99Ms: median(at.map((r) => r.phase.latencyMs.p99)) };
  });
}

/** The linkage's max against the baseline's at each connection count both ran, keyed by the count. */
export function ratioByConnections(linkage: readonly TargetRow[], baseline: readonly TargetRow[]): Record<string, number | null> {
  const base = new Map(maxByConnections(baseline).map((m) => [m.connections, m.perSecond]));
  return Object.fromEntries(maxByConnections(linkage).flatMap((m) => (base.has(m.connections) ? [[String(m.connections), ratio(m.perSecond, base.get(m.connections)!)]] : [])));
}

/** CPU ms per query of the served processes (the load generator left out): what the hub and the node, or the relay and the provider, spent. */
export function servedCpuMs(figures: TargetFigures): number {
  return Object.entries(figures.cpuMsPerQueryAtRate).reduce((sum, [name, ms]) => (name === 'generator' ? sum : sum + ms), 0);
}

/**
 * The bar on TLS: with TLS on, at most 15 % lost against plain HTTP in the same run: the max rate at least
 * 0.85 × plain and p99 at the fixed rate at most 1.15 × plain. The served processes' CPU per query is
 * compared too (reported, not part of the bar: on a shared machine it is the steadier figure).
 */
export function tlsComparison(plain: TargetFigures, tls: TargetFigures): { maxRatio: number | null; p99Ratio: number | null; cpuRatio: number | null; met: boolean } {
  const maxRatio = ratio(tls.maxPerSecond, plain.maxPerSecond);
  const p99Ratio = ratio(tls.p99MsAtRate, plain.p99MsAtRate);
  const cpuRatio = ratio(servedCpuMs(tls), servedCpuMs(plain));
  // A phase with errors (timeouts, refusals) measures the failure, not TLS: such a comparison meets nothing.
  const met = plain.errors === 0 && tls.errors === 0 && maxRatio !== null && maxRatio >= 0.85 && p99Ratio !== null && p99Ratio <= 1.15;
  return { maxRatio, p99Ratio, cpuRatio, met };
}
