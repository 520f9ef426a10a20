import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createAgencyApp, openAgencyRuntime, type AgencyRuntime } from '../../src/agency-app.js';
import { loadAgencyConfig } from '../../src/config/agency-config.js';
import type { FetcherOptions } from '../../src/mesh/push-fetcher.js';
import type { CopyRecord } from '../../src/store/agency-store.js';

export const DEMO_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../demo');

export function demoCopies(name: 'muroran-city' | 'jpn-pension-service'): CopyRecord[] {
  return JSON.parse(readFileSync(join(DEMO_DIR, `${name}.copies.json`), 'utf8')) as CopyRecord[];
}

/** A stand-in for the hub's provision-signing key, generated per test run. */
export interface TestSigner {
  readonly publicKey: string;
  sign(body: string): string;
}

export function testSigner(): TestSigner {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x!;
  return { publicKey: raw, sign: (body) => `ed25519=${sign(null, Buffer.from(body, 'utf8'), privateKey as KeyObject).toString('base64url')}` };
}

export interface TestNode {
  readonly app: NestFastifyApplication;
  readonly runtime: AgencyRuntime;
  readonly dataDir: string;
  /** Moves the node's clock. */
  setNow(date: Date): void;
  close(): Promise<void>;
}

/**
 * The node over Fastify inject, with its own data dir, the test signer's key as the hub's (pinned; without
 * a signer the node fetches the hub's keys from hubUrl, as it does in production), and a settable clock.
 */
export async function startTestNode(options: {
  agencyId: string;
  signer?: TestSigner;
  hubUrl?: string;
  /** The agency's token for the hub (default: a placeholder for stand-in hubs). */
  hubToken?: string;
  staffToken?: string;
  now?: Date;
  /** An existing data dir (a restart); it is then left in place by close(). */
  dataDir?: string;
  /** AGENCY_PUSH_FETCH=on, with the fetcher's attempts and backoff. */
  pushFetch?: FetcherOptions;
}): Promise<TestNode> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'agency-node-int-'));
  const config = loadAgencyConfig(
    {
      AGENCY_ID: options.agencyId,
      AGENCY_DATA_DIR: dataDir,
      AGENCY_HUB_URL: options.hubUrl ?? 'http://127.0.0.1:9',
      AGENCY_TOKEN: options.hubToken ?? 'test-agency-token',
      ...(options.signer === undefined ? {} : { AGENCY_HUB_PROVISION_KEY: options.signer.publicKey }),
      AGENCY_HUB_TIMEOUT_MS: '2000',
      AGENCY_LOG_LEVEL: 'error',
      ...(options.staffToken ? { AGENCY_STAFF_TOKEN_FILE: 'staff-token' } : {}),
      ...(options.pushFetch ? { AGENCY_PUSH_FETCH: 'on' } : {}),
    },
    { needsHub: true, readFile: () => options.staffToken ?? '' },
  );
  let now = options.now ?? new Date();
  const runtime = await openAgencyRuntime(config, { clock: () => now, ...(options.pushFetch ? { fetcher: options.pushFetch } : {}) });
  const app = await createAgencyApp(runtime);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return {
    app,
    runtime,
    dataDir,
    setNow: (d) => (now = d),
    close: async () => {
      await app.close();
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
