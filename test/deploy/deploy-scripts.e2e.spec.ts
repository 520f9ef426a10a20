// The one-shot jobs of the deployment, run on the built apps as the containers run them:
// - deploy/compose/hub-keygen.mjs makes every key and token the hub needs, private, once (a second run keeps them),
//   with the hubs' one TLS CA and the certificate the hubs serve for the deployment's names (checked here with
//   node:crypto: the chain, the names, the keys), and copies the CA's public certificates apart; a hub on TLS
//   given those keys (copied in, as the Kubernetes init container does) starts on them and serves that certificate;
// - deploy/compose/register-agency.mjs makes the intermediate server's answer key and its own TLS key, loads its
//   copies, registers it at the hub (which requires a CSR) over HTTPS with the operator token, an https://
//   endpoint and the key's CSR, and keeps the issued token and certificate (no private key: the hub never had
//   it); run again it changes nothing, a lost token is replaced by a credential rotation and a lost certificate
//   by a renewal with the CSR; the server then serves HTTPS with that certificate and its own key, and the
//   certificate with the token admits the agency at the hub (mutual TLS).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePorts } from '../support/free-ports.js';
import { ROOT } from './deploy-checks.js';

const HUB_MAIN = join(ROOT, 'dist/apps/hub/src/main.js');
const NODE_MAIN = join(ROOT, 'dist/apps/agency-node/src/main.js');
const KEYGEN = join(ROOT, 'deploy/compose/hub-keygen.mjs');
const REGISTER = join(ROOT, 'deploy/compose/register-agency.mjs');
/** The keys and tokens apps/hub/README.md lists (Keys), and the TLS CA's and the hub certificate's (docs/tls.md): private. */
const HUB_KEYS = [
  'agency-code.key.json',
  'auditor.token.json',
  'blind-index.key.json',
  'checkpoint-signing.key.json',
  'key-encryption.key.json',
  'operator.token.json',
  'provision-signing.key.json',
  'sealing.key.json',
  'tls-ca.key.json',
  'tls-hub.key.json',
];
/** The CA's certificates: public. */
const CA_FILES = ['tls-ca.bundle.pem', 'tls-ca.cert.pem'];
/** The names the compose file gives its hubs (HUB_TLS_HOSTS); HUB_HOST is 127.0.0.1 here, where the test hub listens. */
const TLS_HOSTS = 'hub,hub-a,hub-b,localhost,127.0.0.1,::1';

const started: ChildProcess[] = [];

/** Debian's haproxy, when installed (the router's image is HAProxy's). */
const HAPROXY = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((p) => existsSync(p));

function start(main: string, args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  return startProcess(process.execPath, [main, ...args], env);
}

function startProcess(command: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  started.push(child);
  return { child, output: () => text };
}

interface Answer {
  readonly status: number;
  readonly json: Record<string, unknown>;
}

/** One HTTPS request trusting `ca` (and presenting a client certificate when given). */
function call(url: string, ca: string, options: { method?: string; headers?: Record<string, string>; body?: string; cert?: string; key?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: options.method ?? 'GET', headers: options.headers, ca, ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key }), agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

