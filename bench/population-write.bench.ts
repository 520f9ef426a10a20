/**
 * The population writer alone (bench/support/population-log.ts), as `npm run bench:population` writes its
 * logs: events per second and CPU µs per event (all the writer's threads) over a log of N people written
 * into a fresh copy of a hub data directory whose hub registered the two agencies (made once, by the
 * built hub, dist/, and kept in --dir as `population-write-template/`). The look-ups file is folded as in the bench.
 *   node --max-semi-space-size=64 --conditions=source --import tsx bench/population-write.bench.ts [-- --people 20000 --seal-threads 0 --group 2000 --in-flight 3 --nice 10 --dir .bench]
 * Run it under `node --cpu-prof` to see where the writer's time goes. Last line: one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateAnswerKeyPair } from '#sealed-answer';
import { REPO_ROOT } from '../load-tests/runner/processes.js';
import { operatorToken, registerAgencies } from '../load-tests/runner/setup.js';
import { startHub } from './support/population-hub.js';
import { writePeople } from './support/population-log.js';

const { values } = parseArgs({
  options: {
    people: { type: 'string', default: '20000' },
    'seal-threads': { type: 'string', default: '0' },
    lookups: { type: 'boolean', default: true },
    group: { type: 'string', default: '2000' },
    'in-flight': { type: 'string', default: '3' },
    nice: { type: 'string' },
    dir: { type: 'string', default: '.bench' },
  },
});
const PEOPLE = Number(values.people);
const THREADS = Number(values['seal-threads']);
const BENCH_DIR = resolve(REPO_ROOT, values.dir!);
const TEMPLATE = join(BENCH_DIR, 'population-write-template');
const DIR = join(BENCH_DIR, `population-write-${process.pid}`);

if (!existsSync(join(TEMPLATE, 'ready'))) {
  rmSync(TEMPLATE, { recursive: true, force: true });
  mkdirSync(TEMPLATE, { recursive: true, mode: 0o700 });
  const hub = await startHub({ dataDir: TEMPLATE, env: { HUB_LOG_LEVEL: 'log', HUB_TLS: 'off', HUB_REDIS_URL: 'off', HUB_CHECKPOINT_EVERY_MS: '3600000' }, source: false, readyTimeoutMs: 300_000, cwd: REPO_ROOT });
  try {
    await registerAgencies(hub.url, operatorToken(TEMPLATE), 'http://127.0.0.1:9', (await generateAnswerKeyPair()).publicKey);
  } finally {
    await hub.stop();
  }
  mkdirSync(join(TEMPLATE, 'ready'));
}
cpSync(TEMPLATE, DIR, { recursive: true });
const load = loadavg()[0]!;
try {
  const written = await writePeople({ dataDir: DIR, nodeId: 1, people: PEOPLE, seedHex: randomBytes(32).toString('hex'), sealThreads: THREADS, lookups: values.lookups!, group: Number(values.group), groupsInFlight: Number(values['in-flight']), ...(values.nice === undefined ? {} : { nice: Number(values.nice) }) });
  const result = {
    bench: 'population-write',
    people: PEOPLE,
    events: written.events,
    seconds: Number(written.seconds.toFixed(2)),
    events_per_s: Math.round(written.events / written.seconds),
    cpu_us_per_event: Number((((written.cpuSeconds ?? 0) * 1e6) / written.events).toFixed(1)),
    seal_threads: THREADS,
    phases: written.phases,
    group: Number(values.group),
    groups_in_flight: Number(values['in-flight']),
    load_avg_1m_before: Number(load.toFixed(2)),
    load_avg_1m_after: Number(loadavg()[0]!.toFixed(2)),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  rmSync(DIR, { recursive: true, force: true });
}
