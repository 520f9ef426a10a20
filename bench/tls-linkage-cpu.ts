/**
 * CPU per query with HUB_TLS=on against HUB_TLS=off, in the same run: the demo network (the hub and both
 * intermediate servers, built, each its own process) brought up once per mode in a fresh data dir, the
 * same number of lawful queries (pension service → Muroran City, local tax, answer encrypted) sent
 * through the pension service's intermediate server at a fixed concurrency, and each process's CPU
 * (user + system, /proc/<pid>/stat) per query reported. CPU per query, not wall rate: the machine is shared.
 * Few long-lived connections (--concurrency), so a handshake is spread over many queries. The rates and p99
 * under load, TLS against plain HTTP in one run, come from `npm run load:linkage -- --tls both` (load-tests/).
 *
 *   npm run build && node --import tsx bench/tls-linkage-cpu.ts [--queries 600] [--concurrency 8] [--rounds 2]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tlsFetch } from '../apps/agency-node/src/hub/tls-fetch.js';
import { startNetwork, type Network } from '../apps/demo/src/network.js';

const { values } = parseArgs({ options: { queries: { type: 'string', default: '600' }, concurrency: { type: 'string', default: '8' }, rounds: { type: 'string', default: '2' } } });
const QUERIES = Number(values.queries);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const TICK_MS = 10; // USER_HZ = 100 on Linux

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

async function drive(network: Network, web: typeof fetch, n: number): Promise<void> {
  const url = `${network.nodeUrl('jpn-pension-service')}/v1/queries`;
  const body = JSON.stringify({ localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], encrypt: true });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const res = await web(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const answer = (await res.json()) as { outcome?: string };
      if (res.status !== 200 || answer.outcome !== 'answered') throw new Error(`query ${res.status}: ${JSON.stringify(answer)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

interface Figures {
  readonly perQueryMs: Record<string, number>;
  readonly wallRate: number;
}

async function measure(tls: boolean): Promise<Figures> {
  const dataDir = mkdtempSync(join(tmpdir(), `tls-cpu-${tls ? 'on' : 'off'}-`));
  const hubPort = 20_000 + Math.floor(Math.random() * 20_000);
  const network = await startNetwork({
    dataDir,
    hubPort,
    nodePorts: { 'jpn-pension-service': hubPort + 1, 'muroran-city': hubPort + 2 },
    log: () => {},
    hubEnv: { HUB_TLS: tls ? 'on' : 'off', HUB_REDIS_URL: 'off', HUB_LOG_LEVEL: 'warn' },
  });
  try {
    const web = tls ? tlsFetch({ caCertificatePem: readFileSync(join(dataDir, 'keys', 'tls-ca.cert.pem'), 'utf8') }) : (i: string | URL | Request, init?: RequestInit) => fetch(i, init);
    await drive(network, web as typeof fetch, Math.min(100, QUERIES)); // warm-up
    const pids = Object.fromEntries(network.processes.map((p) => [p.name, p.child.pid!]));
    const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMs(pid)]));
    const started = process.hrtime.bigint();
    await drive(network, web as typeof fetch, QUERIES);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const perQueryMs = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, (cpuMs(pid) - before[name]!) / QUERIES]));
    return { perQueryMs, wallRate: QUERIES / seconds };
  } finally {
    await network.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const tls of [false, true]) {
    const f = await measure(tls);
    const total = Object.values(f.perQueryMs).reduce((a, b) => a + b, 0);
    const line = `round ${round} HUB_TLS=${tls ? 'on ' : 'off'}  CPU ms/query: ${Object.entries(f.perQueryMs).map(([n, ms]) => `${n} ${ms.toFixed(2)}`).join(', ')}, all ${total.toFixed(2)}  (loaded wall rate ${f.wallRate.toFixed(0)}/s)`;
    rows.push(line);
    process.stdout.write(`${line}\n`);
  }
}
process.stdout.write(`\n${rows.join('\n')}\n`);
