import { describe, expect, it } from 'vitest';
import type { PhaseResult } from '../../load-tests/runner/drive.js';
import { cpuMsPerQuery, figuresOf, maxByConnections, median, ratio, ratioByConnections, tlsComparison, totalCpuMsPerQuery, type TargetFigures, type TargetRow } from '../../load-tests/runner/report.js';

function phase(perSecond: number, p99: number, seconds = 10, errors = 0): PhaseResult {
  return {
    name: 'max',
    connections: 64,
    durationSeconds: seconds,
    requests: perSecond * seconds,
    perSecond,
    latencyMs: { p50: p99 / 2, p90: p99 * 0.8, p99, p99_9: p99, max: p99, mean: p99 / 2 },
    errors,
    statuses: { '200': perSecond * seconds },
    notAnswered: 0,
    socketErrors: 0,
    timeouts: 0,
  };
}

function row(perSecond: number, p99: number, cpu: Record<string, number>, errors = 0, connections = 64): TargetRow {
  return { target: 'linkage http', phase: { ...phase(perSecond, p99, 10, errors), connections }, cpu, wallSeconds: 10 };
}

function figures(maxPerSecond: number, p99MsAtRate: number, cpu: Record<string, number>): TargetFigures {
  return { maxPerSecond, maxConnections: 64, p99MsAtMax: 100, rateAchieved: maxPerSecond, p50MsAtRate: p99MsAtRate / 2, p99MsAtRate, cpuMsPerQueryAtRate: cpu, errors: 0 };
}

describe('load:linkage figures', () => {
  it('gives each process its CPU milliseconds per query from its share of a core', () => {
    // 500 queries/s for 10 s with the hub at 45 % of a core: 4.5 s of CPU over 5,000 queries.
    expect(cpuMsPerQuery(row(500, 40, { hub: 0.45, node: 0.3, generator: 0.05 }))).toEqual({ hub: 0.9, node: 0.6, generator: 0.1 });
    expect(cpuMsPerQuery({ ...row(0, 0, { hub: 0.2 }) })).toEqual({ hub: 0 });
    // A paced phase's lead-in ran on the same processes: its requests share the CPU measured over both.
    const led = row(500, 40, { hub: 0.45 });
    expect(cpuMsPerQuery({ ...led, phase: { ...led.phase, allRequests: 6_000 } })).toEqual({ hub: 0.75 });
    // All processes together, averaged over the rounds: (0.9 + 0.6 + 0.1 + 0.4 + 0.2 + 0) / 2 ms.
    expect(totalCpuMsPerQuery([row(500, 40, { hub: 0.45, node: 0.3, generator: 0.05 }), row(500, 40, { relay: 0.2, provider: 0.1, generator: 0 })])).toBeCloseTo(1.1, 6);
  });

  it('takes medians over rounds and counts every error of both phases', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const f = figuresOf([row(900, 150, { hub: 0.9 }), row(1000, 120, { hub: 0.9 }), row(800, 200, { hub: 0.9 }, 2)], [row(300, 40, { hub: 0.3 }), row(310, 60, { hub: 0.62 }, 1)]);
    expect(f.maxPerSecond).toBe(900);
    expect(f.p99MsAtMax).toBe(150);
    expect(f.rateAchieved).toBe(305);
    expect(f.p99MsAtRate).toBe(50);
    expect(f.cpuMsPerQueryAtRate['hub']).toBe(1.5);
    expect(f.errors).toBe(3);
  });

  it("takes a target's max at the connection count where its median is highest, and compares counts both ran", () => {
    // The linkage, latency-bound at 64 connections, serves more at 256; the relay is saturated at 64 and serves less at 256.
    const linkage = [row(900, 120, {}), row(1000, 130, {}), row(1400, 300, {}, 0, 256), row(1300, 280, {}, 0, 256), row(1350, 310, {}, 0, 256)];
    const relay = [row(5000, 20, {}), row(4800, 22, {}), row(4500, 60, {}, 0, 256), row(4600, 65, {}, 0, 256)];
    expect(maxByConnections(linkage)).toEqual([
      { connections: 64, perSecond: 950, p99Ms: 125 },
      { connections: 256, perSecond: 1350, p99Ms: 300 },
    ]);
    const f = figuresOf(linkage, []);
    expect([f.maxPerSecond, f.maxConnections, f.p99MsAtMax]).toEqual([1350, 256, 300]);
    const b = figuresOf(relay, []);
    expect([b.maxPerSecond, b.maxConnections]).toEqual([4900, 64]);
    // Best against best, and count by count (a count only one target ran is left out).
    expect(ratio(f.maxPerSecond, b.maxPerSecond)).toBe(0.276);
    expect(ratioByConnections([...linkage, row(1200, 500, {}, 0, 512)], relay)).toEqual({ '64': 0.194, '256': 0.297 });
    // One count: the figures of before.
    expect(figuresOf([row(900, 150, {}), row(1000, 120, {})], []).maxConnections).toBe(64);
  });

  it('answers no ratio against zero', () => {
    expect(ratio(5, 0)).toBeNull();
    expect(ratio(1, 3)).toBe(0.333);
  });

  it('holds TLS to at most 15 % lost against plain HTTP: max rate and p99 at the fixed rate', () => {
    const plain = figures(1000, 100, { hub: 0.8, node: 0.7, generator: 0.1 });
    const within = tlsComparison(plain, figures(860, 114, { hub: 0.9, node: 0.75, generator: 0.3 }));
    expect(within).toEqual({ maxRatio: 0.86, p99Ratio: 1.14, cpuRatio: 1.1, met: true });
    // The load generator's own TLS work is left out of the CPU ratio: it is not the hub's cost.
    expect(within.cpuRatio).toBe(1.1);
    expect(tlsComparison(plain, figures(840, 100, { hub: 0.8, node: 0.7 })).met).toBe(false);
    expect(tlsComparison(plain, figures(1000, 116, { hub: 0.8, node: 0.7 })).met).toBe(false);
  });

  it('meets nothing when either side had errors: a failed phase measures the failure, not TLS', () => {
    const good = figures(1000, 100, { hub: 0.8, node: 0.7 });
    const failed: TargetFigures = { ...figures(1000, 2500, { hub: 0.8, node: 0.7 }), errors: 256 };
    expect(tlsComparison(failed, figures(900, 800, { hub: 0.9, node: 0.75 })).met).toBe(false);
    expect(tlsComparison(good, { ...figures(900, 100, { hub: 0.9, node: 0.75 }), errors: 1 }).met).toBe(false);
  });
});
