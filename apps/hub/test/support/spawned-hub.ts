import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const MAIN_JS = join(REPO_ROOT, 'dist/apps/hub/src/main.js');

export interface SpawnedHub {
  readonly child: ChildProcess;
  readonly baseUrl: string;
  output(): string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `node dist/apps/hub/src/main.js` as `npm start` would, from a directory other than the repository;
 * over plain HTTP unless `env` says HUB_TLS=on (the process's own default is on: tls-default.e2e.spec.ts).
 */
export function runHub(env: Record<string, string>, cwd: string): { child: ChildProcess; output: () => string; exited: SpawnedHub['exited'] } {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` before the e2e tier (npm run test:e2e does)`);
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd,
    env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', HUB_TLS: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  return { child, output: () => text, exited };
}

/** Starts the built hub on a free port (HUB_PORT=0, the port read from its log) and waits for /health/ready. */
export async function startHub(dataDir: string, cwd: string, timeoutMs = 30_000): Promise<SpawnedHub> {
  const run = runHub({ HUB_DATA_DIR: dataDir, HUB_PORT: '0', HUB_HOST: '127.0.0.1', HUB_LOG_LEVEL: 'log' }, cwd);
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void run.exited.then(() => (ended = true));
  let baseUrl: string | undefined;
  while (Date.now() < deadline && !ended) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(run.output());
    if (match) {
      baseUrl = match[1]!;
      const ready = await fetch(`${baseUrl}/health/ready`).catch(() => undefined);
      if (ready?.status === 200) return { ...run, baseUrl };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  run.child.kill('SIGKILL');
  throw new Error(`hub did not become ready (base url ${baseUrl ?? 'unknown'}); output:\n${run.output()}`);
}
