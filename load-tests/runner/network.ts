import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { tlsFetch } from '../../apps/agency-node/src/hub/tls-fetch.js';
import { AGENCY_NODE_MAIN, HUB_MAIN, freePorts, requireBuilt, runToEnd, spawnBuilt, stop, waitReady, type Spawned } from './processes.js';
import { ITEMS, MURORAN_CITY, PROCEDURE, copiesFor, operatorToken, preparePeople, registerAgencies, type LinkageFixture, type Registered } from './setup.js';

/** What the load scenarios run: the built hub and Muroran City's built intermediate server, each its own process, people numbered and coded. */
export interface LinkageNetwork {
  readonly hub: Spawned;
  readonly node: Spawned;
  readonly hubUrl: string;
  readonly nodeUrl: string;
  /** Where the hub calls the node's provision endpoint (http:// or grpc://). */
  readonly providerEndpoint: string;
  readonly hubDir: string;
  readonly operatorToken: string;
  readonly registered: Registered;
  readonly fixture: LinkageFixture;
  /** The Redis key prefix of this run. */
  readonly redisPrefix: string;
  /** HUB_TLS=on: the hub and the node serve HTTPS with certificates of the hub's CA; the fixture carries the pension service's client certificate. */
  readonly tls: boolean;
  /** The operator's fetch (trusting the hub's CA under TLS; Node's fetch otherwise). */
  readonly web: typeof fetch;
  /** Stops both processes, removes this run's Redis keys and its working directory. */
  close(): Promise<void>;
}

export interface LinkageNetworkOptions {
  readonly people: number;
  /** The Redis the hub's mapper uses (the run's keys get a prefix of their own and are removed at close). */
  readonly redisUrl: string;
  /** Where the run's own key clean-up connects, when the hub's URL is a proxy in front of it. */
  readonly cleanupRedisUrl?: string;
  readonly grpc?: boolean;
  readonly plaintext?: boolean;
  /** HUB_TLS=on for the hub, Muroran's node serving HTTPS with the certificate its registration answered, the load generator presenting the pension service's. */
  readonly tls?: boolean;
  /** A name for this network in log lines (two run side by side with --tls both). */
  readonly label?: string;
  readonly hubEnv?: Readonly<Record<string, string>>;
  readonly hubNodeFlags?: readonly string[];
  readonly nodeNodeFlags?: readonly string[];
  readonly log: (line: string) => void;
}

