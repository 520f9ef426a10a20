// Generates the hub's keys and tokens into one directory, once: the hub itself makes every key it needs at
// first start, so this starts it on a throwaway embedded ledger whose keys/ is that directory, waits until it
// answers /health/live and stops it. Keys already there are kept (the hub only reads them), so it can run again.
//
//   node deploy/hub-keygen.mjs <keys dir> [<CA dir>]        (inside the hub image: /app/deploy/hub-keygen.mjs)
//
// TLS (docs/tls.md, deploy/README.md): with the keys comes the hubs' one certificate authority, made as a hub
// makes it at its first start with HUB_TLS=on: `tls-ca.key.json` (the CA's key, 0600), `tls-ca.cert.pem` and
// `tls-ca.bundle.pem` (public: what clients trust), and `tls-hub.key.json` (0600), the certificate every hub
// of the deployment serves, for the names in HUB_TLS_HOSTS (the deployment's list: its service names) plus
// HUB_HOST (the deployment's, default 127.0.0.1) and 127.0.0.1. A hub given the same HUB_TLS_HOSTS and
// HUB_HOST finds it made for its names and serves it as it is. The CA is made only when the keys dir has none:
// run again after a rotation of the CA (POST /v1/key-rotations/tls-ca) it leaves the hubs' CA files alone.
// With <CA dir>, the public `tls-ca.bundle.pem` and `tls-ca.cert.pem` are copied there (0644) for the
// clients that must not see the keys (the portal, the router, Prometheus); run again, it copies the current ones.
//
// Two hubs on one KurrentDB log must share these keys: they sign one log's checkpoints, open one log's
// sealed fields and serve certificates of one CA. deploy/README.md, First start.
/* global process, fetch, setTimeout */
/* eslint-disable no-restricted-syntax -- a one-shot job outside the apps: its environment is its configuration */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, get } from 'node:https';

const target = process.argv[2];
if (target === undefined || process.argv.length > 4) {
  process.stderr.write('usage: node hub-keygen.mjs <keys dir> [<CA dir>]\n');
  process.exit(2);
}
const keysDir = resolve(target);
const caDir = process.argv[3] === undefined ? undefined : resolve(process.argv[3]);
mkdirSync(keysDir, { recursive: true, mode: 0o700 });
const scratch = mkdtempSync(join(tmpdir(), 'hub-keygen-'));
symlinkSync(keysDir, join(scratch, 'keys'), 'dir');

// The CA is made once: afterwards the hubs keep its files (a rotation adds tls-ca.<id>.key.json and rewrites
// the public ones), which a throwaway hub without the log's rotations must not touch.
const makeCa = !existsSync(join(keysDir, 'tls-ca.key.json'));
// The names of the hub's certificate, as a hub with the deployment's HUB_TLS_HOSTS and HUB_HOST computes them
// (the throwaway hub listens on 127.0.0.1, which it adds to them).
const hosts = [...new Set([...(process.env['HUB_TLS_HOSTS'] ?? 'localhost,127.0.0.1,::1').split(','), process.env['HUB_HOST'] ?? '127.0.0.1', '127.0.0.1'].map((h) => h.trim()).filter((h) => h !== ''))];

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
    ...(makeCa ? { HUB_TLS: 'on', HUB_TLS_HOSTS: hosts.join(',') } : { HUB_TLS: 'off' }),
  },
});
let exited = false;
hub.once('exit', () => (exited = true));

// Over TLS the throwaway hub serves a certificate of the CA it has just made: /health/live is asked without
// checking it (the answer proves only that the hub started and made its keys; nothing is sent).
const insecure = new Agent({ rejectUnauthorized: false });
const alive = () =>
  makeCa
    ? new Promise((done) => get({ host: '127.0.0.1', port, path: '/health/live', agent: insecure }, (r) => (r.resume(), done(r.statusCode === 200))).on('error', () => done(false)))
    : fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok, () => false);
const deadline = Date.now() + 120_000;
let live = false;
while (!live && !exited && Date.now() < deadline) {
  live = await alive();
  if (!live) await new Promise((r) => setTimeout(r, 250));
}
if (!exited) hub.kill('SIGTERM');
await new Promise((r) => (exited ? r() : hub.once('exit', r)));
insecure.destroy();
rmSync(scratch, { recursive: true, force: true });
if (!live) {
  process.stderr.write('hub-keygen: the hub did not start; no keys were made (its output is above)\n');
  process.exit(1);
}
if (caDir !== undefined) {
  mkdirSync(caDir, { recursive: true, mode: 0o755 });
  // Readable by every client's user (the router's, Prometheus'): a volume made from the image's /data is 0700.
  chmodSync(caDir, 0o755);
  for (const file of ['tls-ca.bundle.pem', 'tls-ca.cert.pem']) {
    copyFileSync(join(keysDir, file), join(caDir, file));
    chmodSync(join(caDir, file), 0o644);
  }
  process.stdout.write(`hub-keygen: ${caDir} holds tls-ca.bundle.pem, tls-ca.cert.pem (public: what clients trust)\n`);
}
process.stdout.write(`hub-keygen: ${keysDir} holds ${readdirSync(keysDir).sort().join(', ')}${makeCa ? `; the hubs' certificate names ${hosts.join(', ')}` : ''}\n`);
