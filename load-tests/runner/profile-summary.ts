/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as `--hub-cpu-prof` writes them): the busy share of the samples
 * (idle and the program's own bookkeeping left out), then the top functions by self time and by total time
 * (a function counted once per sample however deep it recurses), and self time per file or package.
 *   node --import tsx load-tests/runner/profile-summary.ts <file.cpuprofile | dir> [--top 30] [--per-query n] [--since name]
 *     [--skip s] [--for s] [--timeline] [--under name]
 * --per-query n: also prints each row as CPU microseconds per query, given n queries in the profiled run.
 * A name is a function's name, or the start of a row's label (`apply dist/libs/projections`) to tell apart functions
 * of one name.
 * --since name: leaves out the samples before the first one whose stack holds a function of that name (e.g.
 *   `QueryRunner.run` or `run`: the start-up and the setup of people are then not counted).
 * --skip s: leaves out, besides, the first s seconds after that point (the JIT's warm-up: TurboFan compiles for the
 *   first 10–20 s of load, a fifth of the hub's CPU then).
 * --for s: counts only the s seconds after that point (one phase of a run: the fixed-rate phase after the max).
 * --timeline: prints, besides, the busy share of each second after that point (where the phases are).
 * --under name: counts only the samples whose stack holds a function of that name (what it costs, and where).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { summarise, type CpuProfile } from './cpu-profile.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, 'per-query': { type: 'string' }, since: { type: 'string' }, under: { type: 'string' }, skip: { type: 'string', default: '0' }, for: { type: 'string' }, timeline: { type: 'boolean', default: false } } });
const TOP = Number(values.top);
const PER_QUERY = values['per-query'] === undefined ? undefined : Number(values['per-query']);
const SINCE = values.since;
const UNDER = values.under;
const SKIP_US = Number(values.skip) * 1e6;
const FOR_US = values.for === undefined ? Infinity : Number(values.for) * 1e6;

function print(title: string, rows: Map<string, number>, busyMs: number): void {
  console.log(`\n${title}`);
  const perQuery = PER_QUERY === undefined ? '' : '   µs/query';
  console.log(`      ms   share${perQuery}  `);
  for (const [key, ms] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    const pq = PER_QUERY === undefined ? '' : `  ${((ms * 1000) / PER_QUERY).toFixed(1).padStart(9)}`;
    console.log(`${ms.toFixed(0).padStart(8)}  ${((100 * ms) / busyMs).toFixed(1).padStart(5)} %${pq}  ${key}`);
  }
}

function filesOf(arg: string): string[] {
  if (!statSync(arg).isDirectory()) return [arg];
  return readdirSync(arg).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(arg, f));
}

if (positionals.length === 0) {
  console.error('usage: profile-summary <file.cpuprofile | dir> [--top 30] [--per-query n] [--since name] [--skip s] [--for s] [--timeline] [--under name]');
  process.exit(2);
}
for (const file of positionals.flatMap(filesOf)) {
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, SINCE, UNDER, SKIP_US, FOR_US);
  console.log(`== ${file}${SINCE === undefined ? '' : ` since ${SINCE}`}${SKIP_US > 0 ? ` +${SKIP_US / 1e6} s` : ''}${FOR_US === Infinity ? '' : ` for ${FOR_US / 1e6} s`}${UNDER === undefined ? '' : ` under ${UNDER}`}: ${(s.totalMs / 1000).toFixed(1)} s profiled, ${(s.busyMs / 1000).toFixed(2)} s busy (GC ${((100 * s.gcMs) / s.busyMs).toFixed(1)} % of it)`);
  if (values.timeline) console.log(`busy ms in each second: ${s.seconds.map((ms) => ms.toFixed(0)).join(' ')}`);
  print(`top ${TOP} by self time (share of busy time)`, s.self, s.busyMs);
  print(`top ${TOP} by total time`, s.total, s.busyMs);
  print(`top ${TOP} files / packages by self time`, s.files, s.busyMs);
}
