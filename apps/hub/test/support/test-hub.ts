import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoggerService } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import type { InjectOptions, Response } from 'light-my-request';
import { expect } from 'vitest';
import type { EventStore, RecordedEvent } from '#ledger';
import { localGovernmentCodeCheckDigit } from '#numbering';
import { AppModule } from '../../src/app.module.js';
import { loadHubConfig, type HubConfig } from '../../src/config/hub-config.js';
import { HUB_APP_OPTIONS, configureHubApp, hubFastifyAdapter } from '../../src/hub-app.js';
import { CLOCK, EVENT_STORE, LEDGER } from '../../src/ledger/tokens.js';
import { NumberGenerator } from '../../src/numbering/number-generator.js';
import { IdentifierVault } from '../../src/vault/identifier-vault.js';

/** Muroran and Sapporo: in schemas/municipalities.json. */
export const MURORAN = '012050';
export const SAPPORO = '011002';

/** A local government code with a valid check digit that is not in the municipality list. */
export function unlistedMunicipality(): string {
  return `01999${localGovernmentCodeCheckDigit('01999')}`;
}

let resident = 10_000_000_000;
/** A fresh 11-digit resident record code. */
export function nextResidentRecordCode(): string {
  resident += 7919;
  return String(resident);
}

/** Keeps what the app logs, for assertions on error logging. */
export class CapturingLogger implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', message: String(message) });
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.lines.push({ level: 'error', message: [message, ...rest].map(String).join(' ') });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  debug(): void {}
  verbose(): void {}
}

export interface TestHubOptions {
  readonly dataDir?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Replaces the random number source. */
  readonly numbers?: Partial<NumberGenerator>;
  /** Replaces the hub's clock (every business time and the retention sweep read it). */
  readonly clock?: () => Date;
  /** Further provider overrides (e.g. the KurrentDB client of a stand-in server). */
  readonly override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
}

export interface TestHub {
  readonly app: NestFastifyApplication;
  readonly config: HubConfig;
  readonly dataDir: string;
  /** The log as stored: personal fields sealed (what auditors, the tree and the relay read). */
  readonly store: EventStore;
  /** The log as command handlers read it: events opened with the hub's keys. */
  readonly ledger: EventStore;
  readonly vault: IdentifierVault;
  readonly logger: CapturingLogger;
  /** `authorization: Bearer <auditor token>` (keys/auditor.token.json): raw events are the auditor's to read. */
  readonly auditor: Record<string, string>;
  /** `authorization: Bearer <operator token>` (keys/operator.token.json): numbering, designations, the registry. */
  readonly operator: Record<string, string>;
  inject(options: InjectOptions): Promise<Response>;
  post(url: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  get(url: string, headers?: Record<string, string>): Promise<Response>;
  head(): Promise<number>;
  close(): Promise<void>;
  /** Closes the app and deletes the data directory. */
  dispose(): Promise<void>;
}

function bearerOf(keysDir: string, file: string): Record<string, string> {
  return { authorization: `Bearer ${(JSON.parse(readFileSync(join(keysDir, file), 'utf8')) as { token: string }).token}` };
}

/** The hub as main.ts wires it, on a temp-dir SQLite ledger, driven by Fastify inject (no socket). */
export async function startTestHub(options: TestHubOptions = {}): Promise<TestHub> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'hub-int-'));
  // Unless a test asks: no table published (the log starts empty), no Redis, no time-driven
  // checkpoint appearing in the middle of a test that counts events, and no TLS (inject has no socket:
  // HUB_TLS=on, the process's default, is tested by the tls-* specs).
  const config = loadHubConfig({
    HUB_DATA_DIR: dataDir,
    HUB_TLS: 'off',
    HUB_AUTHORIZATION_TABLE_FILE: 'none',
    HUB_SELF_DISCLOSURE_TABLE_FILE: 'none',
    HUB_REDIS_URL: 'off',
    HUB_CHECKPOINT_EVERY_MS: '3600000',
    ...options.env,
  });
  let builder = Test.createTestingModule({ imports: [AppModule.forRoot(config)] });
  if (options.numbers) {
    const real = new NumberGenerator();
    builder = builder.overrideProvider(NumberGenerator).useValue({
      individualNumber: options.numbers.individualNumber ?? (() => real.individualNumber()),
      corporateNumberBase: options.numbers.corporateNumberBase ?? (() => real.corporateNumberBase()),
    });
  }
  if (options.clock !== undefined) builder = builder.overrideProvider(CLOCK).useValue(options.clock);
  if (options.override !== undefined) builder = options.override(builder);
  const moduleRef = await builder.compile();
  const logger = new CapturingLogger();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(hubFastifyAdapter(config), { ...HUB_APP_OPTIONS, logger });
  configureHubApp(app, config);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const store = app.get<EventStore>(EVENT_STORE);
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
    auditor: bearerOf(config.keysDir, 'auditor.token.json'),
    operator: bearerOf(config.keysDir, 'operator.token.json'),
    inject: (o) => app.inject(o),
    post: (url, body, headers = {}) =>
      app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) }),
    get: (url, headers = {}) => app.inject({ method: 'GET', url, headers }),
    head: () => store.head(),
    close,
    dispose: async () => {
      await close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The refusal events of I6: what a refused request may append, and nothing else. */
export const REFUSAL_TYPES: readonly string[] = ['RequestRefused', 'UnauthenticatedRequestsRecorded', 'QueryDenied'];

/**
 * Asserts that since position `from` the log holds refusal events only (RequestRefused: a refused request
 * of an identified caller records its refusal, I6), at most `max` of them; answers them.
 */
export async function expectNothingButRefusals(hub: Pick<TestHub, 'store'>, from: number, max = Number.MAX_SAFE_INTEGER): Promise<readonly RecordedEvent[]> {
  const events = await hub.store.readAll({ fromPosition: from });
  const types = events.map((e) => e.type);
  for (const type of types) expect(REFUSAL_TYPES, `appended ${JSON.stringify(types)}`).toContain(type);
  expect(events.length, `appended ${JSON.stringify(types)}`).toBeLessThanOrEqual(max);
  return events;
}
