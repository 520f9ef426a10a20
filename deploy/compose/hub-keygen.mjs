// Generates the hub's keys and tokens into one directory, once: the hub itself makes every key it needs at
// first start, so this starts it on a throwaway embedded ledger whose keys/ is that directory, waits until it
// answers /health/live and stops it. Keys already there are kept (the hub only reads them), so it can run again.
//
//   node deploy/hub-keygen.mjs <keys dir>        (inside the hub image: /app/deploy/hub-keygen.mjs)
//
// Two hubs on one KurrentDB log must share these keys: they sign one log's checkpoints and open one log's
// sealed fields. deploy/README.md, First start.
/* global process, fetch, setTimeout */
/* eslint-disable no-restricted-syntax -- a one-shot job outside the apps: its environment is its configuration */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const target = process.argv[2];
if (target === undefined || process.argv.length > 3) {
  process.stderr.write('usage: node hub-keygen.mjs <keys dir>\n');
  process.exit(2);
}
const keysDir = resolve(target);
mkdirSync(keysDir, { recursive: true, mode: 0o700 });
const scratch = mkdtempSync(join(tmpdir(), 'hub-keygen-'));
symlinkSync(keysDir, join(scratch, 'keys'), 'dir');

// The directory holding package.json and dist/ (/app in the image, the repository otherwise).
let root = dirname(fileURLToPath(import.meta.url));
while (!existsSync(join(root, 'package.json')) && dirname(root) !== root) root = dirname(root);
const port = Number(process.env['KEYGEN_PORT'] ?? '18080');
const hub = spawn(process.execPath, [join(root, 'dist/apps/hub/src/main.js')], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: {
    PATH: process.env['PATH'] ?? '',
    HUB_DATA_DIR: scratch,
    HUB_HOST: '127.0.0.1',
    HUB_PORT: String(port),
    HUB_REDIS_URL: 'off',
    HUB_SELF_CHECK: 'off',
    HUB_LOG_LEVEL: 'warn',
    // The deployment runs its hubs with HUB_TLS=off for now (docs/tls.md): no TLS CA to make here.
    HUB_TLS: 'off',
  },
});
let exited = false;
hub.once('exit', () => (exited = true));

const deadline = Date.now() + 120_000;
let live = false;
while (!live && !exited && Date.now() < deadline) {
  live = await fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok, () => false);
  if (!live) await new Promise((r) => setTimeout(r, 250));
}
if (!exited) hub.kill('SIGTERM');
await new Promise((r) => (exited ? r() : hub.once('exit', r)));
rmSync(scratch, { recursive: true, force: true });
if (!live) {
  process.stderr.write('hub-keygen: the hub did not start; no keys were made (its output is above)\n');
  process.exit(1);
}
process.stdout.write(`hub-keygen: ${keysDir} holds ${readdirSync(keysDir).sort().join(', ')}\n`);
