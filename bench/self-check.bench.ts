/**
 * The hub's self-check over a 1,000,000-event ledger: the log is written with a bare better-sqlite3
 * transaction (canonical envelopes as the ledger stores them, checkpoints every 100,000 events signed
 * with a checkpoint key written where the hub reads it), its tree tiles by MerkleTreeProjection, then
 * checkStoredLog re-hashes it whole (what a hub does at start below HUB_SELF_CHECK_FULL_MAX_EVENTS) and
 * from a mark 10,000 events below the head. With --hub (after `npm run build`) it also starts the built
 * hub on the file and times start → /health/ready 200 with the self-check on and off.
 * Last line: one JSON object.
 *   npm run bench:self-check [-- --events 1000000 --threads 2 --hub]
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSigningKey } from '#audit-log';
import { MerkleTreeProjection, checkStoredLog, defaultCheckpointOrigin } from '#ledger';
import { writeSyntheticLog } from './support/synthetic-log.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    'checkpoint-every': { type: 'string', default: '100000' },
    threads: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    hub: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const EVENTS = Number(values.events);
const EVERY = Number(values['checkpoint-every']);
const THREADS = values.threads === undefined ? Math.min(availableParallelism(), 4) : Number(values.threads);
const dir = mkdtempSync(join(tmpdir(), 'bench-self-check-'));
const dataDir = join(dir, 'data');
const path = join(dataDir, 'ledger.sqlite');
const key = generateSigningKey();

function buildLog(): { checkpoints: number; seconds: number; bytes: number } {
  const started = process.hrtime.bigint();
  mkdirSync(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
  // The hub's own key file: it verifies every CheckpointSigned note with its public half.
  writeFileSync(
    join(dataDir, 'keys', 'checkpoint-signing.key.json'),
    JSON.stringify({ purpose: 'checkpoint-signing', alg: 'Ed25519', key: Buffer.from(key.privateKey).toString('base64url'), createdAt: new Date().toISOString() }),
    { mode: 0o600 },
  );
  const log = writeSyntheticLog({ path, events: EVENTS, checkpointEvery: EVERY, origin: defaultCheckpointOrigin(1), privateKey: key.privateKey });
  // The tree tables, as a hub's writer would have left them.
  const tree = new MerkleTreeProjection({ source: path, stepEvents: 65_536 });
  tree.catchUp();
  tree.close();
  const wal = new Database(path);
  wal.pragma('wal_checkpoint(TRUNCATE)');
  wal.close();
  return { checkpoints: log.checkpoints, seconds: Number(process.hrtime.bigint() - started) / 1e9, bytes: log.bytes };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeCheck(from: number): Promise<{ seconds: number; checked: number; checkpoints: number }> {
  const report = await checkStoredLog({ path, publicKey: key.publicKey, from, threads: THREADS });
  if (report.findingCount > 0) throw new Error(`the self-check found ${report.findingCount} problem(s) in a sound log: ${JSON.stringify(report.findings[0])}`);
  return { seconds: report.seconds, checked: report.checked, checkpoints: report.checkpoints };
}

/** Starts the built hub on the file; seconds from spawn to /health/ready 200. It stops after `lingerMs`. */
async function timeHubStart(env: Record<string, string>, lingerMs = 0): Promise<number> {
  const main = resolve('dist/apps/hub/src/main.js');
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env['PATH'] ?? '', HUB_DATA_DIR: dataDir, HUB_PORT: '0', HUB_REDIS_URL: 'off', HUB_AUTHORIZATION_TABLE_FILE: 'none', HUB_CHECKPOINT_EVERY_MS: '3600000', HUB_TLS: 'off', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  try {
    for (;;) {
      const url = /listening on (http:\/\/[^\s]+?)(?:,| \()/.exec(out)?.[1];
      if (url !== undefined && (await fetch(`${url}/health/ready`).catch(() => undefined))?.status === 200) break;
      if (child.exitCode !== null) throw new Error(`the hub exited: ${out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await new Promise((r) => setTimeout(r, lingerMs));
    return seconds;
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

try {
  const built = buildLog();
  console.log(`built a ${EVENTS.toLocaleString('en')}-event log with its tree (${(built.bytes / 1e6).toFixed(0)} MB of envelopes, ${built.checkpoints} signed checkpoints) in ${built.seconds.toFixed(1)} s`);
  const rounds = Number(values.rounds);
  const whole: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = await timeCheck(0);
    whole.push(r.seconds);
    console.log(`whole check: ${r.checked.toLocaleString('en')} events re-hashed, ${r.checkpoints} checkpoints verified in ${r.seconds.toFixed(2)} s (${THREADS} threads)`);
  }
  const mark = await timeCheck(EVENTS - 10_000);
  console.log(`from a mark 10,000 below the head: ${mark.checked.toLocaleString('en')} events, ${mark.checkpoints} checkpoint(s) in ${mark.seconds.toFixed(3)} s`);
  const result: Record<string, unknown> = { bench: 'self-check', events: EVENTS, threads: THREADS, whole_s: Number(median(whole).toFixed(3)), since_mark_s: Number(mark.seconds.toFixed(3)) };
  if (values.hub) {
    if (!existsSync('dist/apps/hub/src/main.js')) throw new Error('--hub needs the built hub: npm run build');
    // A first start indexes the log's keys and lets the projections follow the new log (they run in the
    // background), so that the timed starts measure the check and not that one-off work.
    const warm = await timeHubStart({ HUB_SELF_CHECK: 'off' }, 45_000);
    console.log(`hub warm-up start: ready in ${warm.toFixed(2)} s, then left running 45 s so that its projections follow the log`);
    const on: number[] = [];
    const off: number[] = [];
    for (let i = 0; i < rounds; i++) {
      off.push(await timeHubStart({ HUB_SELF_CHECK: 'off' }));
      on.push(await timeHubStart({ HUB_SELF_CHECK: 'on' }));
      console.log(`hub start to ready: self-check off ${off.at(-1)!.toFixed(2)} s, on ${on.at(-1)!.toFixed(2)} s`);
    }
    result['hub_ready_off_s'] = Number(median(off).toFixed(3));
    result['hub_ready_on_s'] = Number(median(on).toFixed(3));
  }
  console.log(JSON.stringify(result));
} finally {
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  else console.error(`kept ${dir}`);
}
