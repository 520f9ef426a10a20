/**
 * The analysis behind `profile-summary.ts`: a V8 CPU profile (`.cpuprofile`) summed by function and by file over a
 * window of its samples.
 */
import { relative } from 'node:path';

export interface CallFrame { functionName: string; url: string; lineNumber: number }
export interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
export interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const ROOT = process.cwd();

/** A file's place: the package under node_modules, node's own modules, or the path in the repository. */
export function fileOf(url: string): string {
  if (url === '') return '(native / V8)';
  if (url.startsWith('node:')) return url;
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const rel = relative(ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

function label(frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  return frame.url === '' ? name : `${name} ${fileOf(frame.url)}:${frame.lineNumber + 1}`;
}

/** A frame is named by its function's name, or by the start of its label (`apply libs/projections`). */
function matches(frame: CallFrame, name: string): boolean {
  return frame.functionName === name || (name.includes(' ') && label(frame).startsWith(name));
}

const OUTSIDE = new Set(['(idle)', '(program)', '(root)']);

/** What `summarise` found: milliseconds busy, in all and per function (self and total) and per file; busy ms in each second. */
export interface ProfileSummary {
  readonly busyMs: number;
  readonly totalMs: number;
  readonly gcMs: number;
  readonly self: Map<string, number>;
  readonly total: Map<string, number>;
  readonly files: Map<string, number>;
  readonly seconds: number[];
}

/**
 * Sums the samples from the first whose stack holds `since` (all when undefined), `skipUs` after it, for `forUs`;
 * with `under`, only the samples whose stack holds that function.
 */
export function summarise(profile: CpuProfile, since?: string, under?: string, skipUs = 0, forUs = Infinity): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  let busyMs = 0;
  let totalMs = 0;
  const seconds: number[] = [];
  let gcMs = 0;
  const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);
  let started = since === undefined;
  let elapsedUs = 0;
  let startedAtUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    elapsedUs += profile.timeDeltas[i] ?? 0;
    if (!started) {
      for (let id: number | undefined = profile.samples[i]; id !== undefined && !started; id = parent.get(id)) started = matches(byId.get(id)!.callFrame, since!);
      if (!started) continue;
      startedAtUs = elapsedUs;
    }
    if (elapsedUs - startedAtUs < skipUs) continue;
    if (elapsedUs - startedAtUs >= skipUs + forUs) break;
    // timeDeltas[i] is the time before sample i; the sample's weight is the time up to the next one.
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    totalMs += ms;
    const node = byId.get(profile.samples[i]!)!;
    if (OUTSIDE.has(node.callFrame.functionName)) continue;
    const second = Math.floor((elapsedUs - startedAtUs - skipUs) / 1e6);
    seconds[second] = (seconds[second] ?? 0) + ms;
    if (under !== undefined) {
      let inside = false;
      for (let id: number | undefined = node.id; id !== undefined && !inside; id = parent.get(id)) inside = matches(byId.get(id)!.callFrame, under);
      if (!inside) continue;
    }
    busyMs += ms;
    if (node.callFrame.functionName === '(garbage collector)') gcMs += ms;
    add(self, label(node.callFrame), ms);
    add(files, fileOf(node.callFrame.url), ms);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      if (OUTSIDE.has(frame.functionName)) continue;
      const key = label(frame);
      if (!seen.has(key)) {
        seen.add(key);
        add(total, key, ms);
      }
    }
  }
  return { busyMs, totalMs, gcMs, self, total, files, seconds: Array.from(seconds, (ms) => ms ?? 0) };
}
