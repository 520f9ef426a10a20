import 'reflect-metadata';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { EventStore } from '#ledger';
import { readLogTexts, type KurrentLogClient } from '#ledger/kurrentdb-event-store';
import { FakeKurrentDb } from '../../../libs/ledger/test/fixtures/fake-kurrentdb.js';
import { AppModule } from '../src/app.module.js';
import { loadHubConfig } from '../src/config/hub-config.js';
import { HUB_APP_OPTIONS, configureHubApp, hubFastifyAdapter } from '../src/hub-app.js';
import type { Leadership } from '../src/leadership/leadership.js';
import { LEADERSHIP } from '../src/leadership/tokens.js';
import { EVENT_STORE, KURRENTDB_CLIENT, LEDGER } from '../src/ledger/tokens.js';
import { IdentifierVault } from '../src/vault/identifier-vault.js';
import { CapturingLogger, type TestHub } from './support/test-hub.js';

/** The real KurrentDB the hub tests run against when set, else the in-process stand-in. */
export const KURRENTDB_URL = process.env['KURRENTDB_URL'];

/** Said once per file, so that the output tells which server the tests ran against. */
export function announceServer(): void {
  if (KURRENTDB_URL === undefined || KURRENTDB_URL === '') console.warn('KurrentDB hub tests ran against the stand-in (KURRENTDB_URL not set)');
  else console.warn(`KurrentDB hub tests ran against the KurrentDB server at KURRENTDB_URL`);
}

/**
 * One KurrentDB log shared by the hubs of a test: the stand-in server (or the real one with a log stream
 * of its own), and the files every hub of the deployment shares: the keys (keys/). The person and year
 * keys the events are sealed under are shared through KurrentDB (docs/keyring.md).
 */
export class SharedLog {
  readonly fake: FakeKurrentDb | undefined = KURRENTDB_URL ? undefined : new FakeKurrentDb();
  readonly logStream = `linkage-ledger-test-${randomUUID()}`;
  readonly sharedDir = mkdtempSync(join(tmpdir(), 'hub-kdb-shared-'));
  private readonly dirs: string[] = [this.sharedDir];
  private reader: KurrentLogClient | undefined;

  constructor() {
    mkdirSync(join(this.sharedDir, 'keys'), { recursive: true, mode: 0o700 });
  }

  /** A client of this log's server for the test's own reads. */
  async client(): Promise<KurrentLogClient> {
    if (this.fake !== undefined) return this.fake;
    const { KurrentDBClient } = await import('@kurrent/kurrentdb-client');
    this.reader ??= KurrentDBClient.connectionString(KURRENTDB_URL!);
    return this.reader;
  }

  /** The log's stored texts as the server holds them: [0, head). */
  async texts(): Promise<string[]> {
    return readLogTexts(await this.client(), this.logStream, 0, 1_000_000_000);
  }

  /** A fresh data dir whose keys are the shared ones (the key ring is shared through KurrentDB; each hub keeps its own copy). */
  dataDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'hub-kdb-'));
    symlinkSync(join(this.sharedDir, 'keys'), join(dir, 'keys'));
    this.dirs.push(dir);
    return dir;
  }

  async dispose(): Promise<void> {
    await this.reader?.dispose();
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

export interface KurrentTestHub extends TestHub {
  readonly leadership: Leadership;
}

/** A hub as main.ts wires it, on the shared KurrentDB log, driven by Fastify inject. */
export async function startKurrentHub(log: SharedLog, options: { instanceId: string; dataDir?: string; env?: Readonly<Record<string, string>> }): Promise<KurrentTestHub> {
  const dataDir = options.dataDir ?? log.dataDir();
  const config = loadHubConfig({
    HUB_DATA_DIR: dataDir,
    HUB_EVENT_STORE: KURRENTDB_URL || 'kurrentdb://stand-in.invalid:2113?tls=false',
    HUB_KURRENTDB_LOG_STREAM: log.logStream,
    HUB_INSTANCE_ID: options.instanceId,
    HUB_LEADERSHIP_RENEW_MS: '200',
    HUB_LEADERSHIP_LEASE_MS: '1000',
    HUB_AUTHORIZATION_TABLE_FILE: 'none',
    HUB_SELF_DISCLOSURE_TABLE_FILE: 'none',
    HUB_REDIS_URL: 'off',
    HUB_CHECKPOINT_EVERY_MS: '3600000',
    ...options.env,
  });
  let builder = Test.createTestingModule({ imports: [AppModule.forRoot(config)] });
  if (log.fake !== undefined) builder = builder.overrideProvider(KURRENTDB_CLIENT).useValue(log.fake);
  const moduleRef = await builder.compile();
  const logger = new CapturingLogger();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(hubFastifyAdapter(config), { ...HUB_APP_OPTIONS, logger });
  configureHubApp(app, config);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const store = app.get<EventStore>(EVENT_STORE);
  const bearerOf = (file: string) => ({ authorization: `Bearer ${(JSON.parse(readFileSync(join(config.keysDir, file), 'utf8')) as { token: string }).token}` });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
  };
  return {
    app,
    config,
    dataDir,
    store,
    ledger: app.get<EventStore>(LEDGER),
    vault: app.get(IdentifierVault),
    logger,
    leadership: app.get<Leadership>(LEADERSHIP),
    auditor: bearerOf('auditor.token.json'),
    operator: bearerOf('operator.token.json'),
    inject: (o) => app.inject(o),
    post: (url, body, headers = {}) => app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) }),
    get: (url, headers = {}) => app.inject({ method: 'GET', url, headers }),
    head: () => store.head(),
    close,
    dispose: close,
  };
}

/** Polls `check` until it holds (or throws after `ms`). */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
