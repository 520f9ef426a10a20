/**
 * The push half of `npm run bench:push` (and the setup the SIGKILL test shares): a hub as its own process,
 * a provider (Muroran City) and N subscriber agencies (the pension service's kind) each holding a code for
 * one person and a subscription to her local-tax; the subscribers' intermediate server is one receiver in
 * another process (push-receiver.ts) that verifies every signature and de-duplicates by pushId. One update
 * is reported and the time runs until the receiver has every push and the hub has recorded every
 * PushDelivered: deliveries per second, end to end.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HUB_MAIN, REPO_ROOT, spawnBuilt, stop, waitReady, type Spawned } from '../../load-tests/runner/processes.js';
import { startPushReceiver, type PushReceiverProcess } from './push-receiver.js';

export const PUSH_PROVIDER = 'muroran-city';
const MURORAN = '012050';
const PROCEDURE = 'pension-award-claim';
const ITEM = 'local-tax';

/**
 * The authorization table v1 with push allowed on a municipality's local-tax and resident-record for the
 * pension award claim, the JASSO scholarship and the child allowance (format 2 rows).
 */
export function writePushTable(dir: string): string {
  const table = JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/authorization/authorization-table.v1.json'), 'utf8')) as {
    $schema?: string;
    rows: { procedure: { code: string }; providerKind: string; items: { code: string }[]; push?: string[] }[];
  };
  delete table.$schema;
  for (const row of table.rows) {
    if (row.providerKind !== 'municipality' || !['pension-award-claim', 'jasso-scholarship', 'child-allowance'].includes(row.procedure.code)) continue;
    const push = row.items.map((i) => i.code).filter((c) => c === 'local-tax' || c === 'resident-record');
    if (push.length > 0) row.push = push;
  }
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'push-table.json');
  writeFileSync(path, JSON.stringify(table));
  return path;
}

/** The hub's environment for a push run: the push table, no Redis, the given delivery settings. */
export function pushHubEnv(dataDir: string, tableFile: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HUB_DATA_DIR: dataDir,
    HUB_PORT: '0',
    HUB_HOST: '127.0.0.1',
    HUB_LOG_LEVEL: 'log',
    // Plain HTTP (the hub's own default is HUB_TLS=on): the bench and its receiver speak http.
    HUB_TLS: 'off',
    HUB_AUTHORIZATION_TABLE_FILE: tableFile,
    HUB_REDIS_URL: 'off',
    HUB_CHECKPOINT_EVERY_MS: '3600000',
    ...extra,
  };
}

/**
 * Runs the built hub (dist, as `npm run start:hub` does): Nest's injection needs the decorator metadata the
 * build emits (tsx does not), so `npm run build` comes first.
 */
export async function startPushHub(env: Record<string, string>, cwd: string): Promise<{ url: string; spawned: Spawned }> {
  if (!existsSync(HUB_MAIN)) throw new Error(`${HUB_MAIN} is missing: run \`npm run build\` first (the push bench and test run the built hub)`);
  const spawned = spawnBuilt('hub', HUB_MAIN, [], env, cwd, ['--max-semi-space-size=64']);
  return { url: await waitReady(spawned, 120_000), spawned };
}

async function call(url: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    // A code acquisition racing another for the same stream is retried by the hub; a 409/503 left is retried here.
    if ((res.status === 503 || res.status === 409) && attempt < 5) {
      await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
      continue;
    }
    return { status: res.status, json };
  }
}

