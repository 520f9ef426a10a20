import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const HUB_MAIN = join(REPO_ROOT, 'dist/apps/hub/src/main.js');
export const AGENCY_NODE_MAIN = join(REPO_ROOT, 'dist/apps/agency-node/src/main.js');

/** A built app run as its own process; its output is kept (bounded) for error messages. */
export interface Spawned {
  readonly name: string;
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const OUTPUT_LIMIT = 64 * 1024;

export function requireBuilt(): void {
  for (const main of [HUB_MAIN, AGENCY_NODE_MAIN]) {
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (the load test drives the built hub and agency node)`);
  }
}

/** `node [nodeFlags] <main> [args]` with only PATH and the given environment. */
export function spawnBuilt(name: string, main: string, args: readonly string[], env: Record<string, string>, cwd: string, nodeFlags: readonly string[] = []): Spawned {
  const child = spawn(process.execPath, [...nodeFlags, main, ...args], {
    cwd,
    env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const keep = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    if (text.length > OUTPUT_LIMIT) text = text.slice(-OUTPUT_LIMIT);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  return { name, child, output: () => text, exited };
}

/** Runs a one-shot command to its end; its stdout parsed as JSON. */
export async function runToEnd(name: string, main: string, args: readonly string[], env: Record<string, string>, cwd: string): Promise<unknown> {
  const run = spawnBuilt(name, main, args, env, cwd);
  let stdout = '';
  run.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  const { code } = await run.exited;
  if (code !== 0) throw new Error(`${name} ${args.join(' ')} exited ${String(code)}:\n${run.output()}`);
  return JSON.parse(stdout) as unknown;
}

/** How a served process is reached: its scheme (the logged one by default) and the fetch that checks it. */
export interface ReachOptions {
  /** `https` for a process serving TLS: Nest logs its URL as http:// when the adapter, not Nest, was given the certificate. */
  readonly scheme?: 'http' | 'https';
  /** A fetch trusting the hub's CA, for HTTPS. */
  readonly fetch?: typeof fetch;
}

/** Waits for the "listening on http(s)://127.0.0.1:<port>" log line and a 200 from `<url>/health/ready`. */
export async function waitReady(run: Spawned, timeoutMs = 60_000, reach: ReachOptions = {}): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const web = reach.fetch ?? fetch;
  let ended = false;
  void run.exited.then(() => (ended = true));
  while (Date.now() < deadline && !ended) {
    const match = /listening on (https?):\/\/(127\.0\.0\.1:\d+)/.exec(run.output());
    if (match) {
      const url = `${reach.scheme ?? match[1]!}://${match[2]!}`;
      const ready = await web(`${url}/health/ready`).catch(() => undefined);
      if (ready?.status === 200) return url;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  run.child.kill('SIGKILL');
  throw new Error(`${run.name} did not become ready within ${timeoutMs} ms; its output:\n${run.output()}`);
}

/** SIGTERM (lets a --cpu-prof profile be written), then SIGKILL if it has not ended in time. */
export async function stop(run: Spawned | undefined, graceMs = 15_000): Promise<void> {
  if (run === undefined || run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), graceMs);
  await run.exited;
  clearTimeout(timer);
}

/** A port free on 127.0.0.1 now (the agency node must be registered with its endpoint before it starts). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * `n` different ports free on 127.0.0.1 now: each stays bound until all are chosen (a port released at once
 * could be handed out again for the next), then all are released.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((done, fail) => server.once('error', fail).listen(0, '127.0.0.1', done));
      ports.push((server.address() as { port: number }).port);
    }
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((done) => (server.listening ? server.close(() => done()) : done()))));
  }
  return ports;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); undefined elsewhere. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
