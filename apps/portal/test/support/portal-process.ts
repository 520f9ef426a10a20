import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../../demo/src/network.js';
export { freePorts } from '../../../../test/support/free-ports.js';

export const PORTAL_MAIN = join(ROOT, 'dist/apps/portal/src/main.js');


export interface PortalProcess {
  readonly url: string;
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts the built portal (dist/apps/portal) against a hub, and waits until it answers. */
export async function startPortal(options: { port: number; hubUrl: string; dataDir: string }): Promise<PortalProcess> {
  if (!existsSync(PORTAL_MAIN)) throw new Error(`${PORTAL_MAIN} is missing: run npm run build first`);
  const url = `http://localhost:${options.port}`;
  const child = spawn(process.execPath, [PORTAL_MAIN], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      NO_COLOR: '1',
      PORTAL_PORT: String(options.port),
      PORTAL_HOST: '127.0.0.1',
      PORTAL_HUB_URL: options.hubUrl,
      PORTAL_ORIGIN: url,
      PORTAL_DATA_DIR: options.dataDir,
      PORTAL_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const res = await fetch(`http://127.0.0.1:${options.port}/api/session`).catch(() => undefined);
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (child.exitCode !== null || Date.now() >= deadline) throw new Error(`the portal did not start:\n${text}`);
  return {
    url,
    child,
    output: () => text,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