function expectStatus(what: string, answer: { status: number; json: unknown }, ...ok: number[]): void {
  if (!ok.includes(answer.status)) throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.json)}`);
}

async function inParallel<T>(count: number, width: number, task: (i: number) => Promise<T>, onDone?: (done: number) => void): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        results[i] = await task(i);
        done += 1;
        onDone?.(done);
      }
    }),
  );
  return results;
}

export interface PushFanoutWorld {
  readonly providerToken: string;
  /** The provider's own code for the person. */
  readonly providerCode: string;
  readonly subscriberIds: readonly string[];
}

/**
 * Registers the provider (its endpoint: the receiver) and `subscribers` subscriber agencies (the
 * receiver's endpoint), numbers one person, gives every agency its code and subscribes each subscriber to
 * her local-tax at the provider.
 */
export async function seedPushFanout(url: string, dataDir: string, subscribers: number, endpoint: string, onProgress?: (phase: string, done: number, total: number) => void): Promise<PushFanoutWorld> {
  const operator = (JSON.parse(readFileSync(join(dataDir, 'keys', 'operator.token.json'), 'utf8')) as { token: string }).token;
  const publicKey = (generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }) as { x: string }).x;
  const register = async (agencyId: string, kind: string): Promise<string> => {
    const res = await call(url, '/v1/agencies', operator, { agencyId, name: agencyId, kind, endpoint, publicKey });
    expectStatus(`register ${agencyId}`, res, 201);
    return String(res.json['token']);
  };
  const providerToken = await register(PUSH_PROVIDER, 'municipality');
  const residentRecordCode = String(10_000_000_000 + Math.floor(Math.random() * 89_999_999_999)).slice(0, 11);
  const issued = await call(url, '/v1/individual-numbers', operator, { residentRecordCode, municipalityCode: MURORAN });
  expectStatus('issue a number', issued, 201);
  const individualNumber = String(issued.json['individualNumber']);
  const acquire = async (token: string, i: number): Promise<string> => {
    const res = await call(url, '/v1/agency-codes', token, { individualNumber, acquisitionNumber: `bench-${i}` });
    expectStatus('acquire a code', res, 200, 201);
    return String(res.json['code']);
  };
  const providerCode = await acquire(providerToken, -1);
  const subscriberIds = Array.from({ length: subscribers }, (_, i) => `push-sub-${String(i).padStart(6, '0')}`);
  const tokens = await inParallel(subscribers, 32, (i) => register(subscriberIds[i]!, 'pension-service'), (d) => onProgress?.('register', d, subscribers));
  const codes = await inParallel(subscribers, 32, (i) => acquire(tokens[i]!, i), (d) => onProgress?.('acquire', d, subscribers));
  await inParallel(
    subscribers,
    32,
    async (i) => {
      const res = await call(url, '/v1/subscriptions', tokens[i]!, { code: codes[i], providerAgencyId: PUSH_PROVIDER, procedureCode: PROCEDURE, itemCodes: [ITEM] });
      expectStatus(`subscribe ${subscriberIds[i]}`, res, 201);
    },
    (d) => onProgress?.('subscribe', d, subscribers),
  );
  return { providerToken, providerCode, subscriberIds };
}

/** Reports the update of the person's local-tax at the provider; answers the pushes the hub announced. */
export async function reportUpdate(url: string, world: PushFanoutWorld): Promise<{ updateId: string; subscribers: number }> {
  const res = await call(url, '/v1/updates', world.providerToken, { code: world.providerCode, itemCodes: [ITEM] });
  expectStatus('report the update', res, 202);
  return { updateId: String(res.json['updateId']), subscribers: Number(res.json['subscribers']) };
}

/** The provider's pushes counted per status (GET /v1/pushes?role=provider, every page). */
export async function pushStatuses(url: string, world: PushFanoutWorld): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let after: string | undefined;
  for (;;) {
    const res = await call(url, `/v1/pushes?role=provider&limit=500${after === undefined ? '' : `&after=${after}`}`, world.providerToken);
    expectStatus('list pushes', res, 200);
    for (const p of res.json['pushes'] as { status: string }[]) counts[p.status] = (counts[p.status] ?? 0) + 1;
    after = res.json['next'] as string | undefined;
    if (after === undefined) return counts;
  }
}

/**
 * One update fanned out to `subscribers` subscribers (default 10,000), end to end to a receiver in another
 * process: from the report to the last PushDelivered recorded. `dir` holds the hub's data (a fresh subdir).
 */
export async function measurePushFanout(options: { subscribers: number; dir: string; onProgress?: (done: number, total: number) => void }): Promise<{ pushDeliveriesPerS: number; subscribers: number; seconds: number }> {
  const subscribers = options.subscribers > 0 ? options.subscribers : 10_000;
  const dataDir = join(options.dir, `push-fanout-${Date.now()}`);
  mkdirSync(dataDir, { recursive: true });
  const tableFile = writePushTable(join(dataDir, 'tables'));
  let hub: Awaited<ReturnType<typeof startPushHub>> | undefined;
  let receiver: PushReceiverProcess | undefined;
  try {
    hub = await startPushHub(pushHubEnv(join(dataDir, 'hub'), tableFile, { HUB_PUSH_CONCURRENCY: '128', HUB_PUSH_RETRY_BASE_MS: '200' }), dataDir);
    const hubKey = String(((await (await fetch(`${hub.url}/v1/hub/keys`)).json()) as { provisionSigningKey: string }).provisionSigningKey);
    receiver = await startPushReceiver({ hubKey });
    const world = await seedPushFanout(hub.url, join(dataDir, 'hub'), subscribers, receiver.endpoint);
    const started = process.hrtime.bigint();
    const reported = await reportUpdate(hub.url, world);
    if (reported.subscribers !== subscribers) throw new Error(`the hub announced ${reported.subscribers} pushes for ${subscribers} subscribers`);
    for (;;) {
      const stats = await receiver.stats();
      options.onProgress?.(stats.distinct, subscribers);
      if (stats.distinct >= subscribers) {
        const statuses = await pushStatuses(hub.url, world);
        if ((statuses['delivered'] ?? 0) >= subscribers) break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const stats = await receiver.stats();
    if (stats.badSignatures > 0) throw new Error(`${stats.badSignatures} push(es) failed the signature check`);
    return { pushDeliveriesPerS: subscribers / seconds, subscribers, seconds };
  } finally {
    await receiver?.stop();
    if (hub !== undefined) await stop(hub.spawned, 30_000);
  }
}
