import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tlsFetch } from '../../agency-node/src/hub/tls-fetch.js';

/** The repository root, from apps/demo/src (sources) or dist/apps/demo/src (built). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root (package.json) above the demo');
    dir = parent;
  }
  return dir;
}

export const ROOT = repoRoot();
export const HUB_MAIN = join(ROOT, 'dist/apps/hub/src/main.js');
export const NODE_MAIN = join(ROOT, 'dist/apps/agency-node/src/main.js');
export const PORTAL_MAIN = join(ROOT, 'dist/apps/portal/src/main.js');

/** The two agencies of the worked example (seeds/001) and their demo copies. */
export const AGENCIES = [
  { agencyId: 'jpn-pension-service', name: '日本年金機構', kind: 'pension-service', copies: 'apps/agency-node/demo/jpn-pension-service.copies.json', aoyama: 'P-4410-0000123' },
  { agencyId: 'muroran-city', name: '室蘭市', kind: 'municipality', municipalityCode: '012050', copies: 'apps/agency-node/demo/muroran-city.copies.json', aoyama: 'M-000123' },
] as const;
export type DemoAgencyId = (typeof AGENCIES)[number]['agencyId'];

/** Aoyama-san: a resident of Muroran City (全国地方公共団体コード 012050). */
export const AOYAMA = { residentRecordCode: '31415926535', municipalityCode: '012050' } as const;
/** Corporations of Muroran and Sapporo for the public registry (法人番号公表): search and CSV download. */
export const CORPORATIONS = [
  { registryNumber: '430001012345', name: '株式会社室蘭製作所', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' },
  { registryNumber: '430003000128', name: '室蘭港湾サービス合同会社', location: '北海道室蘭市入江町1番地', kind: 'llc' },
  { registryNumber: '430001066502', name: '札幌みらい有限会社', location: '北海道札幌市中央区北1条西2丁目', kind: 'limited-company' },
] as const;

export interface DemoPerson {
  readonly individualNumber: string;
  readonly citizenSecret: string;
}

export interface NetworkOptions {
  /** The hub's data dir; the nodes live under `<dataDir>/nodes/<agencyId>`, the demo's own state under `<dataDir>/demo`. */
  readonly dataDir: string;
  readonly hubPort: number;
  readonly nodePorts: Readonly<Record<DemoAgencyId, number>>;
  /** The hub's gRPC port; undefined: no gRPC edge. */
  readonly grpcPort?: number;
  readonly log: (line: string) => void;
  /**
   * Extra hub environment (e.g. HUB_REDIS_URL). HUB_TLS=on runs the network over TLS; without it the network
   * runs over plain HTTP (the hub is told HUB_TLS=off): `npm start` (start.ts) passes HUB_TLS=on unless told off.
   */
  readonly hubEnv?: Readonly<Record<string, string>>;
  /** The citizen portal's port (served as http://localhost:<port>, the origin its passkeys belong to); undefined: no portal. */
  readonly portalPort?: number;
}

export interface Process {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Everything it printed (stdout and stderr, interleaved). */
  output(): string;
  stdout(): string;
}

export interface Network {
  readonly hubUrl: string;
  /** The citizen portal's URL, when it was started. */
  readonly portalUrl?: string;
  nodeUrl(agencyId: DemoAgencyId): string;
  readonly processes: readonly Process[];
  readonly aoyama: DemoPerson;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function run(name: string, script: string, args: readonly string[], env: Record<string, string>, log?: (line: string) => void): Process {
  const child = spawn(process.execPath, ['--max-semi-space-size=64', script, ...args], {
    cwd: ROOT,
    // eslint-disable-next-line no-restricted-syntax -- a child process inherits PATH only
    env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let text = '';
  let out = '';
  const onData = (chunk: Buffer) => {
    const s = chunk.toString('utf8');
    text += s;
    if (log) for (const line of s.split('\n')) if (line.trim() !== '') log(`[${name}] ${line}`);
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    onData(chunk);
  });
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { name, child, exited, output: () => text, stdout: () => out };
}

/** Runs an agency-node CLI command to its end and returns its JSON output. */
async function cli(env: Record<string, string>, args: readonly string[], stdin?: string): Promise<unknown> {
  const p = run(`node ${args[0]}`, NODE_MAIN, args, env);
  p.child.stdin!.end(stdin ?? '');
  const code = await p.exited;
  if (code !== 0) throw new Error(`agency-node ${args.join(' ')} exited ${code}: ${p.output()}`);
  return JSON.parse(p.stdout()) as unknown;
}

async function waitReady(url: string, process: Process, web: typeof fetch, agencyId?: string, timeoutMs = 60_000): Promise<void> {
  await waitAnswering(`${url}/health/ready`, process, web, timeoutMs, agencyId);
}

/**
 * Waits until `url` answers 200 (or the process ends, or the time is up). With `agencyId`, the answer must
 * be that agency's node's readiness: another process already serving on the port (the node itself then
 * fails to listen) would otherwise pass for it, and the hub would meet a stranger at the registered endpoint.
 */
async function waitAnswering(url: string, process: Process, web: typeof fetch, timeoutMs = 60_000, agencyId?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  let stranger: string | undefined;
  void process.exited.then(() => (ended = true));
  while (Date.now() < deadline && !ended) {
    const res = await web(url).catch(() => undefined);
    if (res?.status === 200) {
      if (agencyId === undefined) return;
      const body = (await res.json().catch(() => ({}))) as { agencyId?: unknown };
      if (body.agencyId === agencyId) return;
      stranger = `another server answers there (${typeof body.agencyId === 'string' ? `the node of ${body.agencyId}` : 'not an intermediate server'}): give ${process.name} a port of its own`;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${process.name} did not answer at ${url}${stranger === undefined ? '' : `; ${stranger}`}:\n${process.output()}`);
}

/** The network's ports, each used once (a port given twice would have one process answer for another). */
function checkPorts(options: NetworkOptions): void {
  const named: [string, number | undefined][] = [['hubPort', options.hubPort], ['grpcPort', options.grpcPort], ['portalPort', options.portalPort], ...Object.entries(options.nodePorts).map(([id, port]): [string, number] => [`nodePorts.${id}`, port])];
  const seen = new Map<number, string>();
  for (const [name, port] of named) {
    if (port === undefined) continue;
    const before = seen.get(port);
    if (before !== undefined) throw new Error(`${name} and ${before} are both port ${port}: each process of the network needs a port of its own`);
    seen.set(port, name);
  }
}

/** The demo's fetch: with HUB_TLS=on one that trusts the hub's CA once the hub has made it (keys/tls-ca.cert.pem). */
function demoFetch(tls: boolean, caPath: string): typeof fetch {
  if (!tls) return (input, init) => fetch(input, init);
  let trusting: typeof fetch | undefined;
  return (input, init) => {
    if (trusting === undefined) {
      if (!existsSync(caPath)) return Promise.reject(new Error(`${caPath} is not made yet`));
      trusting = tlsFetch({ caCertificatePem: readFileSync(caPath, 'utf8') });
    }
    return trusting(input, init);
  };
}

/** Where a node keeps what the hub answered its registration with under HUB_TLS=on (AGENCY_TLS_FILE, 0600). */
function tlsFileOf(dataDir: string, agencyId: string): string {
  return join(dataDir, 'nodes', agencyId, 'hub-tls.json');
}

let web: typeof fetch = (input, init) => fetch(input, init);

async function call(method: string, url: string, body: unknown, token?: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await web(url, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

function writeSecret(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, text, { mode: 0o600 });
}

/** Where `npm run demo` keeps the processing serial of its query, for the auditor commands of the READMEs (`--serial "$(cat data/demo/query.serial)"`). */
export function querySerialFile(dataDir: string): string {
  return join(dataDir, 'demo', 'query.serial');
}

export function personFile(dataDir: string): string {
  return join(dataDir, 'demo', 'aoyama.json');
}

export function readPerson(dataDir: string): DemoPerson {
  const path = personFile(dataDir);
  if (!existsSync(path)) throw new Error(`${path} is missing: start the network first (npm start)`);
  return JSON.parse(readFileSync(path, 'utf8')) as DemoPerson;
}

/**
 * Starts the hub and the two intermediate servers of seeds/001 as separate processes, and brings them to a
 * known state, idempotently (a second start reuses everything): both agencies registered with their
 * answer keys, their copies loaded, Aoyama-san numbered and both agencies holding a code for her.
 */
export async function startNetwork(options: NetworkOptions): Promise<Network> {
  checkPorts(options);
  for (const main of [HUB_MAIN, NODE_MAIN]) if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const dataDir = resolve(options.dataDir);
  const log = options.log;
  const processes: Process[] = [];
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    for (const p of [...processes].reverse()) if (p.child.exitCode === null) p.child.kill(signal);
    await Promise.all(processes.map((p) => p.exited));
  };
  try {
    // HUB_TLS=on (npm start's default; it hands HUB_* to the hub): the hub, its gRPC edge and both
    // intermediate servers serve TLS with certificates of the hub's CA, and the nodes present theirs to the
    // hub (docs/tls.md). Otherwise the hub is told HUB_TLS=off, its process default being on.
    const tls = options.hubEnv?.['HUB_TLS'] === 'on';
    const scheme = tls ? 'https' : 'http';
    const caPath = join(dataDir, 'keys', 'tls-ca.cert.pem');
    web = demoFetch(tls, caPath);
    const hubUrl = `${scheme}://127.0.0.1:${options.hubPort}`;
    // Passkeys belong to an exact origin: the portal is served (and the hub verifies ceremonies) as localhost.
    const portalUrl = options.portalPort === undefined ? undefined : `http://localhost:${options.portalPort}`;
    const hub = run('hub', HUB_MAIN, [], { HUB_DATA_DIR: dataDir, HUB_PORT: String(options.hubPort), HUB_HOST: '127.0.0.1', HUB_LOG_LEVEL: 'warn', HUB_TLS: tls ? 'on' : 'off', ...(options.grpcPort === undefined ? {} : { HUB_GRPC_PORT: String(options.grpcPort) }), ...(portalUrl === undefined ? {} : { HUB_PORTAL_ORIGINS: portalUrl, HUB_TRUSTED_PROXIES: '127.0.0.1' }), ...options.hubEnv }, log);
    processes.push(hub);
    await waitReady(hubUrl, hub, web);
    const operator = (JSON.parse(readFileSync(join(dataDir, 'keys', 'operator.token.json'), 'utf8')) as { token: string }).token;

    const nodeEnv = (agencyId: DemoAgencyId): Record<string, string> => ({
      AGENCY_ID: agencyId,
      AGENCY_DATA_DIR: join(dataDir, 'nodes', agencyId),
      AGENCY_HUB_URL: hubUrl,
      AGENCY_TOKEN_FILE: join(dataDir, 'nodes', agencyId, 'hub.token'),
      AGENCY_HOST: '127.0.0.1',
      AGENCY_PORT: String(options.nodePorts[agencyId]),
      AGENCY_LOG_LEVEL: 'warn',
      // The public service mesh: a push is followed by a lawful query for the new value (docs/intermediate-server-mesh.md).
      AGENCY_PUSH_FETCH: 'on',
      ...(tls ? { AGENCY_TLS_FILE: tlsFileOf(dataDir, agencyId) } : {}),
    });

    for (const agency of AGENCIES) {
      const env = nodeEnv(agency.agencyId);
      const endpoint = `${scheme}://127.0.0.1:${options.nodePorts[agency.agencyId]}`;
      // Offline commands need no hub credential (the token file does not exist before registration).
      const offline = { AGENCY_ID: agency.agencyId, AGENCY_DATA_DIR: env['AGENCY_DATA_DIR']! };
      const { answerPublicKey } = (await cli(offline, ['keys'])) as { answerPublicKey: string };
      // With TLS the node makes its own TLS key (nodes/<id>/keys/tls-key.pem) and the hub certifies the key of
      // its CSR: the hub's answer carries no private key (docs/tls.md).
      const csr = tls ? ((await cli(offline, ['tls-request'])) as { csr: string }).csr : undefined;
      const known = await call('GET', `${hubUrl}/v1/agencies/${agency.agencyId}`, undefined);
      if (known.status === 404) {
        const res = await call('POST', `${hubUrl}/v1/agencies`, { agencyId: agency.agencyId, name: agency.name, kind: agency.kind, endpoint, publicKey: answerPublicKey, ...('municipalityCode' in agency ? { municipalityCode: agency.municipalityCode } : {}), ...(csr === undefined ? {} : { csr }) }, operator);
        if (res.status !== 201) throw new Error(`registering ${agency.agencyId}: ${JSON.stringify(res.json)}`);
        writeSecret(env['AGENCY_TOKEN_FILE']!, String(res.json['token']));
        if (tls) writeSecret(tlsFileOf(dataDir, agency.agencyId), `${JSON.stringify(res.json['certificate'], null, 2)}\n`);
        log(`[demo] registered ${agency.agencyId} (serial ${String(res.json['serial'])})`);
      } else if (!existsSync(env['AGENCY_TOKEN_FILE']!)) {
        const res = await call('POST', `${hubUrl}/v1/agencies/${agency.agencyId}/credential-rotations`, undefined, operator);
        writeSecret(env['AGENCY_TOKEN_FILE']!, String(res.json['token']));
      }
      // The endpoint follows the configured port (a restart on other ports).
      await call('PATCH', `${hubUrl}/v1/agencies/${agency.agencyId}`, { endpoint }, operator);
      if (tls && !existsSync(tlsFileOf(dataDir, agency.agencyId))) {
        // Registered without TLS (or the file was lost): a renewal issues the node its certificate.
        const res = await call('POST', `${hubUrl}/v1/agencies/${agency.agencyId}/certificates`, csr === undefined ? undefined : { csr }, operator);
        if (res.status !== 201) throw new Error(`issuing ${agency.agencyId} its certificate: ${JSON.stringify(res.json)}`);
        const { agencyId: _agencyId, serial: _serial, ...certificate } = res.json;
        writeSecret(tlsFileOf(dataDir, agency.agencyId), `${JSON.stringify(certificate, null, 2)}\n`);
      }
      await cli(offline, ['load-copies', join(ROOT, agency.copies)]);
    }

    let aoyama: DemoPerson;
    if (existsSync(personFile(dataDir))) aoyama = readPerson(dataDir);
    else {
      // The idempotency key makes a lost state file recoverable: a retry answers the original issuance.
      const res = await call('POST', `${hubUrl}/v1/individual-numbers`, AOYAMA, operator, { 'idempotency-key': 'demo-aoyama' });
      if (res.status !== 201) throw new Error(`numbering Aoyama-san: ${JSON.stringify(res.json)}`);
      aoyama = { individualNumber: String(res.json['individualNumber']), citizenSecret: String(res.json['citizenSecret']) };
      // Demo only: this file plays the part of Aoyama-san's own notification (her number and secret).
      writeSecret(personFile(dataDir), `${JSON.stringify(aoyama, null, 2)}\n`);
      log(`[demo] Aoyama-san numbered (serial ${String(res.json['serial'])})`);
    }
    for (const corporation of CORPORATIONS) {
      // The idempotency key answers a restart with the original designation.
      const res = await call('POST', `${hubUrl}/v1/corporate-numbers`, corporation, operator, { 'idempotency-key': `demo-corporation-${corporation.registryNumber}` });
      if (res.status !== 201) throw new Error(`designating ${corporation.name}: ${JSON.stringify(res.json)}`);
    }
    for (const agency of AGENCIES) {
      const acquired = (await cli(nodeEnv(agency.agencyId), ['acquire', '--local-id', agency.aoyama, '--individual-number', '-', '--acquisition-number', `DEMO-${agency.aoyama}`], aoyama.individualNumber)) as { serial: string };
      log(`[demo] ${agency.agencyId} holds its code for Aoyama-san (${agency.aoyama}, serial ${acquired.serial})`);
    }

    for (const agency of AGENCIES) {
      const node = run(agency.agencyId, NODE_MAIN, ['serve'], nodeEnv(agency.agencyId), log);
      processes.push(node);
      await waitReady(`${scheme}://127.0.0.1:${options.nodePorts[agency.agencyId]}`, node, web, agency.agencyId);
    }
    if (portalUrl !== undefined) {
      if (!existsSync(PORTAL_MAIN)) throw new Error(`${PORTAL_MAIN} is missing: run npm run build first`);
      // The portal calls the hub over server-authenticated TLS, trusting the hub's CA (NODE_EXTRA_CA_CERTS).
      const portal = run('portal', PORTAL_MAIN, [], { PORTAL_PORT: String(options.portalPort), PORTAL_HOST: '127.0.0.1', PORTAL_HUB_URL: hubUrl, PORTAL_ORIGIN: portalUrl, PORTAL_DATA_DIR: join(dataDir, 'portal'), PORTAL_LOG_LEVEL: 'warn', ...(tls ? { NODE_EXTRA_CA_CERTS: caPath } : {}) }, log);
      processes.push(portal);
      await waitAnswering(`http://127.0.0.1:${options.portalPort}/api/session`, portal, web);
    }
    return {
      hubUrl,
      ...(portalUrl === undefined ? {} : { portalUrl }),
      nodeUrl: (agencyId) => `${scheme}://127.0.0.1:${options.nodePorts[agencyId]}`,
      processes,
      aoyama,
      stop,
    };
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
}
