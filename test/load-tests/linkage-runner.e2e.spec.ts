import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../load-tests/runner/processes.js';

// `npm run load:linkage` end to end, in miniature: the relay baseline, the linkage over plain HTTP and over
// TLS, each phase kind once (max, the paced fixed rate with its lead-in, the TLS comparison rate), and the
// last line's figures. The figures of so short a run mean nothing; that the run holds together does.
function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'load-tests/runner/linkage.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run load:linkage', () => {
  it('runs the baseline, plain HTTP and TLS through every phase kind and ends with one JSON line of figures', async () => {
    const { code, stdout, stderr } = await run(['--people', '30', '--connections', '4', '--saturate', '8', '--warmup', '1', '--duration', '2', '--rate-duration', '2', '--lead-in', '1', '--rate', '0', '--rate-fraction', '0.05', '--rate-connections', '8', '--tls', 'both']);
    expect(code, stderr.slice(-2000)).toBe(0);
    const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(last).toMatchObject({ bench: 'linkage-http', tls: 'both', errors: 0 });
    for (const key of ['ratio', 'baseline_max_per_s', 'max_per_s', 'rate_target', 'rate_achieved', 'p99_ms_at_rate', 'tls_max_ratio', 'tls_p99_ms_at_compare', 'plain_p99_ms_at_compare', 'tls_compare_rate']) {
      expect(typeof last[key], key).toBe('number');
    }
    // The max phase at --connections and again at --saturate's count: each target's max is its better one, and the ratio is given count by count too.
    expect([4, 8]).toContain(last['max_connections']);
    expect([4, 8]).toContain(last['baseline_max_connections']);
    expect(Object.keys(last['ratio_by_connections'] as object).sort()).toEqual(['4', '8']);
    expect(stdout).toMatch(/^relay baseline +max +8 /m);
    expect(stdout).toMatch(/^linkage tls +max +8 /m);
    expect(stdout).toMatch(/against the relay baseline: max \d+\/s at [48] connections against \d+\/s at [48] \(ratio [\d.]+, bar ≥ 0\.4; count by count [\d.]+ at 4, [\d.]+ at 8\)/);
    expect(last['cpu_ms_per_query']).toMatchObject({ hub: expect.any(Number), node: expect.any(Number) });
    // The bar's CPU budget against the relay's cost and the linkage's cryptography, measured in the same run.
    for (const key of ['cores', 'bar_cpu_budget_ms', 'relay_cpu_ms', 'floor_cpu_ms', 'floor_ratio']) expect(typeof last[key], key).toBe('number');
    expect(last['crypto_cpu_ms']).toMatchObject({ hub: { seal: expect.any(Number), sign: expect.any(Number) }, node: { verify: expect.any(Number), sealAnswer: expect.any(Number) }, total: expect.any(Number) });
    expect(stdout).toMatch(/^CPU budget of the bar: at 0\.4 × \d+\/s on \d+ cores a linkage may cost [\d.]+ ms of CPU/m);
    // Each fixed-rate phase says what its lead-in and the generator saw.
    expect(stderr).toMatch(/http rate \d+\/s \(0\.05 × baseline\): lead-in \d+ requests in 1 s, p99 \d+ ms/);
    expect(stderr).toMatch(/tls rate \d+\/s \(0\.5 × lower max\): lead-in \d+ requests in 1 s/);
    expect(stderr).toMatch(/the generator sent p99 [\d.]+ ms after the due time/);
    expect(stdout).toMatch(/TLS against plain HTTP in this run/);
    // The hub's own account of its max phases, from its metrics: where a query's time goes, over plain HTTP and TLS.
    for (const key of ['http', 'tls']) {
      expect(stdout).toMatch(new RegExp(`^where a query's time goes in the hub \\(linkage ${key}, max phase, means of \\d+ requests, from its metrics\\): HTTP [\\d.]+ ms = pipeline [\\d.]+ \\+ translate [\\d.]+ \\+ record [\\d.]+ \\+ provider [\\d.]+ \\+ end [\\d.]+$`, 'm'));
    }
    const hub = last['hub_ms_at_max'] as { http: number; pipeline: number; translate: number; record: number; provider: number; end: number };
    expect(Object.keys(hub).sort()).toEqual(['end', 'http', 'pipeline', 'provider', 'record', 'translate']);
    expect(hub.provider).toBeGreaterThan(0);
    expect(hub.pipeline + hub.translate + hub.record + hub.provider + hub.end).toBeCloseTo(hub.http, 0);
    // What handing work on costs the machine the figures come from.
    expect(stdout).toMatch(/^handing work on, on this machine \(CPU µs per round trip, back to back \/ one every 3 ms\): loopback TCP \d+ \/ \d+, a worker thread \d+ \/ \d+$/m);
    const wakeups = last['wakeup_cpu_us'] as Record<string, number>;
    expect(Object.keys(wakeups).sort()).toEqual(['tcp_busy', 'tcp_paced', 'thread_busy', 'thread_paced']);
    for (const v of Object.values(wakeups)) expect(v).toBeGreaterThan(0);
  }, 240_000);
});