async function waitFor(url: string, ca: string, what: { child: ChildProcess; output: () => string }): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && what.child.exitCode === null) {
    if ((await call(url, ca).then((r) => r.status, () => 0)) === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200 over HTTPS:\n${what.output()}`);
}

/** The certificate a TLS server on 127.0.0.1 presents (verified against `ca` and that address). */
function presented(port: number, ca: string, alpn: string[] = ['http/1.1']): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, ALPNProtocols: alpn }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.end();
      if (peer === undefined) reject(new Error('no certificate presented'));
      else resolve(peer);
    });
    socket.on('error', reject);
  });
}

function run(script: string, args: string[], env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('deploy scripts on the built apps', () => {
  let dir: string;
  let hubUrl: string;
  let hubGrpcPort: number;
  let nodePort: number;
  let keys: string;
  let caDir: string;
  let ca: string;
  let agencyEnv: Record<string, string>;

  beforeAll(async () => {
    for (const main of [HUB_MAIN, NODE_MAIN]) if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
    dir = mkdtempSync(join(tmpdir(), 'deploy-scripts-'));
    keys = join(dir, 'hub-keys');
    caDir = join(dir, 'hub-ca');
  });

  afterAll(async () => {
    const running = started.filter((c) => c.exitCode === null && c.signalCode === null);
    for (const child of running) child.kill('SIGTERM');
    await Promise.all(running.map((c) => new Promise((r) => c.once('exit', r))));
    rmSync(dir, { recursive: true, force: true });
  });

  it('hub-keygen makes every key and token the hub needs and the TLS CA, private, the CA\'s certificates public and copied apart, and keeps them when run again', async () => {
    const [port] = await freePorts(1);
    const env = { KEYGEN_PORT: String(port), HUB_TLS_HOSTS: TLS_HOSTS, HUB_HOST: '127.0.0.1' };
    const first = run(KEYGEN, [keys, caDir], env);
    expect(first.status, first.out).toBe(0);
    expect(readdirSync(keys).sort()).toEqual([...HUB_KEYS, ...CA_FILES].sort());
    for (const file of HUB_KEYS) expect(mode(join(keys, file)), file).toBe(0o600);
    for (const file of CA_FILES) expect(mode(join(keys, file)), file).toBe(0o644);
    expect(mode(keys)).toBe(0o700);
    // The public copies, for the clients that must not see the keys.
    expect(readdirSync(caDir).sort()).toEqual(CA_FILES);
    for (const file of CA_FILES) {
      expect(readFileSync(join(caDir, file), 'utf8'), file).toBe(readFileSync(join(keys, file), 'utf8'));
      expect(mode(join(caDir, file)), file).toBe(0o644);
    }
    ca = readFileSync(join(caDir, 'tls-ca.bundle.pem'), 'utf8');
    const all = [...HUB_KEYS, ...CA_FILES];
    const before = all.map((f) => readFileSync(join(keys, f), 'utf8'));
    // Run again over a CA dir that is private (as a volume made from the image's /data, 0700): readable after.
    chmodSync(caDir, 0o700);
    const second = run(KEYGEN, [keys, caDir], { ...env, HUB_TLS_HOSTS: 'other-names' });
    expect(mode(caDir)).toBe(0o755);
    expect(second.status, second.out).toBe(0);
    expect(all.map((f) => readFileSync(join(keys, f), 'utf8'))).toEqual(before);
    expect(run(KEYGEN, [], {}).status).toBe(2);
    expect(run(KEYGEN, [keys, caDir, 'extra'], {}).status).toBe(2);
  });

  it('the CA it makes is a CA that issued the hubs\' certificate, for the deployment\'s names, with the keys beside them', () => {
    const caFile = JSON.parse(readFileSync(join(keys, 'tls-ca.key.json'), 'utf8')) as { key: string; certificate: string };
    const caCert = new X509Certificate(readFileSync(join(keys, 'tls-ca.cert.pem')));
    expect(new X509Certificate(caFile.certificate).fingerprint256).toBe(caCert.fingerprint256);
    expect(new X509Certificate(ca).fingerprint256).toBe(caCert.fingerprint256);
    expect(caCert.ca).toBe(true);
    expect(caCert.checkIssued(caCert)).toBe(true);
    expect(caCert.verify(caCert.publicKey)).toBe(true);
    expect(caCert.checkPrivateKey(createPrivateKey(caFile.key))).toBe(true);

    const hubFile = JSON.parse(readFileSync(join(keys, 'tls-hub.key.json'), 'utf8')) as { key: string; certificate: string };
    const hubCert = new X509Certificate(hubFile.certificate);
    expect(hubCert.ca).toBe(false);
    expect(hubCert.checkIssued(caCert)).toBe(true);
    expect(hubCert.verify(caCert.publicKey)).toBe(true);
    expect(hubCert.checkPrivateKey(createPrivateKey(hubFile.key))).toBe(true);
    for (const name of ['hub', 'hub-a', 'hub-b', 'localhost']) expect(hubCert.checkHost(name), name).toBe(name);
    for (const ip of ['127.0.0.1', '::1']) expect(hubCert.checkIP(ip), ip).toBe(ip);
    expect(hubCert.checkHost('hub-c')).toBeUndefined();
    expect(Date.parse(hubCert.validTo)).toBeGreaterThan(Date.now() + 365 * 86_400_000);
    // The checks fail where they should: a certificate is not its own issuer, nor verified by another key.
    expect(hubCert.checkIssued(hubCert)).toBe(false);
    expect(hubCert.verify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)).toBe(false);
    expect(caCert.checkPrivateKey(createPrivateKey(hubFile.key))).toBe(false);
  });

  it('a hub on TLS started with those keys copied into its data dir serves that certificate and takes the operator\'s token', async () => {
    const hubData = join(dir, 'hub');
    mkdirSync(join(hubData, 'keys'), { recursive: true, mode: 0o700 });
    for (const file of HUB_KEYS) copyFileSync(join(keys, file), join(hubData, 'keys', file));
    const [port, grpcPort] = await freePorts(2);
    hubUrl = `https://127.0.0.1:${port}`;
    hubGrpcPort = grpcPort!;
    // As the deployment runs it: HUB_TLS=on, the names hub-keygen was given, agencies' CSRs required.
    const hub = start(HUB_MAIN, [], { HUB_DATA_DIR: hubData, HUB_HOST: '127.0.0.1', HUB_PORT: String(port!), HUB_GRPC_PORT: String(grpcPort), HUB_REDIS_URL: 'off', HUB_LOG_LEVEL: 'warn', HUB_TLS: 'on', HUB_TLS_HOSTS: TLS_HOSTS, HUB_TLS_REQUIRE_CSR: 'on' });
    await waitFor(`${hubUrl}/health/ready`, ca, hub);
    // It found its certificate made for its names: served as it is, not issued again.
    expect(readFileSync(join(hubData, 'keys', 'tls-hub.key.json'), 'utf8')).toBe(readFileSync(join(keys, 'tls-hub.key.json'), 'utf8'));
    const served = await presented(port!, ca);
    expect(served.fingerprint256).toBe(new X509Certificate((JSON.parse(readFileSync(join(keys, 'tls-hub.key.json'), 'utf8')) as { certificate: string }).certificate).fingerprint256);
    // A client trusting only the public CAs (not the hubs') is refused in the handshake.
    await expect(call(`${hubUrl}/health/live`, rootCertificates.join('\n'))).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
    const operator = (JSON.parse(readFileSync(join(keys, 'operator.token.json'), 'utf8')) as { token: string }).token;
    // The operator's token of the generated keys is the one the hub accepts.
    const res = await call(`${hubUrl}/v1/agencies`, ca, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(400);
    const wrong = await call(`${hubUrl}/v1/agencies`, ca, { method: 'POST', headers: { authorization: `Bearer ${'x'.repeat(43)}`, 'content-type': 'application/json' }, body: '{}' });
    expect(wrong.status).toBe(401);
  });

  it('register-agency registers the intermediate server over HTTPS with its https endpoint and its own key\'s CSR, keeps its token and certificate, and replaces a lost one by a rotation or a renewal', async () => {
    [nodePort] = (await freePorts(1)) as [number];
    const data = join(dir, 'muroran-city');
    agencyEnv = {
      AGENCY_ID: 'muroran-city',
      AGENCY_NAME: '室蘭市',
      AGENCY_KIND: 'municipality',
      AGENCY_MUNICIPALITY_CODE: '012050',
      AGENCY_ENDPOINT: `https://127.0.0.1:${nodePort}`,
      AGENCY_DATA_DIR: data,
      AGENCY_TOKEN_FILE: join(data, 'hub.token'),
      AGENCY_TLS_FILE: join(data, 'hub-tls.json'),
      AGENCY_HUB_URL: hubUrl,
      COPIES_FILE: join(ROOT, 'apps/agency-node/demo/muroran-city.copies.json'),
      OPERATOR_TOKEN_FILE: join(keys, 'operator.token.json'),
      NODE_EXTRA_CA_CERTS: join(keys, 'tls-ca.bundle.pem'),
    };
    const tlsFile = agencyEnv['AGENCY_TLS_FILE']!;
    const certificate = (): { certificatePem: string; privateKeyPem?: string; caCertificatePem: string; fingerprint: string } => JSON.parse(readFileSync(tlsFile, 'utf8')) as never;
    const keyFile = join(data, 'keys', 'tls-key.pem');
    const listed = async (): Promise<{ fingerprint: string; status: string }[]> => (await call(`${hubUrl}/v1/agencies/muroran-city/certificates`, ca)).json['certificates'] as never;

    const first = run(REGISTER, [], agencyEnv);
    expect(first.status, first.out).toBe(0);
    expect(first.out).toMatch(/register: loaded copies/);
    expect(first.out).toMatch(/register: muroran-city registered \(serial \d{20}\)/);
    const token = readFileSync(agencyEnv['AGENCY_TOKEN_FILE']!, 'utf8').trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(mode(agencyEnv['AGENCY_TOKEN_FILE']!)).toBe(0o600);
    expect(mode(tlsFile)).toBe(0o600);
    // The certificate the hub issued: of the hubs' CA, for the agency and its endpoint's host, with its key.
    const caCert = new X509Certificate(ca);
    const issued = certificate();
    const cert = new X509Certificate(issued.certificatePem);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain('URI:urn:linkage-ledger:agency:muroran-city');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    // Of the server's own key, which stays with it: the hub answered no private key.
    expect(issued.privateKeyPem).toBeUndefined();
    expect(mode(keyFile)).toBe(0o600);
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(keyFile)))).toBe(true);
    expect(new X509Certificate(issued.caCertificatePem).fingerprint256).toBe(caCert.fingerprint256);
    expect(await listed()).toEqual([expect.objectContaining({ fingerprint: issued.fingerprint, status: 'issued' })]);
    const agency = (await call(`${hubUrl}/v1/agencies/muroran-city`, ca)).json;
    expect(agency).toMatchObject({ status: 'active' });

    const again = run(REGISTER, [], agencyEnv);
    expect(again.status, again.out).toBe(0);
    expect(again.out).toContain('register: muroran-city is registered and holds its token and its certificate');
    expect(readFileSync(agencyEnv['AGENCY_TOKEN_FILE']!, 'utf8').trim()).toBe(token);
    expect(certificate()).toEqual(issued);

    unlinkSync(agencyEnv['AGENCY_TOKEN_FILE']!);
    const rotated = run(REGISTER, [], agencyEnv);
    expect(rotated.status, rotated.out).toBe(0);
    expect(rotated.out).toMatch(/register: muroran-city given a new token \(serial \d{20}\)/);
    expect(readFileSync(agencyEnv['AGENCY_TOKEN_FILE']!, 'utf8').trim()).not.toBe(token);
    expect(certificate()).toEqual(issued);

    // A server registered before without its certificate (before TLS, or the file lost): a renewal issues one.
    unlinkSync(tlsFile);
    const renewed = run(REGISTER, [], agencyEnv);
    expect(renewed.status, renewed.out).toBe(0);
    expect(renewed.out).toMatch(/register: muroran-city at https:\/\/127\.0\.0\.1:\d+ issued its certificate \(fingerprint [0-9a-f]{64}\)/);
    expect(mode(tlsFile)).toBe(0o600);
    const second = certificate();
    expect(second.fingerprint).not.toBe(issued.fingerprint);
    expect(new X509Certificate(second.certificatePem).checkIssued(caCert)).toBe(true);
    expect(second.privateKeyPem).toBeUndefined();
    expect(new X509Certificate(second.certificatePem).checkPrivateKey(createPrivateKey(readFileSync(keyFile)))).toBe(true);
    expect((await listed()).map((c) => [c.fingerprint, c.status]).sort()).toEqual([[issued.fingerprint, 'issued'], [second.fingerprint, 'issued']].sort());

    // The server serves HTTPS with what the job left (its key, its copies, its token, its certificate) ...
    const node = start(NODE_MAIN, ['serve'], { ...agencyEnv, AGENCY_PORT: String(nodePort), AGENCY_HOST: '127.0.0.1', AGENCY_LOG_LEVEL: 'warn' });
    await waitFor(`https://127.0.0.1:${nodePort}/health/ready`, second.caCertificatePem, node);
    const served = await presented(nodePort!, second.caCertificatePem);
    expect(served.fingerprint256).toBe(new X509Certificate(second.certificatePem).fingerprint256);
    // ... and its certificate with its token admits the agency at the hub; the token alone does not.
    const bearer = { authorization: `Bearer ${readFileSync(agencyEnv['AGENCY_TOKEN_FILE']!, 'utf8').trim()}` };
    expect((await call(`${hubUrl}/v1/agencies/me/statistics`, ca, { headers: bearer, cert: second.certificatePem, key: readFileSync(keyFile, 'utf8') })).status).toBe(200);
    const bare = await call(`${hubUrl}/v1/agencies/me/statistics`, ca, { headers: bearer });
    expect([bare.status, bare.json['code']]).toEqual([401, 'CLIENT_CERTIFICATE_REQUIRED']);
  });

  it('the compose health checks, run as written (paths and ports this machine\'s), pass over HTTPS against the hub and the server, verifying their certificates', () => {
    const compose = parse(readFileSync(join(ROOT, 'deploy/compose/docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { healthcheck?: { test?: string[] } }> };
    const check = (service: string): string => {
      const test = compose.services[service]?.healthcheck?.test ?? [];
      expect(test.slice(0, 3), service).toEqual(['CMD', 'node', '-e']);
      return test[3]!;
    };
    const hubPort = new URL(hubUrl).port;
    const runCheck = (code: string, env: Record<string, string> = {}): number | null => spawnSync(process.execPath, ['-e', code], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 20_000 }).status;
    const hubCheck = check('hub-a').replace('/data/keys/tls-ca.bundle.pem', join(keys, 'tls-ca.bundle.pem')).replace('port:8080', `port:${hubPort}`);
    expect(hubCheck).not.toContain('/data/');
    expect(runCheck(hubCheck)).toBe(0);
    // It verifies: against another CA's bundle it fails.
    writeFileSync(join(dir, 'public-ca.pem'), rootCertificates[0]!);
    expect(runCheck(hubCheck.replace(join(keys, 'tls-ca.bundle.pem'), join(dir, 'public-ca.pem')))).toBe(1);
    // The server's check reads its certificate file and name from the server's own variables, as in the container.
    const nodeCheck = check('muroran-city').replace('port:8090', `port:${nodePort}`);
    expect(nodeCheck).toContain('process.env.AGENCY_TLS_FILE');
    // Registered here with the endpoint https://127.0.0.1:<port>, the certificate names 127.0.0.1 (compose: the service name, AGENCY_ID).
    expect(runCheck(nodeCheck.replace('servername:process.env.AGENCY_ID,', ''), { AGENCY_TLS_FILE: agencyEnv['AGENCY_TLS_FILE']! })).toBe(0);
    expect(runCheck(nodeCheck, { AGENCY_TLS_FILE: agencyEnv['AGENCY_TLS_FILE']!, AGENCY_ID: 'sapporo-city' })).toBe(1);
  });

  // Debian's haproxy (apt-get install haproxy) runs the compose router's configuration against the hub above.
  it.skipIf(HAPROXY === undefined)('hub-router.cfg passes TLS through to the leader (an agency\'s client certificate reaches it), checking it over HTTPS against the CA and its name', async () => {
    const [https, grpc, health, downHttps, downGrpc] = await freePorts(5);
    const hubPort = Number(new URL(hubUrl).port);
    const config = (text: string): string => {
      const path = join(dir, `router-${Math.random().toString(36).slice(2)}.cfg`);
      writeFileSync(path, text);
      return path;
    };
    // The compose file's configuration, its addresses rewritten to this machine's (names and checks kept):
    // hub-a is the hub above, hub-b a hub that is down.
    const cfg = readFileSync(join(ROOT, 'deploy/compose/hub-router.cfg'), 'utf8')
      .replaceAll('/etc/hub-ca/', `${caDir}/`)
      .replace('bind :8080', `bind 127.0.0.1:${https}`)
      .replace('bind :9090', `bind 127.0.0.1:${grpc}`)
      .replace('bind :8404', `bind 127.0.0.1:${health}`)
      .replace('hub-a:8080 check', `127.0.0.1:${hubPort} check`)
      .replace('hub-a:9090 check port 8080', `127.0.0.1:${hubGrpcPort} check port ${hubPort}`)
      .replace('hub-b:8080 check', `127.0.0.1:${downHttps} check`)
      .replace('hub-b:9090 check port 8080', `127.0.0.1:${downGrpc} check port ${downHttps}`);
    expect(cfg.replace(/#.*$/gm, '')).not.toMatch(/hub-[ab]:\d/);
    const router = startProcess(HAPROXY!, ['-db', '-f', config(cfg)]);
    const viaRouter = `https://127.0.0.1:${https}`;
    const deadline = Date.now() + 20_000;
    // Both hubs count as up until their first check: wait for it (hub-b down in both backends).
    while (Date.now() < deadline && (router.output().match(/_leader\/hub-b is DOWN/g) ?? []).length < 2) await new Promise((r) => setTimeout(r, 100));
    let ready: Answer | undefined;
    while (Date.now() < deadline && ready?.status !== 200) {
      ready = await call(`${viaRouter}/health/ready`, ca).catch(() => undefined);
      if (ready?.status !== 200) await new Promise((r) => setTimeout(r, 250));
    }
    // Through the router the client meets the hub's own certificate (the router holds none) ...
    expect(ready?.json['role'], router.output()).toBe('leader');
    // A failure names its step and shows the router's log.
    const step = <T>(what: string, p: Promise<T>): Promise<T> => p.catch((e: Error) => { throw new Error(`${what}: ${e.message}\n${router.output()}`); });
    expect((await step('https', presented(https!, ca))).fingerprint256).toBe(new X509Certificate((JSON.parse(readFileSync(join(keys, 'tls-hub.key.json'), 'utf8')) as { certificate: string }).certificate).fingerprint256);
    // gRPC over TLS (HTTP/2: the gRPC edge speaks only h2) passes through to the leader's gRPC port alike.
    const grpcCert = await step('grpc', presented(grpc!, ca, ['h2']));
    expect(grpcCert.fingerprint256).toBe((await presented(https!, ca)).fingerprint256);
    // ... and the hub meets the agency's client certificate: mutual TLS across the router.
    const agency = { ...(JSON.parse(readFileSync(agencyEnv['AGENCY_TLS_FILE']!, 'utf8')) as { certificatePem: string }), privateKeyPem: readFileSync(join(agencyEnv['AGENCY_DATA_DIR']!, 'keys', 'tls-key.pem'), 'utf8') };
    const bearer = { authorization: `Bearer ${readFileSync(agencyEnv['AGENCY_TOKEN_FILE']!, 'utf8').trim()}` };
    expect((await step('mutual', call(`${viaRouter}/v1/agencies/me/statistics`, ca, { headers: bearer, cert: agency.certificatePem, key: agency.privateKeyPem }))).status).toBe(200);
    expect((await step('token only', call(`${viaRouter}/v1/agencies/me/statistics`, ca, { headers: bearer }))).json['code']).toBe('CLIENT_CERTIFICATE_REQUIRED');
    expect(router.output()).toMatch(/hub_https_leader\/hub-b is DOWN/);
    const routerExited = new Promise((r) => router.child.once('exit', r));
    router.child.kill('SIGTERM');
    await routerExited;

    // Its checks verify: with another name expected of hub-a, or another CA trusted, the hub is down and nothing passes.
    for (const [what, broken] of [
      ['another name', cfg.replaceAll('check-sni hub-a', 'check-sni hub-z')],
      ['another CA', cfg.replace(`ca-file ${caDir}/tls-ca.bundle.pem`, `ca-file ${join(dir, 'other-ca.pem')}`)],
    ] as const) {
      writeFileSync(join(dir, 'other-ca.pem'), rootCertificates[0]!);
      const wrong = startProcess(HAPROXY!, ['-db', '-f', config(broken)]);
      const until = Date.now() + 20_000;
      while (Date.now() < until && !/hub_https_leader\/hub-a is DOWN/.test(wrong.output())) await new Promise((r) => setTimeout(r, 250));
      expect(wrong.output(), what).toMatch(/hub_https_leader\/hub-a is DOWN, reason: Layer6/);
      await expect(call(`${viaRouter}/health/ready`, ca), what).rejects.toThrow();
      const exited = new Promise((r) => wrong.child.once('exit', r));
      wrong.child.kill('SIGTERM');
      await exited;
    }
  });

  it('register-agency fails, naming the variable, when one is missing, and refuses a plain http endpoint for a hub on TLS', () => {
    const elsewhere = { AGENCY_ID: 'sapporo-city', AGENCY_DATA_DIR: join(dir, 'sapporo-city'), AGENCY_TOKEN_FILE: join(dir, 'sapporo-city', 'hub.token') };
    const { AGENCY_NAME: _dropped, ...rest } = agencyEnv;
    const r = run(REGISTER, [], { ...rest, ...elsewhere });
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('AGENCY_NAME is required');
    const { AGENCY_TLS_FILE: _noTls, ...withoutTls } = agencyEnv;
    const noFile = run(REGISTER, [], { ...withoutTls, ...elsewhere });
    expect(noFile.status).not.toBe(0);
    expect(noFile.out).toContain('AGENCY_TLS_FILE is required');
    const plain = run(REGISTER, [], { ...agencyEnv, ...elsewhere, AGENCY_ENDPOINT: 'http://127.0.0.1:9' });
    expect(plain.status).not.toBe(0);
    expect(plain.out).toContain('AGENCY_ENDPOINT must be https:// with a hub on TLS');
    expect(existsSync(elsewhere.AGENCY_TOKEN_FILE)).toBe(false);
  });
});
