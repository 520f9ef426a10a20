/**
 * `npm start` (and `start:hub`, `start:portal`) build the project only when its inputs changed since the
 * last build: a digest of every file the build reads (the apps' and libs' sources, the portal's web app,
 * the package manifests and compiler settings) is kept beside the output in dist/. A second start with
 * nothing changed takes well under a second instead of a full build; any change, a missing output or a
 * failed build means the next start builds again.
 *
 *   node --import tsx apps/demo/src/build-if-stale.ts [--force]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const STAMP = join(root, 'dist', '.build-inputs.sha256');
/** What must exist for the output to count as built. */
const OUTPUTS = ['dist/apps/demo/src/start.js', 'dist/apps/hub/src/main.js', 'dist/apps/agency-node/src/main.js', 'dist/apps/portal/src/main.js', 'dist/apps/portal/web/index.html'];
const FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'nest-cli.json'];
/** Folders whose files the build reads, and the sub-folders it does not. */
const TREES = ['apps', 'libs'];
const SKIP = new Set(['node_modules', 'test', 'dist', 'public-test']);

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP.has(entry.name)) yield* sources(join(dir, entry.name));
    } else if (entry.isFile() && !entry.name.endsWith('.spec.ts') && !entry.name.endsWith('.md')) {
      yield join(dir, entry.name);
    }
  }
}

/** The digest of every input, by relative path, in a stable order. */
export function inputsDigest(base = root): string {
  const files = [...FILES.map((f) => join(base, f)).filter((f) => existsSync(f)), ...TREES.flatMap((t) => [...sources(join(base, t))])].sort();
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(relative(base, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

function main(): void {
  const force = process.argv.includes('--force');
  const digest = inputsDigest();
  const built = OUTPUTS.every((o) => existsSync(join(root, o)));
  const previous = existsSync(STAMP) ? readFileSync(STAMP, 'utf8').trim() : undefined;
  if (!force && built && previous === digest) {
    console.log('build: up to date (no source changed since the last build; `npm run build` forces one)');
    return;
  }
  console.log(built ? 'build: sources changed since the last build, building' : 'build: no complete build yet, building');
  rmSync(STAMP, { force: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  writeFileSync(STAMP, `${digest}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
