import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const MAIN_JS = join(REPO_ROOT, 'dist/apps/agency-node/src/main.js');

export interface Run {
  readonly child: ChildProcess;
  output(): string;
  stdout(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `node dist/apps/agency-node/src/main.js <args>` with only the given environment (plus PATH). */
export function runNode(args: readonly string[], env: Record<string, string>, cwd: string, stdin?: string): Run {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` before the e2e tier (npm run test:e2e does)`);
  const child = spawn(process.execPath, [MAIN_JS, ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end(stdin ?? '');
  let all = '';
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    all += chunk.toString('utf8');
    out += chunk.toString('utf8');
  });
  child.stderr!.on('data', (chunk: Buffer) => (all += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  return { child, output: () => all, stdout: () => out, exited };
}

/** Runs a one-shot CLI command to its end and returns its parsed JSON output. */
export async function runCommand(args: readonly string[], env: Record<string, string>, cwd: string, stdin?: string): Promise<unknown> {
  const run = runNode(args, env, cwd, stdin);
  const { code } = await run.exited;
  if (code !== 0) throw new Error(`agency-node ${args.join(' ')} exited ${code}:\n${run.output()}`);
  return JSON.parse(run.stdout()) as unknown;
}

/** Starts `serve` on a free port (AGENCY_PORT=0, the port read from its log) and waits for /health/ready. */
export async function startNode(env: Record<string, string>, cwd: string, timeoutMs = 30_000): Promise<Run & { baseUrl: string }> {
  const run = runNode(['serve'], { AGENCY_PORT: '0', AGENCY_HOST: '127.0.0.1', ...env }, cwd);
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void run.exited.then(() => (ended = true));
  while (Date.now() < deadline && !ended) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(run.output());
    if (match) {
      const ready = await fetch(`${match[1]!}/health/ready`).catch(() => undefined);
      if (ready?.status === 200) return { ...run, baseUrl: match[1]! };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  run.child.kill('SIGKILL');
  throw new Error(`agency node did not become ready; output:\n${run.output()}`);
}
