import { randomUUID } from 'node:crypto';
import { Inject, Logger, Module, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyBaseLogger } from 'fastify';
import type { DestinationStream } from 'pino';
import type { AnswerKeyPair } from '#sealed-answer';
import { databasePath, keysDir, type AgencyConfig } from './config/agency-config.js';
import { HealthController } from './health/health.controller.js';
import { HubClient } from './hub/hub-client.js';
import { HubKeys, singleKeySet } from './hub/hub-keys.js';
import { tlsFetch } from './hub/tls-fetch.js';
import { ProblemDetailsFilter } from './http/problem-details.filter.js';
import { installJsonParser } from './http/raw-body.js';
import { StaffGuard } from './http/staff.guard.js';
import { DtoValidationPipe } from './http/validation.pipe.js';
import { loadOrCreateAnswerKeys } from './keys/answer-keys.js';
import { PinoNestLogger, RequestLogController, captureSerials, createLogSink, type LogSink } from '#logging';
import { installAgencyMetrics } from './metrics/agency-metrics.js';
import { CopyUpdatesService } from './mesh/copy-updates.service.js';
import { PushesController, SubscriptionsController, UpdatesController } from './mesh/mesh.controller.js';
import { PushFetcher, type FetcherOptions } from './mesh/push-fetcher.js';
import { PushReceiver } from './mesh/push-receiver.js';
import { SubscriptionsService } from './mesh/subscriptions.service.js';
import { ProviderService } from './provider/provider.service.js';
import { ProvisionEndpoint } from './provider/provision-endpoint.js';
import { ProvisionSchemas } from './provider/provision-protocol.js';
import { ProvisionsController } from './provider/provisions.controller.js';
import { RequesterController } from './requester/requester.controller.js';
import { RequesterService } from './requester/requester.service.js';
import { AgencyStore } from './store/agency-store.js';
import { AGENCY_CONFIG, CLOCK, type Clock } from './tokens.js';

/** Everything the server runs on, opened before Nest starts: the store, the keys, the hub client. */
export interface AgencyRuntime {
  readonly config: AgencyConfig;
  readonly store: AgencyStore;
  readonly keys: AnswerKeyPair;
  readonly hub: HubClient;
  /** The hub's provision-signing public key that signed at start (base64url raw 32 bytes). */
  readonly hubProvisionKey: string;
  /** The hub's provision signing keys: what checks hub-signature (provisions, pushes). */
  readonly hubKeys: HubKeys;
  readonly clock: Clock;
  /** The provision protocol's handler, shared by the HTTP controller and the gRPC server. */
  readonly provisions: ProvisionEndpoint;
  readonly requester: RequesterService;
  /** The public service mesh: pushes received, their fetch (when AGENCY_PUSH_FETCH=on), copy updates, subscriptions. */
  readonly pushes: PushReceiver;
  readonly fetcher: PushFetcher | undefined;
  readonly updates: CopyUpdatesService;
  readonly subscriptions: SubscriptionsService;
}

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly fetch?: typeof fetch;
  /** The push fetcher's attempts and backoff (tests shorten them). */
  readonly fetcher?: FetcherOptions;
}

/** Opens the store and keys, and gets the hub's provision key (from the configuration, else once from the hub). */
export async function openAgencyRuntime(config: AgencyConfig, options: RuntimeOptions = {}): Promise<AgencyRuntime> {
  if (config.hub === undefined) throw new Error('the server needs AGENCY_HUB_URL and a hub token');
  const hub = new HubClient(config.hub, options.fetch ?? (config.tls === undefined ? fetch : tlsFetch(config.tls)));
  const keys = await loadOrCreateAnswerKeys(keysDir(config));
  // A pinned key (AGENCY_HUB_PROVISION_KEY) is the only one; else the hub's key set, fetched again (bounded) on an unknown key id.
  const clock = options.clock ?? (() => new Date());
  const nowMs = () => clock().getTime();
  const hubKey =
    config.hub.provisionKey !== undefined
      ? new HubKeys(singleKeySet(config.hub.provisionKey), undefined, nowMs)
      : new HubKeys(await hub.provisionSigningKeys(), () => hub.provisionSigningKeys(), nowMs);
  const hubProvisionKey = hubKey.currentPublicKey;
  const store = new AgencyStore(databasePath(config));
  const provisions = new ProvisionEndpoint(new ProviderService(config.agencyId, store, clock), new ProvisionSchemas(), hubKey, clock);
  const requester = new RequesterService(store, hub, keys, clock);
  const pushes = new PushReceiver(config.agencyId, store, hubKey, clock, config.pushFetch);
  const fetcher = config.pushFetch ? new PushFetcher(store, requester, clock, options.fetcher) : undefined;
  if (fetcher !== undefined) pushes.notify((pushId) => fetcher.enqueue(pushId));
  const updates = new CopyUpdatesService(store, hub, clock);
  const subscriptions = new SubscriptionsService(store, hub);
  return { config, store, keys, hub, hubProvisionKey, hubKeys: hubKey, clock, provisions, requester, pushes, fetcher, updates, subscriptions };
}

