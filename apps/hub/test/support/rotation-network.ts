import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { loadOrCreateAnswerKeys } from '../../../agency-node/src/keys/answer-keys.js';
import { demoCopies, startTestNode, type TestNode } from '../../../agency-node/test/support/agency-fixture.js';
import { acquire, bearer, issuePerson, registerAgency, type Agency } from './linkage-fixture.js';
import { startTestHub, type TestHub, type TestHubOptions } from './test-hub.js';

export const MURORAN_CITY = 'muroran-city';
export const PENSION = 'jpn-pension-service';
/** Aoyama-san at Muroran City (demo copies of apps/agency-node/demo). */
export const AOYAMA_M = 'M-000123';

/**
 * The demo network in one process: the hub (listening on a loopback port), Muroran City's real
 * intermediate server as the provider (listening too; it fetches the hub's keys from the hub as in
 * production, no key pinned), and the pension service as a requester calling the hub with its token.
 */
export interface RotationNetwork {
  hub: TestHub;
  hubUrl: string;
  readonly node: TestNode;
  readonly pension: Agency;
  /** The pension service's code for Aoyama-san. */
  readonly codeA: string;
  readonly individualNumber: string;
  /** A lawful query of Aoyama-san's local tax: its HTTP status and outcome (or the problem). */
  query(code?: string): Promise<string>;
  /** Restarts the hub on its data dir and port (the intermediate server stays up). */
  restartHub(env?: Readonly<Record<string, string>>): Promise<void>;
  dispose(): Promise<void>;
}

export const NETWORK_ENV = { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_SELF_DISCLOSURE_TABLE_FILE: '' };

export async function startRotationNetwork(options: TestHubOptions = {}): Promise<RotationNetwork> {
  const env = { ...NETWORK_ENV, ...options.env };
  let hub = await startTestHub({ ...options, env });
  await hub.app.listen({ port: 0, host: '127.0.0.1' });
  let hubUrl = (await hub.app.getUrl()).replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
  const nodeDir = mkdtempSync(join(tmpdir(), 'rotation-node-'));
  const answerKeys = await loadOrCreateAnswerKeys(join(nodeDir, 'keys'));
  const registered = await hub.post('/v1/agencies', { agencyId: MURORAN_CITY, name: '室蘭市', kind: 'municipality', endpoint: 'http://127.0.0.1:9', publicKey: answerKeys.publicKey, municipalityCode: '012050' }, hub.operator);
  expect(registered.statusCode, registered.body).toBe(201);
  const node = await startTestNode({ agencyId: MURORAN_CITY, hubUrl, hubToken: registered.json<{ token: string }>().token, dataDir: nodeDir });
  await node.app.listen({ port: 0, host: '127.0.0.1' });
  const patched = await hub.inject({ method: 'PATCH', url: `/v1/agencies/${MURORAN_CITY}`, headers: { ...hub.operator, 'content-type': 'application/json' }, payload: JSON.stringify({ endpoint: await node.app.getUrl() }) });
  expect(patched.statusCode, patched.body).toBe(200);
  // Every demo person answered automatically (the demo flags one for manual handling).
  node.runtime.store.loadCopies(demoCopies(MURORAN_CITY).map((c) => ({ ...c, restricted: false })), new Date());
  const person = await issuePerson(hub);
  await node.runtime.requester.acquire({ localId: AOYAMA_M, individualNumber: person.individualNumber, acquisitionNumber: 'ROT-M-1' });
  const pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
  const codeA = await acquire(hub, pension, person.individualNumber, 'ROT-P-1');
  const network: RotationNetwork = {
    hub,
    hubUrl,
    node,
    pension,
    codeA,
    individualNumber: person.individualNumber,
    query: async (code = codeA) => {
      const res = await network.hub.post('/v1/queries', { providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], code }, bearer(pension.token));
      if (res.statusCode !== 200) return `HTTP ${res.statusCode} ${res.body.slice(0, 300)}`;
      const body = res.json<{ outcome: string; failure?: unknown; reason?: unknown }>();
      return body.outcome === 'answered' ? 'answered' : `${body.outcome} ${JSON.stringify(body)}`;
    },
    restartHub: async (extra = {}) => {
      const dataDir = network.hub.dataDir;
      await network.hub.close();
      hub = await startTestHub({ ...options, dataDir, env: { ...env, ...extra } });
      // On the same port: the intermediate server knows the hub by its URL.
      await hub.app.listen({ port: Number(new URL(hubUrl).port), host: '127.0.0.1' });
      hubUrl = (await hub.app.getUrl()).replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
      network.hub = hub;
      network.hubUrl = hubUrl;
    },
    dispose: async () => {
      await node.close();
      rmSync(nodeDir, { recursive: true, force: true });
      await network.hub.dispose();
    },
  };
  return network;
}

/**
 * Queries running back to back from `workers` callers while `during` runs: at least `before` answered
 * before it starts and `after` once it is done. Every outcome is kept, in order.
 */
export async function underLoad<T>(network: RotationNetwork, during: () => Promise<T>, options: { workers?: number; before?: number; after?: number; code?: () => string } = {}): Promise<{ result: T; outcomes: string[]; duringFrom: number; duringTo: number }> {
  const outcomes: string[] = [];
  let stop = false;
  const worker = async () => {
    while (!stop) outcomes.push(await network.query(options.code?.()));
  };
  const workers = Array.from({ length: options.workers ?? 4 }, worker);
  const reach = async (n: number) => {
    const deadline = Date.now() + 60_000;
    while (outcomes.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    await reach(options.before ?? 8);
    const duringFrom = outcomes.length;
    const result = await during();
    const duringTo = outcomes.length;
    await reach(duringTo + (options.after ?? 8));
    return { result, outcomes, duringFrom, duringTo };
  } finally {
    stop = true;
    await Promise.all(workers);
  }
}
