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
    perQuery(cpu.hub, cpu.wallSeconds, phase.requests),
    perQuery(cpu.node, cpu.wallSeconds, phase.requests),
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
