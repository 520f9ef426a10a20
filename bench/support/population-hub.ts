/**
 * The hub as its own process for `npm run bench:population`: the built hub (as `npm run start:hub` runs
 * it), or the sources through tsx with `source: true`; time from spawn to /health/ready 200, its resident
 * memory sampled from /proc/<pid>/status (VmRSS) while it runs, and a wait until its CPU settles
 * (projections and the self-check's scrub run in the background after it is ready).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HUB_MAIN, REPO_ROOT, cpuSeconds, spawnBuilt, stop, waitReady, type Spawned } from '../../load-tests/runner/processes.js';

export const HUB_SOURCE_MAIN = join(REPO_ROOT, 'apps/hub/src/main.ts');

/** Every process the bench started and has not yet seen end: stopped on SIGINT / SIGTERM. */
export const benchChildren = new Set<ChildProcess>();

export function tracked(child: ChildProcess): ChildProcess {
  benchChildren.add(child);
  child.once('exit', () => benchChildren.delete(child));
  return child;
}

/** VmRSS of a process in MiB, undefined once it is gone; with its anonymous and file-backed parts (RssAnon, RssFile). */
export function rssMiB(pid: number | undefined): { total: number; anon: number; file: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
    const total = kb('VmRSS');
    return Number.isNaN(total) ? undefined : { total, anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
  } catch {
    return undefined;
  }
}

export interface HubRun {
  readonly url: string;
  readonly spawned: Spawned;
  /** Seconds from spawn to the first /health/ready 200. */
  readonly readySeconds: number;
  /** The largest VmRSS seen so far (MiB), sampled every 200 ms. */
  maxRssMiB(): number;
  /** The largest RssAnon seen so far (MiB): the process's own memory, without pages of files it maps (SQLite's mmap). */
  maxAnonMiB(): number;
  /** Starts a window of its own: `windowMaxRssMiB()` is then the largest VmRSS since this call. */
  startWindow(): void;
  /** The largest VmRSS since `startWindow()` (MiB). */
  windowMaxRssMiB(): number;
  /** SIGTERM, then SIGKILL after 60 s: how the hub ended and how long it took (a killed hub saved nothing at close, e.g. the ledger's filters). */
  stop(): Promise<HubStopped>;
}

/** How a stopped hub ended. */
export interface HubStopped {
  readonly seconds: number;
  /** The hub exited on its own after SIGTERM (not killed). */
  readonly clean: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
}

export function requireHub(source: boolean): void {
  if (!source && !existsSync(HUB_MAIN)) throw new Error(`${HUB_MAIN} is missing: run \`npm run build\` first, or pass --source to run the hub from its sources`);
}

/** The newest TypeScript source of the hub and the libraries, when it is newer than the built hub (a stale build), else undefined. */
export function newerSourceThanBuild(): string | undefined {
  if (!existsSync(HUB_MAIN)) return undefined;
  const built = statSync(HUB_MAIN).mtimeMs;
  let newest: { path: string; mtime: number } | undefined;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'test' && entry.name !== 'node_modules') walk(path);
      } else if (entry.name.endsWith('.ts')) {
        const mtime = statSync(path).mtimeMs;
        if (newest === undefined || mtime > newest.mtime) newest = { path, mtime };
      }
    }
  };
  walk(join(REPO_ROOT, 'apps/hub/src'));
  for (const lib of readdirSync(join(REPO_ROOT, 'libs'))) if (existsSync(join(REPO_ROOT, 'libs', lib, 'src'))) walk(join(REPO_ROOT, 'libs', lib, 'src'));
  return newest !== undefined && newest.mtime > built ? newest.path : undefined;
}

/** Starts a hub on `dataDir` and waits for it to be ready (up to `readyTimeoutMs`). */
/** V8's semi-space (MiB) the hub runs with by default: as `npm run start:hub` runs it. */
export const HUB_SEMI_SPACE_MIB = 64;

export async function startHub(options: { dataDir: string; env: Record<string, string>; source: boolean; readyTimeoutMs: number; cwd: string; cpuProfileDir?: string; name?: string; semiSpaceMiB?: number }): Promise<HubRun> {
  // V8's young generation is three semi-spaces: a larger one means fewer scavenges under load, and more memory.
  const flags = [`--max-semi-space-size=${options.semiSpaceMiB ?? HUB_SEMI_SPACE_MIB}`, ...(options.source ? ['--conditions=source', '--import', 'tsx'] : [])];
  // A CPU profile of the whole run (written when the hub exits; open it in Chrome DevTools).
  if (options.cpuProfileDir !== undefined) flags.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`, `--cpu-prof-name=${options.name ?? 'hub'}-${Date.now()}.cpuprofile`);
  const started = process.hrtime.bigint();
  // Plain HTTP unless the caller asks for TLS (the hub's own default is HUB_TLS=on): the benches speak http.
  const spawned = spawnBuilt('hub', options.source ? HUB_SOURCE_MAIN : HUB_MAIN, [], { HUB_DATA_DIR: options.dataDir, HUB_PORT: '0', HUB_HOST: '127.0.0.1', HUB_TLS: 'off', ...options.env }, options.cwd, flags);
  tracked(spawned.child);
  let max = 0;
  let maxAnon = 0;
  let windowMax = 0;
  const sample = () => {
    const rss = rssMiB(spawned.child.pid);
    if (rss === undefined) return;
    if (rss.total > max) max = rss.total;
    if (rss.total > windowMax) windowMax = rss.total;
    if (rss.anon > maxAnon) maxAnon = rss.anon;
  };
  const sampler = setInterval(sample, 200);
  sampler.unref();
  try {
    const url = await waitReady(spawned, options.readyTimeoutMs);
    const readySeconds = Number(process.hrtime.bigint() - started) / 1e9;
    sample();
    return {
      url,
      spawned,
      readySeconds,
      maxRssMiB: () => {
        sample();
        return max;
      },
      maxAnonMiB: () => {
        sample();
        return maxAnon;
      },
      startWindow: () => {
        windowMax = 0;
        sample();
      },
      windowMaxRssMiB: () => {
        sample();
        return windowMax;
      },
      stop: async () => {
        sample();
        clearInterval(sampler);
        const began = performance.now();
        await stop(spawned, 60_000);
        const { exitCode, signalCode } = spawned.child;
        return { seconds: (performance.now() - began) / 1000, clean: signalCode !== 'SIGKILL', exitCode, signal: signalCode };
      },
    };
  } catch (error) {
    clearInterval(sampler);
    await stop(spawned, 5_000);
    throw error;
  }
}

/**
 * Waits until the process uses less than `share` of one core over `windowMs`, or `timeoutMs` passed.
 * Returns the seconds waited and whether it settled.
 */
export async function settle(pid: number | undefined, options: { share?: number; windowMs?: number; timeoutMs: number; onWait?: (seconds: number, share: number) => void }): Promise<{ seconds: number; settled: boolean }> {
  const share = options.share ?? 0.15;
  const windowMs = options.windowMs ?? 3000;
  const started = Date.now();
  for (;;) {
    const before = cpuSeconds(pid);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const after = cpuSeconds(pid);
    if (before === undefined || after === undefined) return { seconds: (Date.now() - started) / 1000, settled: false };
    const used = (after - before) / ((Date.now() - t0) / 1000);
    const waited = (Date.now() - started) / 1000;
    options.onWait?.(waited, used);
    if (used < share) return { seconds: waited, settled: true };
    if (Date.now() - started > options.timeoutMs) return { seconds: waited, settled: false };
  }
}
