import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { querySerialFile, ROOT, startNetwork, type Network } from '../src/network.js';
import { freePorts } from '../../../test/support/free-ports.js';

/**
 * The auditor commands of apps/auditor/README.md, run as written (only `npm run [-s] auditor --` becomes
 * `node dist/apps/auditor/src/main.js`, and port 8080 the test's port) against the demo network that
 * `npm start` runs and the query `npm run demo` makes, from a directory whose `data/` is the demo's data.
 */

const AUDITOR = join(ROOT, 'dist/apps/auditor/src/main.js');
const DEMO = join(ROOT, 'dist/apps/demo/src/demo.js');

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function sh(command: string, cwd: string, env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((done) => {
    const child = spawn('bash', ['-eo', 'pipefail', '-c', command], { cwd, env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('exit', (code) => done({ code, stdout, stderr }));
  });
}

/** A port p with p, p + 1 and p + 2 free: `npm run demo` finds the intermediate servers at the hub's port + 1 and + 2, as `npm start` puts them. */
async function freeRun(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await free(base)) && (await free(base + 1)) && (await free(base + 2))) return base;
  }
  throw new Error('no three consecutive free ports');
}

/** The first `sh` block of a README (after `heading`, when given), one command per line (comments kept: bash ignores them). */
function firstShellBlock(readme: string, heading?: string): string[] {
  const text = readFileSync(join(ROOT, readme), 'utf8');
  const from = heading === undefined ? 0 : text.indexOf(`\n${heading}\n`);
  if (from < 0) throw new Error(`${readme} has no ${heading}`);
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(from))?.[1];
  if (block === undefined) throw new Error(`${readme} has no sh block`);
  return block.split('\n').filter((line) => line.trim() !== '');
}

let work: string;
let dataDir: string;
let network: Network;
let hubPort: number;
let auditorLines: string[];

const asRun = (line: string) => line.replaceAll(/npm run (?:-s )?auditor --/g, `node ${AUDITOR}`).replaceAll('8080', String(hubPort));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'readme-commands-'));
  dataDir = join(work, 'data');
  mkdirSync(dataDir);
  hubPort = await freeRun();
  network = await startNetwork({
    dataDir,
    hubPort,
    nodePorts: { 'jpn-pension-service': hubPort + 1, 'muroran-city': hubPort + 2 },
    log: () => {},
    // A checkpoint soon after the demo's query (the default is every 10 s).
    hubEnv: { HUB_REDIS_URL: 'off', HUB_CHECKPOINT_EVERY_MS: '500' },
  });
  auditorLines = firstShellBlock('apps/auditor/README.md');
});