/** Starts the hub and the node, registers both agencies, loads the node's copies and gives `people` people both agencies' codes. */
export async function startLinkageNetwork(options: LinkageNetworkOptions): Promise<LinkageNetwork> {
  requireBuilt();
  const label = options.label === undefined ? '' : `[${options.label}] `;
  const log = (line: string): void => options.log(`${label}${line}`);
  const tls = options.tls === true;
  if (tls && options.grpc === true) throw new Error('the load runner does not yet start the provider over gRPC with TLS (grpcs://): use --grpc without --tls');
  const work = mkdtempSync(join(tmpdir(), 'linkage-load-'));
  const hubDir = join(work, 'hub');
  const nodeDir = join(work, 'muroran');
  const redisPrefix = `ll-load-${process.pid}-${randomBytes(3).toString('hex')}`;
  let hub: Spawned | undefined;
  let node: Spawned | undefined;
  const close = async (): Promise<void> => {
    await stop(node);
    await stop(hub);
    const removed = await removeKeys(options.cleanupRedisUrl ?? options.redisUrl, redisPrefix).catch((error: unknown) => {
      log(`could not clean Redis keys ${redisPrefix}*: ${error instanceof Error ? error.message : String(error)}`);
      return 0;
    });
    log(`stopped the hub and the agency node; removed ${removed} Redis keys under ${redisPrefix}; removed ${work}`);
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const scheme = tls ? 'https' : 'http';
    // The hub makes its CA at its first start with HUB_TLS=on; the operator's calls trust it from then on.
    const web = tls ? caFetch(join(hubDir, 'keys', 'tls-ca.cert.pem')) : (input: string | URL | Request, init?: RequestInit) => fetch(input, init);
    // grpc: the hub calls the node's provision endpoint over gRPC (the node's staff endpoints stay HTTP).
    const [nodePort, grpcPort] = await freePorts(options.grpc === true ? 2 : 1);
    const nodeUrl = `${scheme}://127.0.0.1:${nodePort!}`;
    const providerEndpoint = grpcPort === undefined ? nodeUrl : `grpc://127.0.0.1:${grpcPort}`;

    // The hub as `npm start` runs it, on a free port, with Redis under a prefix of this run.
    hub = spawnBuilt(
      'hub',
      HUB_MAIN,
      [],
      { HUB_DATA_DIR: hubDir, HUB_PORT: '0', HUB_HOST: '127.0.0.1', HUB_LOG_LEVEL: 'log', HUB_REDIS_URL: options.redisUrl, HUB_REDIS_PREFIX: redisPrefix, HUB_CHECKPOINT_EVERY_MS: '10000', HUB_TLS: tls ? 'on' : 'off', ...options.hubEnv },
      work,
      ['--max-semi-space-size=64', ...(options.hubNodeFlags ?? [])],
    );
    const hubUrl = await waitReady(hub, 60_000, { scheme, fetch: web });
    log(`hub ready at ${hubUrl}${tls ? ' (HUB_TLS=on)' : ''} (data ${hubDir}, Redis prefix ${redisPrefix})`);

    const nodeEnv = {
      AGENCY_ID: MURORAN_CITY,
      AGENCY_DATA_DIR: nodeDir,
      AGENCY_HUB_URL: hubUrl,
      AGENCY_HOST: '127.0.0.1',
      AGENCY_PORT: String(nodePort),
      AGENCY_LOG_LEVEL: 'log',
      ...(grpcPort === undefined ? {} : { AGENCY_GRPC_PORT: String(grpcPort) }),
    };
    const { answerPublicKey: muroranKey } = (await runToEnd('agency-node keys', AGENCY_NODE_MAIN, ['keys'], nodeEnv, work)) as { answerPublicKey: string };
    const operator = operatorToken(hubDir);
    const registered = await registerAgencies(hubUrl, operator, providerEndpoint, muroranKey, web);
    if (tls && (registered.pensionTls === undefined || registered.muroranTls === undefined)) throw new Error('HUB_TLS=on but the registrations answered no certificate');
    const tlsFile = join(work, 'muroran.tls.json');
    if (registered.muroranTls !== undefined) writeFileSync(tlsFile, JSON.stringify(registered.muroranTls), { mode: 0o600 });
    const pensionWeb = registered.pensionTls === undefined ? web : tlsFetch(registered.pensionTls);
    const copiesFile = join(work, 'muroran.copies.json');
    writeFileSync(copiesFile, JSON.stringify(copiesFor(options.people)));
    await runToEnd('agency-node load-copies', AGENCY_NODE_MAIN, ['load-copies', copiesFile], nodeEnv, work);
    const tokenFile = join(work, 'muroran.token');
    writeFileSync(tokenFile, registered.muroranToken, { mode: 0o600 });
    node = spawnBuilt('agency node', AGENCY_NODE_MAIN, ['serve'], { ...nodeEnv, AGENCY_TOKEN_FILE: tokenFile, ...(tls ? { AGENCY_TLS_FILE: tlsFile } : {}) }, work, options.nodeNodeFlags ?? []);
    await waitReady(node, 60_000, { scheme, fetch: web });
    log(`agency node (${MURORAN_CITY}) ready at ${nodeUrl}${grpcPort === undefined ? '' : `; the hub calls it at ${providerEndpoint}`}`);

    const setupStarted = Date.now();
    const people = options.people;
    const codes = await preparePeople({
      hubUrl,
      nodeUrl,
      operatorToken: operator,
      pensionToken: registered.pensionToken,
      people,
      concurrency: 16,
      operatorFetch: web,
      pensionFetch: pensionWeb,
      onProgress: (n) => (n % 500 === 0 || n === people ? log(`  prepared ${n}/${people} people`) : undefined),
    });
    log(`setup: ${people} people issued with both agencies' codes in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`);

    const fixture: LinkageFixture = {
      hubUrl,
      requesterToken: registered.pensionToken,
      providerAgencyId: MURORAN_CITY,
      procedureCode: PROCEDURE,
      itemCodes: ITEMS,
      ...(options.plaintext === true ? {} : { answerPublicKey: registered.pensionKeys.publicKey }),
      codes,
      ...(registered.pensionTls === undefined ? {} : { tls: registered.pensionTls }),
    };
    return { hub, node, hubUrl, nodeUrl, providerEndpoint, hubDir, operatorToken: operator, registered, fixture, redisPrefix, tls, web, close };
  } catch (error) {
    if (hub) log(`--- hub output (tail) ---\n${hub.output().slice(-4000)}`);
    if (node) log(`--- agency node output (tail) ---\n${node.output().slice(-4000)}`);
    await close();
    throw error;
  }
}

async function removeKeys(redisUrl: string, prefix: string): Promise<number> {
  const client = createClient({ url: redisUrl });
  client.on('error', () => {});
  await client.connect();
  let removed = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) removed += await client.unlink(keys);
    }
  } finally {
    await client.close();
  }
  return removed;
}

/** Whether `url`'s host and port refuse plain HTTP (no answer, or not a 200 from /health/ready): under HUB_TLS=on the hub MUST. */
export async function refusesPlainHttp(url: string, timeoutMs = 5000): Promise<boolean> {
  const plain = url.replace(/^https:/, 'http:');
  const res = await fetch(`${plain}/health/ready`, { signal: AbortSignal.timeout(timeoutMs) }).catch(() => undefined);
  return res === undefined || res.status !== 200;
}

/** A fetch trusting the CA in `caPath` once the hub has made it (it does at its first start with HUB_TLS=on). */
function caFetch(caPath: string): typeof fetch {
  let trusting: typeof fetch | undefined;
  return (input, init) => {
    if (trusting === undefined) {
      if (!existsSync(caPath)) return Promise.reject(new Error(`${caPath} is not made yet`));
      trusting = tlsFetch({ caCertificatePem: readFileSync(caPath, 'utf8') });
    }
    return trusting(input, init);
  };
}

/** /health/ready once no serial is open (or after `timeoutMs`, as it is then); `web` trusts the hub's CA under TLS. */
export async function settledReadiness(hubUrl: string, timeoutMs: number, web: typeof fetch = fetch): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await web(`${hubUrl}/health/ready`);
    const ready = { status: r.status, body: (await r.json()) as Record<string, unknown> };
    if (ready.body['openSerials'] === 0 || Date.now() > deadline) return ready;
    await new Promise((done) => setTimeout(done, 250));
  }
}

/** Resident memory of a process in MiB, from /proc (Linux); undefined elsewhere or once it ended. */
export function rssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}