/** The log sink of the server, flushed last at shutdown. */
const LOG_SINK = Symbol('LOG_SINK');

@Module({})
export class AgencyModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(AgencyStore) private readonly store: AgencyStore,
    @Inject(LOG_SINK) private readonly logs: LogSink | null,
    @Inject(PushFetcher) private readonly fetcher: PushFetcher | null,
    @Inject(CopyUpdatesService) private readonly updates: CopyUpdatesService,
  ) {}

  /** Resumes what a stop or crash left: fetches after pushes, and update reports the hub has not taken yet. */
  onApplicationBootstrap(): void {
    const logger = new Logger('AgencyMesh');
    const fetches = this.fetcher?.resume() ?? 0;
    if (fetches > 0) logger.log(`resuming ${fetches} fetch(es) after pushes received earlier`);
    if (this.store.mesh.counts().pendingReports > 0) {
      void this.updates.reportPending().then(
        (r) => logger.log(`update reports sent again at start: ${r.reported} reported, ${r.pending} still pending`),
        (error: unknown) => logger.error(`update reports at start failed: ${error instanceof Error ? error.message : String(error)}`),
      );
    }
  }

  static forRoot(runtime: AgencyRuntime, logs?: LogSink): DynamicModule {
    return {
      module: AgencyModule,
      controllers: [ProvisionsController, RequesterController, PushesController, UpdatesController, SubscriptionsController, HealthController],
      providers: [
        { provide: AGENCY_CONFIG, useValue: runtime.config },
        { provide: AgencyStore, useValue: runtime.store },
        { provide: LOG_SINK, useValue: logs ?? null },
        { provide: CLOCK, useValue: runtime.clock },
        { provide: ProvisionEndpoint, useValue: runtime.provisions },
        { provide: RequesterService, useValue: runtime.requester },
        { provide: PushReceiver, useValue: runtime.pushes },
        { provide: PushFetcher, useValue: runtime.fetcher ?? null },
        { provide: CopyUpdatesService, useValue: runtime.updates },
        { provide: SubscriptionsService, useValue: runtime.subscriptions },
        StaffGuard,
      ],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    // Fetches not done stay pending in the store; the next start resumes them.
    await this.fetcher?.stop();
    await this.store.close();
    // Nest then raises the signal again, which ends the process without an exit event: write out now.
    this.logs?.flush();
  }
}

export interface CreateAgencyAppOptions {
  /** Where the JSON log lines go; default: stdout. */
  readonly logStream?: DestinationStream;
}

/** The server's application and its log sink (flushed before the process ends). */
export interface AgencyApp {
  readonly app: NestFastifyApplication;
  readonly logs: LogSink;
}

/**
 * Creates and configures the server (not yet listening); the same wiring for main.ts and the tests. It
 * logs JSON lines with pino at AGENCY_LOG_LEVEL (Fastify's logger, one line per answered request, and
 * Nest's through PinoNestLogger) and serves its Prometheus metrics at GET /metrics.
 */
export async function createAgencyApp(runtime: AgencyRuntime, options: CreateAgencyAppOptions = {}): Promise<NestFastifyApplication> {
  return (await createAgencyAppWithLogs(runtime, options)).app;
}

export async function createAgencyAppWithLogs(runtime: AgencyRuntime, options: CreateAgencyAppOptions = {}): Promise<AgencyApp> {
  const { config } = runtime;
  const logs = createLogSink('agency-node', config.logLevel, options.logStream);
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    // AGENCY_TLS_FILE: HTTPS with the certificate the hub's CA issued to this agency (the hub checks it against the registration).
    ...(config.tls === undefined ? {} : { https: { key: config.tls.privateKeyPem, cert: config.tls.certificatePem } }),
    loggerInstance: logs.logger,
    // The server's own id of each request, for its log line (a caller's header is never taken as it).
    genReqId: () => randomUUID(),
    logController: new RequestLogController(logs.logger, (request) => request.id),
    childLoggerFactory: (logger: FastifyBaseLogger) => logger,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AgencyModule.forRoot(runtime, logs), adapter, { bodyParser: false, logger: new PinoNestLogger(logs.logger) });
  const fastify = app.getHttpAdapter().getInstance();
  installJsonParser(fastify, config.bodyLimitBytes);
  app.useGlobalFilters(new ProblemDetailsFilter());
  app.useGlobalPipes(new DtoValidationPipe());
  installAgencyMetrics(app, runtime.provisions, { pushes: runtime.pushes, fetcher: runtime.fetcher });
  captureSerials(fastify, logs.logger);
  return { app, logs };
}
