import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fileOf, summarise, type CpuProfile } from '../../load-tests/runner/cpu-profile.js';

// A profile of 4 s in samples of 100 ms: 1 s of setup, then a run whose first second is all work, the second
// half idle, the third 200 ms of GC and 800 ms of work.
const inRepo = (path: string): string => pathToFileURL(join(process.cwd(), path)).href;

function profile(): CpuProfile {
  const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });
  const nodes = [
    { id: 1, callFrame: frame('(root)'), children: [2, 3, 4, 6] },
    { id: 2, callFrame: frame('(idle)') },
    { id: 3, callFrame: frame('setup', inRepo('load-tests/setup.js')) },
    { id: 4, callFrame: frame('run', inRepo('dist/apps/hub/src/query-runner.js')), children: [5] },
    { id: 5, callFrame: frame('work', inRepo('node_modules/pkg/lib/a.js')) },
    { id: 6, callFrame: frame('(garbage collector)') },
  ];
  const samples = [
    ...Array<number>(10).fill(3),
    ...Array<number>(10).fill(5),
    ...Array<number>(5).fill(2),
    ...Array<number>(5).fill(5),
    ...Array<number>(2).fill(6),
    ...Array<number>(8).fill(5),
    5,
  ];
  return { nodes, samples, timeDeltas: samples.map((_, i) => (i === 0 ? 0 : 100_000)), startTime: 0, endTime: 4_000_000 };
}

describe('the CPU profile summary (profile-summary.ts)', () => {
  it('sums busy time by function, total and file from the first sample under --since, leaving idle out', () => {
    const s = summarise(profile(), 'run');
    expect(s.totalMs).toBe(3000);
    expect(s.busyMs).toBe(2500);
    expect(s.gcMs).toBe(200);
    expect(s.self.get('work npm:pkg:1')).toBe(2300);
    expect(s.total.get('run dist/apps/hub/src/query-runner.js:1')).toBe(2300);
    expect(s.files.get('npm:pkg')).toBe(2300);
    expect(s.self.has('setup load-tests/setup.js:1')).toBe(false);
    expect(s.seconds).toEqual([1000, 500, 1000, 0]);
  });

  it('keeps one phase with --skip and --for, and only the samples under a function with --under', () => {
    const phase = summarise(profile(), 'run', undefined, 1_000_000, 1_000_000);
    expect(phase.totalMs).toBe(1000);
    expect(phase.busyMs).toBe(500);
    expect(phase.seconds).toEqual([500]);
    const under = summarise(profile(), 'run', 'run');
    expect(under.busyMs).toBe(2300);
    expect(under.gcMs).toBe(0);
    // Without --since the setup counts too.
    expect(summarise(profile()).self.get('setup load-tests/setup.js:1')).toBe(1000);
  });

  it('names a file by its package, node module or path in the repository', () => {
    expect(fileOf('')).toBe('(native / V8)');
    expect(fileOf('node:internal/timers')).toBe('node:internal/timers');
    expect(fileOf('file:///x/node_modules/@nestjs/core/a.js')).toBe('npm:@nestjs/core');
  });
});