afterAll(async () => {
  await network?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe("the READMEs' commands on the demo data", () => {
  let serial: string;

  it('npm run demo makes the seeds/001 query and keeps its serial in data/demo/query.serial, and shows the seeds/003 push: update, push, fetch, her record', async () => {
    const demo = await sh(`node ${DEMO}`, work, { HUB_DATA_DIR: dataDir, HUB_PORT: String(hubPort) });
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toContain('outcome: answered');
    serial = readFileSync(querySerialFile(dataDir), 'utf8').trim();
    expect(serial).toMatch(/^\d{20}$/);
    expect(demo.stdout).toContain(`processing serial (処理通番): ${serial}`);
    // seeds/003: Muroran City's update pushed to the subscribed pension service, which fetched the new value.
    expect(demo.stdout).toContain('4. 公共サービスメッシュ');
    const pushSerial = /push serial (\d{20})/.exec(demo.stdout)?.[1];
    const fetchSerial = /fetches the new value by an ordinary lawful query: serial (\d{20}), outcome answered/.exec(demo.stdout)?.[1];
    expect(pushSerial, demo.stdout).toBeDefined();
    expect(fetchSerial, demo.stdout).toBeDefined();
    expect(demo.stdout).toContain('"taxableIncome": 2980000');
    const pushes = (await (await fetch(`${network.hubUrl}/v1/citizens/me/push-records`, { headers: { authorization: `Bearer ${network.aoyama.citizenSecret}` } })).json()) as { pushes: { serial: string; status: string; subscriber: { agencyId: string }; provider: { agencyId: string }; itemCode: string }[] };
    expect(pushes.pushes.find((p) => p.serial === pushSerial)).toMatchObject({ status: 'delivered', subscriber: { agencyId: 'jpn-pension-service' }, provider: { agencyId: 'muroran-city' }, itemCode: 'local-tax' });
    const nodeRecords = (await (await fetch(`${network.nodeUrl('jpn-pension-service')}/v1/provision-records?role=requested`)).json()) as { records: { serial: string; outcome: string; counterpartAgencyId: string }[] };
    expect(nodeRecords.records.find((r) => r.serial === fetchSerial)).toMatchObject({ outcome: 'answered', counterpartAgencyId: 'muroran-city' });
    // The hub signs a checkpoint covering the query (the auditor proves against the first that does).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await fetch(`${network.hubUrl}/v1/audit/proofs/inclusion?serial=${serial}`);
      const body = (await res.json()) as { size?: number; proofs?: { position: number }[] };
      const signed = (await (await fetch(`${network.hubUrl}/v1/audit/checkpoint?format=json`)).json()) as { size?: number };
      if (res.status === 200 && signed.size !== undefined && signed.size > Math.max(...body.proofs!.map((p) => p.position))) break;
      if (Date.now() > deadline) throw new Error(`no checkpoint covers serial ${serial}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it('apps/auditor/README.md: every command of its first block runs as written and says what it found', async () => {
    const expected: [RegExp, (ran: Ran) => void][] = [
      [/verifier-key > hub\.vkey/, () => expect(readFileSync(join(work, 'hub.vkey'), 'utf8')).toMatch(/^linkage-ledger\.example\/hub\/01\+[0-9a-f]{8}\+/)],
      [/verify --db/, (ran) => expect(ran.stdout).toMatch(/^OK: every leaf, root, signature, position, revision and serial checks out, and every accepted query was lawful$/m)],
      [
        /verify --hub .*--json > report\.json/,
        () => expect(JSON.parse(readFileSync(join(work, 'report.json'), 'utf8'))).toMatchObject({ ok: true, firstFailure: null }),
      ],
      [/prove --db/, (ran) => expect(ran.stdout).toContain(`wrote proof.json: 4 event(s) of serial ${serial}`)],
      [
        /verify-proof/,
        (ran) => {
          expect(ran.stdout).toContain(`OK: 4 event(s) of serial ${serial} are in the log`);
          expect(ran.stdout).toContain('QueryCompleted (completed)');
        },
      ],
      [
        /replay --db/,
        (ran) => {
          expect(ran.stdout).toContain('OK: the rebuilt tree equals the live one');
          expect(ran.stdout).toContain('OK: the rebuilt provision records equal the live ones');
        },
      ],
    ];
    expect(auditorLines).toHaveLength(expected.length);
    for (const [i, line] of auditorLines.entries()) {
      const [pattern, check] = expected[i]!;
      expect(line).toMatch(pattern);
      const ran = await sh(asRun(line), work);
      expect(ran.code, `${line}\n${ran.stdout}\n${ran.stderr}`).toBe(0);
      check(ran);
    }
    expect(existsSync(join(work, 'proof.json'))).toBe(true);
  });

  it('apps/auditor/README.md, consistency: the two notes, more events between them, the proof from the hub and from a file', async () => {
    const lines = firstShellBlock('apps/auditor/README.md', '## consistency');
    expect(lines).toHaveLength(5);
    const demo = `HUB_DATA_DIR=${dataDir} HUB_PORT=${hubPort} node ${DEMO} > /dev/null`;
    const outputs: string[] = [];
    for (const line of lines) {
      const ran = await sh(asRun(line).replaceAll('npm run demo', demo), work);
      expect(ran.code, `${line}\n${ran.stdout}\n${ran.stderr}`).toBe(0);
      outputs.push(ran.stdout);
    }
    const size = (note: string) => Number(readFileSync(join(work, note), 'utf8').split('\n')[1]);
    expect(size('new.note')).toBeGreaterThan(size('old.note'));
    expect(outputs[2]).toMatch(/^OK: the checkpoint of size \d+ is a prefix of the checkpoint of size \d+/m);
    expect(JSON.parse(outputs[4]!)).toMatchObject({ ok: true, failure: null });
  });

  it('apps/agency-node/README.md: a new agency made, registered with its key and serving, as its first block says', async () => {
    const [nodePort] = await freePorts(1);
    const text = readFileSync(join(ROOT, 'apps/agency-node/README.md'), 'utf8');
    const block = /```sh\n([\s\S]*?)```/.exec(text)![1]!.replaceAll('\\\n', ' ');
    const lines = block.split('\n').filter((line) => line.trim() !== '' && line !== 'npm run build');
    const serve = lines.pop()!;
    expect(serve).toMatch(/main\.js serve$/);
    const script = [
      ...lines,
      `${serve} > serve.log 2>&1 & pid=$!`,
      `for _ in $(seq 1 100); do curl -sf 127.0.0.1:${nodePort}/health/live > /dev/null && break; sleep 0.1; done`,
      `curl -sf 127.0.0.1:${nodePort}/health/live; status=$?; kill $pid; exit $status`,
    ]
      .map((line) => line.replaceAll('dist/apps/', `${ROOT}/dist/apps/`).replaceAll('apps/agency-node/demo/', `${ROOT}/apps/agency-node/demo/`).replaceAll('8080', String(hubPort)).replaceAll('8091', String(nodePort)))
      .join('\n');
    const ran = await sh(script, work);
    expect(ran.code, `${ran.stdout}\n${ran.stderr}\n${readFileSync(join(work, 'serve.log'), 'utf8')}`).toBe(0);
    expect(ran.stdout).toContain('answerPublicKey');
    const agency = (await (await fetch(`${network.hubUrl}/v1/agencies/sapporo-city`)).json()) as Record<string, unknown>;
    expect(agency).toMatchObject({ agencyId: 'sapporo-city', status: 'active' });
  });

  it("apps/hub/README.md: the operator's self-check, asked and read back", async () => {
    const text = readFileSync(join(ROOT, 'apps/hub/README.md'), 'utf8');
    const block = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('/v1/audit/self-checks'));
    expect(block).toBeDefined();
    const ran = await sh(block!.replaceAll('8080', String(hubPort)), work);
    expect(ran.code, ran.stderr).toBe(0);
    expect(JSON.parse(ran.stdout)).toMatchObject({ kind: 'requested', status: expect.stringMatching(/^(running|passed)$/) });
  });

  it("the proof file is of the demo query's serial", async () => {
    const proof = JSON.parse(readFileSync(join(work, 'proof.json'), 'utf8')) as { serial: string; format?: string };
    expect(proof.serial).toBe(serial);
  });
});
