import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsFetch } from '../../agency-node/src/hub/tls-fetch.js';
import { personFile, querySerialFile, ROOT, type DemoPerson } from '../src/network.js';
import { freePorts } from '../../../test/support/free-ports.js';

/**
 * The commands of the READMEs (README.md, apps/auditor/README.md, apps/agency-node/README.md,
 * apps/hub/README.md), run as written against the network that `npm start` runs with its defaults (TLS on:
 * the demo CA in data/keys/tls-ca.cert.pem) and the query `npm run demo` makes, from a directory whose
 * `data/` is the demo's data. Only `npm run [-s] auditor --` becomes `node dist/apps/auditor/src/main.js`,
 * `npm start` / `npm run demo` their built scripts, and port 8080 (9090, 3300) the test's ports.
 */

const AUDITOR = join(ROOT, 'dist/apps/auditor/src/main.js');
const START = join(ROOT, 'dist/apps/demo/src/start.js');
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

/** A port p with p, p + 1 and p + 2 free: `npm start` puts the intermediate servers at the hub's port + 1 and + 2, where `npm run demo` finds them. */
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

/** The `sh` blocks of a README, in order. */
function shellBlocks(readme: string): string[] {
  return [...readFileSync(join(ROOT, readme), 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
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
let hubPort: number;
let grpcPort: number;
let portalPort: number;
let start: ChildProcess | undefined;
let startOutput = '';
let hubUrl: string;
let aoyama: DemoPerson;
let auditorLines: string[];
/** A fetch that trusts the demo CA, as `NODE_EXTRA_CA_CERTS=data/keys/tls-ca.cert.pem` makes Node's. */
let trusting: typeof fetch;

const asRun = (line: string) =>
  line
    .replaceAll(/npm run (?:-s )?auditor --/g, `node ${AUDITOR}`)
    .replaceAll('8080', String(hubPort))
    .replaceAll('9090', String(grpcPort))
    .replaceAll('3300', String(portalPort));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'readme-commands-'));
  dataDir = join(work, 'data');
  hubPort = await freeRun();
  [grpcPort, portalPort] = (await freePorts(2)) as [number, number];
  // `npm start` from a fresh directory, with its defaults (TLS on, ./data) but the test's ports; no
  // Redis, and a checkpoint soon after the demo's query (the default is every 10 s).
  start = spawn(process.execPath, [START], {
    cwd: work,
    env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', HUB_PORT: String(hubPort), HUB_GRPC_PORT: String(grpcPort), PORTAL_PORT: String(portalPort), HUB_REDIS_URL: 'off', HUB_CHECKPOINT_EVERY_MS: '500' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  start.stdout!.on('data', (c: Buffer) => (startOutput += c.toString('utf8')));
  start.stderr!.on('data', (c: Buffer) => (startOutput += c.toString('utf8')));
  const exited = new Promise<void>((done) => start!.once('exit', () => done()));
  const deadline = Date.now() + 150_000;
  let ended = false;
  void exited.then(() => (ended = true));
  while (!startOutput.includes('Now, in another terminal: npm run demo')) {
    if (ended || Date.now() > deadline) throw new Error(`npm start did not come up:\n${startOutput}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  hubUrl = `https://127.0.0.1:${hubPort}`;
  trusting = tlsFetch({ caCertificatePem: readFileSync(join(dataDir, 'keys', 'tls-ca.cert.pem'), 'utf8') });
  aoyama = JSON.parse(readFileSync(personFile(dataDir), 'utf8')) as DemoPerson;
  auditorLines = firstShellBlock('apps/auditor/README.md');
}, 180_000);

afterAll(async () => {
  if (start !== undefined && start.exitCode === null) {
    const exited = new Promise((done) => start!.once('exit', done));
    start.kill('SIGTERM');
    await exited;
  }
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe("the READMEs' commands on the demo data", () => {
  let serial: string;

  it('npm run demo makes the seeds/001 query and keeps its serial in data/demo/query.serial, and shows the seeds/003 push: update, push, fetch, her record', async () => {
    // `npm run demo` from the same directory: ./data, TLS on (the demo CA), only the port told.
    const demo = await sh(`node ${DEMO}`, work, { HUB_PORT: String(hubPort) });
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
    const pushes = (await (await trusting(`${hubUrl}/v1/citizens/me/push-records`, { headers: { authorization: `Bearer ${aoyama.citizenSecret}` } })).json()) as { pushes: { serial: string; status: string; subscriber: { agencyId: string }; provider: { agencyId: string }; itemCode: string }[] };
    expect(pushes.pushes.find((p) => p.serial === pushSerial)).toMatchObject({ status: 'delivered', subscriber: { agencyId: 'jpn-pension-service' }, provider: { agencyId: 'muroran-city' }, itemCode: 'local-tax' });
    const nodeRecords = (await (await trusting(`https://127.0.0.1:${hubPort + 1}/v1/provision-records?role=requested`)).json()) as { records: { serial: string; outcome: string; counterpartAgencyId: string }[] };
    expect(nodeRecords.records.find((r) => r.serial === fetchSerial)).toMatchObject({ outcome: 'answered', counterpartAgencyId: 'muroran-city' });
    // The hub signs a checkpoint covering the query (the auditor proves against the first that does).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await trusting(`${hubUrl}/v1/audit/proofs/inclusion?serial=${serial}`);
      const body = (await res.json()) as { size?: number; proofs?: { position: number }[] };
      const signed = (await (await trusting(`${hubUrl}/v1/audit/checkpoint?format=json`)).json()) as { size?: number };
      if (res.status === 200 && signed.size !== undefined && signed.size > Math.max(...body.proofs!.map((p) => p.position))) break;
      if (Date.now() > deadline) throw new Error(`no checkpoint covers serial ${serial}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it('README.md: npm start runs over TLS by default and says how to trust the demo CA; the README\'s trust commands run as written', async () => {
    expect(startOutput).toContain(`hub                  https://127.0.0.1:${hubPort}`);
    expect(startOutput).toContain(`https://127.0.0.1:${hubPort + 2}   (intermediate server)`);
    expect(startOutput).toContain(`curl --cacert ${join('data', 'keys', 'tls-ca.cert.pem')} https://127.0.0.1:${hubPort}/health/ready`);
    const block = shellBlocks('README.md').find((b) => b.includes('NODE_EXTRA_CA_CERTS'));
    expect(block).toBeDefined();
    const lines = block!.split('\n').filter((line) => line.trim() !== '');
    expect(lines).toHaveLength(2);
    const curl = await sh(asRun(lines[0]!), work);
    expect(curl.code, curl.stderr).toBe(0);
    expect(JSON.parse(curl.stdout)).toMatchObject({ status: expect.stringMatching(/^(ready|degraded)$/) });
    const node = await sh(asRun(lines[1]!), work);
    expect(node.code, node.stderr).toBe(0);
    expect(node.stdout.trim()).toBe('200');
    // Without the demo CA, or over plain HTTP, nothing answers: the hub serves HTTPS only.
    expect((await sh(asRun('curl -s https://127.0.0.1:8080/health/ready'), work)).code).toBe(60);
    expect((await sh(asRun('curl -sf http://127.0.0.1:8080/health/ready'), work)).code).not.toBe(0);
  });

  it('README.md: the auditor commands of "Tamper evidence" run as written over TLS', async () => {
    const block = shellBlocks('README.md').find((b) => b.includes('auditor -- verify-proof'));
    expect(block).toBeDefined();
    const lines = block!.split('\n').filter((line) => line.trim() !== '');
    expect(lines).toHaveLength(3);
    const outputs: string[] = [];
    for (const line of lines) {
      const ran = await sh(asRun(line), work);
      expect(ran.code, `${line}\n${ran.stdout}\n${ran.stderr}`).toBe(0);
      outputs.push(ran.stdout);
    }
    expect(outputs[0]).toMatch(/^OK: every leaf, root, signature, position, revision and serial checks out/m);
    expect(outputs[1]).toContain(`wrote proof.json: 4 event(s) of serial ${serial}`);
    expect(outputs[2]).toContain(`OK: 4 event(s) of serial ${serial} are in the log`);
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
    const demo = `HUB_PORT=${hubPort} node ${DEMO} > /dev/null`;
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
      // The node serves HTTPS with the certificate its registration answered (of the demo CA).
      `for _ in $(seq 1 100); do curl -sf --cacert data/keys/tls-ca.cert.pem https://127.0.0.1:${nodePort}/health/live > /dev/null && break; sleep 0.1; done`,
      `curl -sf --cacert data/keys/tls-ca.cert.pem https://127.0.0.1:${nodePort}/health/live; status=$?; kill $pid; exit $status`,
    ]
      .map((line) => line.replaceAll('dist/apps/', `${ROOT}/dist/apps/`).replaceAll('apps/agency-node/demo/', `${ROOT}/apps/agency-node/demo/`).replaceAll('8080', String(hubPort)).replaceAll('8091', String(nodePort)))
      .join('\n');
    const ran = await sh(script, work);
    expect(ran.code, `${ran.stdout}\n${ran.stderr}\n${readFileSync(join(work, 'serve.log'), 'utf8')}`).toBe(0);
    expect(ran.stdout).toContain('answerPublicKey');
    const agency = (await (await trusting(`${hubUrl}/v1/agencies/sapporo-city`)).json()) as Record<string, unknown>;
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
