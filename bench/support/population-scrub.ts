/**
 * The self-check's background scrub of a ledger file, alone in this process, with its memory sampled: how
 * much the scrub adds to a hub's RSS (bench:population measures it inside the hub).
 *   node --conditions=source --import tsx bench/support/population-scrub.ts <ledger.sqlite> [threads] [to]
 */
import { readFileSync } from 'node:fs';
import { checkStoredLog } from '#ledger';

const [path, threadsArg, toArg] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: population-scrub.ts <ledger.sqlite> [threads] [to]');

function status(): { rss: number; anon: number } {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
}

const before = status();
let peak = before;
const series: string[] = [];
let tick = 0;
const timer = setInterval(() => {
  const now = status();
  if (now.rss > peak.rss) peak = now;
  // Every 2 s: RSS, RssAnon and this thread's V8 heap (MiB), to tell the main thread's growth from the workers'.
  if (process.env['SCRUB_SERIES'] !== undefined && ++tick % 20 === 0) series.push(`${Math.round(now.rss)}/${Math.round(now.anon)}/${Math.round(process.memoryUsage().heapTotal / 1048576)}`);
}, 100);
const started = Date.now();
const cpu0 = process.cpuUsage();
const report = await checkStoredLog({
  path,
  publicKey: new Uint8Array(32),
  from: 0,
  ...(toArg === undefined ? {} : { to: Number(toArg) }),
  threads: Number(threadsArg ?? 2),
  lowPriority: true,
});
clearInterval(timer);
const cpu = process.cpuUsage(cpu0);
const after = status();
process.stdout.write(
  `${JSON.stringify({
    checked: report.checked,
    seconds: (Date.now() - started) / 1000,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    rss_before_mib: Math.round(before.rss),
    rss_peak_mib: Math.round(peak.rss),
    anon_at_peak_mib: Math.round(peak.anon),
    rss_after_mib: Math.round(after.rss),
    added_mib: Math.round(peak.rss - before.rss),
    findings: report.findingCount,
    first: report.findings[0]?.code,
    ...(series.length === 0 ? {} : { series: series.join(' ') }),
  })}\n`,
);
