import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TestingModuleBuilder } from '@nestjs/testing';
import { readLogTexts, type KurrentLogClient } from '#ledger/kurrentdb-event-store';
import { FakeKurrentDb } from '../../../libs/ledger/test/fixtures/fake-kurrentdb.js';
import { kurrentServerLabel, startKurrentTestServer, type KurrentTestServer } from '../../../libs/ledger/test/fixtures/kurrentdb-test-server.js';
import type { Leadership } from '../src/leadership/leadership.js';
import { LEADERSHIP } from '../src/leadership/tokens.js';
import { KURRENTDB_CLIENT } from '../src/ledger/tokens.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

/** The real KurrentDB the hub tests run against when set, else the wire-level stand-in. */
export const KURRENTDB_URL = process.env['KURRENTDB_URL'] || undefined;

/** Said once per file, so that the output tells which server the tests ran against. */
export function announceServer(): void {
  console.warn(`KurrentDB hub tests ran against ${kurrentServerLabel()}`);
}

/**
 * One KurrentDB log shared by the hubs of a test: a server (the wire-level stand-in on a loopback port,
 * libs/ledger/test/fixtures/kurrentdb-wire-server.ts, or the real one at KURRENTDB_URL) with a log stream
 * of its own, and the files every hub of the deployment shares: the keys (keys/). The hubs reach the
 * server through the real @kurrent/kurrentdb-client (HUB_EVENT_STORE is the server's connection string).
 * The person and year keys the events are sealed under are shared through KurrentDB (docs/keyring.md).
 *
 * `inProcess: true` hands the hubs the in-process FakeKurrentDb as their client instead (no gRPC), for a
 * test that must reach into the client itself.
 */
export class SharedLog {
  /** The stand-in's storage (what the server holds; faults are injected here); undefined on a real server. */
  readonly fake: FakeKurrentDb | undefined = KURRENTDB_URL ? undefined : new FakeKurrentDb();
  readonly logStream = `linkage-ledger-test-${randomUUID()}`;
  readonly sharedDir = mkdtempSync(join(tmpdir(), 'hub-kdb-shared-'));
  readonly inProcess: boolean;
  private readonly dirs: string[] = [this.sharedDir];
  private reader: KurrentLogClient | undefined;
  private server: Promise<KurrentTestServer> | undefined;

  constructor(options: { readonly inProcess?: boolean } = {}) {
    this.inProcess = (options.inProcess ?? false) && this.fake !== undefined;
    mkdirSync(join(this.sharedDir, 'keys'), { recursive: true, mode: 0o700 });
  }

  /** The server of this log, started at first use (the stand-in on an ephemeral port), or the one at KURRENTDB_URL. */
  kurrent(): Promise<KurrentTestServer> {
    this.server ??= startKurrentTestServer(this.fake === undefined ? {} : { db: this.fake });
    return this.server;
  }

  /**
   * The stand-in server goes away (every connection dropped) and comes back on the same port with the
   * same storage after `downMs`, as a KurrentDB restart looks to its clients. Only on the stand-in.
   */
  async restartServer(downMs: number): Promise<void> {
    const server = await this.kurrent();
    if (server.wire === undefined) throw new Error('only the stand-in can be restarted from a test');
    await server.wire.close();
    await new Promise((r) => setTimeout(r, downMs));
    await server.wire.reopen();
  }

  /** The connection string the hubs of this log are given (HUB_EVENT_STORE). */
  async url(): Promise<string> {
    return (await this.kurrent()).url;
  }

  /** A client of this log's server for the test's own reads (the real client, over gRPC). */
  async client(): Promise<KurrentLogClient> {
    if (this.inProcess) return this.fake!;
    this.reader ??= (await this.kurrent()).connect();
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
    this.reader = undefined;
    await (await this.server)?.dispose();
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

export interface KurrentTestHub extends TestHub {
  readonly leadership: Leadership;
}

/** A hub as main.ts wires it, on the shared KurrentDB log, driven by Fastify inject (startTestHub with the log's settings). */
export async function startKurrentHub(log: SharedLog, options: { instanceId: string; dataDir?: string; env?: Readonly<Record<string, string>> }): Promise<KurrentTestHub> {
  const fake = log.inProcess ? log.fake : undefined;
  const hub = await startTestHub({
    dataDir: options.dataDir ?? log.dataDir(),
    env: {
      HUB_EVENT_STORE: fake === undefined ? await log.url() : 'kurrentdb://stand-in.invalid:2113?tls=false',
      HUB_KURRENTDB_LOG_STREAM: log.logStream,
      HUB_INSTANCE_ID: options.instanceId,
      HUB_LEADERSHIP_RENEW_MS: '200',
      HUB_LEADERSHIP_LEASE_MS: '1000',
      ...options.env,
    },
    ...(fake === undefined ? {} : { override: (builder: TestingModuleBuilder) => builder.overrideProvider(KURRENTDB_CLIENT).useValue(fake) }),
  });
  // The shared log removes the data dirs at its end: a hub's dispose only closes it (a test may restart on its dir).
  return { ...hub, leadership: hub.app.get<Leadership>(LEADERSHIP), dispose: hub.close };
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
