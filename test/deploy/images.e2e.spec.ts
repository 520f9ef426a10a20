// What each Dockerfile's runtime stage holds is enough to run the app, and needs no dev dependency:
// after `npm run build`, the paths it copies from the build stage exist; the same tree assembled in a
// scratch directory (package.json, node_modules, only the copied dist/ and schemas/) runs the app; and every
// package the copied code imports is a production dependency in package-lock.json (what
// `npm ci --omit=dev` installs).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts } from '../support/free-ports.js';
import { ROOT, parseDockerfile, stagesOf } from './deploy-checks.js';

const APPS = ['hub', 'agency-node', 'portal', 'auditor'] as const;
type App = (typeof APPS)[number];

/** The final stage's copies from the repository (context) and from the build stage, as repository paths. */
function runtimeCopies(app: App): { fromBuild: string[]; fromContext: string[]; command: string[]; workdir: string } {
  const stages = stagesOf(parseDockerfile(readFileSync(join(ROOT, 'apps', app, 'Dockerfile'), 'utf8')));
  const final = stages.at(-1)!;
  const fromBuild: string[] = [];
  const fromContext: string[] = [];
  let command: string[] = [];
  let workdir = '/';
  for (const ins of final.instructions) {
    if (ins.keyword === 'COPY') {
      const words = ins.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const sources = words.filter((w) => !w.startsWith('--')).slice(0, -1);
      if (from === 'build') fromBuild.push(...sources.map((s) => s.replace(/^\/src\//, '')));
      else if (from === undefined) fromContext.push(...sources.map((s) => s.replace(/^\.\//, '')));
    }
    if (ins.keyword === 'ENTRYPOINT' || ins.keyword === 'CMD') {
      const parsed = JSON.parse(ins.args) as string[];
      command = ins.keyword === 'ENTRYPOINT' ? parsed : command.length > 0 ? command : parsed;
    }
    if (ins.keyword === 'WORKDIR' && workdir === '/') workdir = ins.args;
  }
  return { fromBuild, fromContext, command, workdir };
}

/** The final stage's HEALTHCHECK command (its exec form), as Docker runs it in the container. */
function healthcheck(app: App): string[] {
  const final = stagesOf(parseDockerfile(readFileSync(join(ROOT, 'apps', app, 'Dockerfile'), 'utf8'))).at(-1)!;
  const args = final.instructions.find((i) => i.keyword === 'HEALTHCHECK')!.args;
  return JSON.parse(args.slice(args.indexOf('CMD') + 'CMD'.length).trim()) as string[];
}

/** Runs an image's HEALTHCHECK command with `env` (its node is this one): its exit code. */
function runHealthcheck(app: App, env: Record<string, string>): number | null {
  const [node, ...args] = healthcheck(app);
  expect(node).toBe('node');
  return spawnSync(process.execPath, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 10_000 }).status;
}

const scratch = mkdtempSync(join(tmpdir(), 'deploy-images-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The runtime tree of an app's image, in a scratch directory (node_modules linked to the repository's). */
function assemble(app: App): string {
  const dir = join(scratch, app);
  const { fromBuild, fromContext } = runtimeCopies(app);
  for (const path of [...fromBuild, ...fromContext.filter((p) => !p.startsWith('deploy/'))]) cpSync(join(ROOT, path), join(dir, path), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('the images hold what their apps need', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const builtins = new Set(builtinModules);

  for (const app of APPS) {
    it(`${app}: the build stage emits what the runtime stage copies, and the copied code imports production dependencies only`, () => {
      const { fromBuild } = runtimeCopies(app);
      expect(fromBuild.length).toBeGreaterThan(0);
      for (const path of fromBuild) expect(existsSync(join(ROOT, path)), `${path} (run npm run build first)`).toBe(true);
      const imports = new Set<string>();
      for (const file of fromBuild.flatMap((p) => filesUnder(join(ROOT, p))).filter((f) => /\.m?js$/.test(f) && !f.includes('/web/'))) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\.resolve\s*\(\s*)'(@?[a-z0-9][\w@./-]*)'/g)) imports.add(m[1]!);
      }
      const packages = [...imports].filter((s) => !s.startsWith('node:') && !builtins.has(s)).map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!));
      expect(packages.length).toBeGreaterThan(0);
      const problems = [...new Set(packages)].flatMap((p) => {
        const entry = lock.packages[`node_modules/${p}`];
        if (entry === undefined) return [`${p}: not in package-lock.json`];
        return entry.dev === true ? [`${p}: a dev dependency, which the image does not install`] : [];
      });
      expect(problems).toEqual([]);
    });
  }

  it('hub: the runtime tree makes the keys and the TLS CA with its deploy/hub-keygen.mjs, then starts on TLS (its default, the deployment\'s) and answers over HTTPS', async () => {
    const dir = assemble('hub');
    const { command, fromContext } = runtimeCopies('hub');
    // The image's copy of the key generation job (COPY deploy/compose/hub-keygen.mjs ./deploy/hub-keygen.mjs).
    expect(fromContext).toContain('deploy/compose/hub-keygen.mjs');
    cpSync(join(ROOT, 'deploy/compose/hub-keygen.mjs'), join(dir, 'deploy/hub-keygen.mjs'));
    const data = join(scratch, 'hub-data');
    const [keygenPort, port] = await freePorts(2);
    const keygen = spawnSync(process.execPath, ['deploy/hub-keygen.mjs', join(data, 'keys'), join(scratch, 'hub-ca')], {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', KEYGEN_PORT: String(keygenPort), HUB_TLS_HOSTS: 'localhost,127.0.0.1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(keygen.status, `${keygen.stdout}${keygen.stderr}`).toBe(0);
    const ca = readFileSync(join(scratch, 'hub-ca', 'tls-ca.bundle.pem'), 'utf8');
    const child = spawn(process.execPath, command.slice(1), {
      cwd: dir,
      // No HUB_TLS: the image's default, on.
      env: { PATH: process.env['PATH'] ?? '', HUB_HOST: '127.0.0.1', HUB_PORT: String(port), HUB_DATA_DIR: data, HUB_REDIS_URL: 'off', HUB_LOG_LEVEL: 'warn', HUB_TLS_HOSTS: 'localhost,127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const get = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve) => {
        httpsGet({ host: '127.0.0.1', port, path, ca, agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        }).on('error', () => resolve({ status: 0, body: '' }));
      });
    try {
      const deadline = Date.now() + 60_000;
      let status = 0;
      while (status !== 200 && child.exitCode === null && Date.now() < deadline) {
        status = (await get('/health/live')).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      expect(status, out).toBe(200);
      // The gRPC .proto files and the authorization tables came from the copied schemas/.
      const ready = JSON.parse((await get('/health/ready')).body) as { status?: string };
      expect(ready.status).toBeDefined();
      // The image's own HEALTHCHECK speaks the hub's default, TLS: healthy; told the hub is on plain HTTP
      // while it serves TLS, unhealthy.
      expect(runHealthcheck('hub', { HUB_PORT: String(port) })).toBe(0);
      expect(runHealthcheck('hub', { HUB_PORT: String(port), HUB_TLS: 'off' })).toBe(1);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
    // Nothing listening: unhealthy.
    expect(runHealthcheck('hub', { HUB_PORT: String(port) })).toBe(1);
  });

  it('agency-node: the runtime tree runs its CLI (keys) and finds its provision schema', () => {
    const dir = assemble('agency-node');
    const { command } = runtimeCopies('agency-node');
    const r = spawnSync(process.execPath, [...command.slice(1), 'keys'], {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', AGENCY_ID: 'muroran-city', AGENCY_DATA_DIR: join(scratch, 'agency-data') },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ agencyId: 'muroran-city', answerPublicKey: expect.any(String) });
    expect(existsSync(join(dir, 'schemas/provision/provision-request.v1.schema.json'))).toBe(true);
    expect(existsSync(join(dir, 'schemas/proto'))).toBe(true);
  });

  it('portal: the runtime tree serves its built page', async () => {
    const dir = assemble('portal');
    const { command } = runtimeCopies('portal');
    const [port] = await freePorts(1);
    const child = spawn(process.execPath, command.slice(1), {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', PORTAL_HOST: '127.0.0.1', PORTAL_PORT: String(port), PORTAL_DATA_DIR: join(scratch, 'portal-data'), PORTAL_HUB_URL: 'http://127.0.0.1:9' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const deadline = Date.now() + 30_000;
      let page = '';
      while (page === '' && child.exitCode === null && Date.now() < deadline) {
        page = await fetch(`http://127.0.0.1:${port}/`).then((r) => (r.ok ? r.text() : ''), () => '');
        if (page === '') await new Promise((r) => setTimeout(r, 200));
      }
      expect(page, out).toMatch(/<html/i);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
  });

  it('auditor: the runtime tree runs its CLI', () => {
    const dir = assemble('auditor');
    const { command, workdir } = runtimeCopies('auditor');
    expect(workdir).toBe('/app');
    // The image's entrypoint names /app/dist/…: run it from the scratch tree instead.
    const main = command[1]!.replace(/^\/app\//, '');
    const r = spawnSync(process.execPath, [join(dir, main), '--help'], { cwd: dir, env: { PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verify/);
  });
});
