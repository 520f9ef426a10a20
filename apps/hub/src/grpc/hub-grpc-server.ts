import { Logger, type INestApplicationContext } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { Server, type ServerInterceptor, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { AuditController } from '../audit/audit.controller.js';
import { auditService } from './audit.grpc-service.js';
import { healthService } from './health.grpc-service.js';
import { linkageService } from './linkage.grpc-service.js';
import { numberingService } from './numbering.grpc-service.js';
import { subscriptionsService } from './subscriptions.grpc-service.js';
import { SubscriptionsService } from '../subscriptions/subscriptions.service.js';
import { updatesService } from '../pushes/updates.grpc-service.js';
import { PushFanOut } from '../pushes/push-fan-out.js';
import { PushRecords } from '../pushes/push-records.js';
import { Authenticator } from '../linkage/authenticator.js';
import { Refusals } from '../refusals/refusals.service.js';
import type { RefusalGuard } from './grpc-call.js';
import { QueryEdge } from '../linkage/queries/query-edge.js';
import { NOTICE_BATCHES_SERVICE, noticeBatchesService } from '../notices/notice-batches.grpc-service.js';
import { NoticeBatchProgress } from '../notices/notice-batch-runner.service.js';
import { AUTHORIZATION_TABLES_SERVICE, authorizationTablesService } from '../linkage/tables/authorization-tables.grpc-service.js';
import { AuthorizationTableRollout } from '../linkage/tables/authorization-table-rollout.js';
import { HubConfig } from '../config/hub-config.js';
import { HubTls } from '../tls/hub-tls.js';
import { grpcServerCredentials } from '../tls/peer-certificate.js';
import { MethodMessageLimits } from './message-limits.js';
import { AUDIT_SERVICE, HEALTH_SERVICE, LINKAGE_SERVICE, NUMBERING_SERVICE, REFLECTION_LOADER_OPTIONS, SUBSCRIPTIONS_SERVICE, UPDATES_SERVICE, loadHubProtos } from './proto-files.js';

export interface HubGrpcServerOptions {
  /** IP address or host name to bind, as HUB_HOST. */
  readonly host: string;
  /** 0: any free port (start() answers the bound one). */
  readonly port: number;
  /**
   * Largest request message of every method but those in `methodMessageBytes`; a larger one is refused with
   * RESOURCE_EXHAUSTED before it is decoded.
   */
  readonly maxMessageBytes: number;
  /**
   * Methods with a larger limit of their own, by service and method name. Default: StartNoticeBatch takes
   * HUB_NOTICE_BATCH_BODY_LIMIT_BYTES (as POST /v1/notice-batches), so a list of 10,000 codes is accepted; a
   * larger message is refused PAYLOAD_TOO_LARGE and recorded as a refusal (message-limits.ts).
   */
  readonly methodMessageBytes?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** How long stop() lets calls in flight finish before cancelling them. Default 5000. */
  readonly shutdownGraceMs?: number;
  /** Server interceptors around every call (the metrics' latency per method and status). */
  readonly interceptors?: readonly ServerInterceptor[];
}

/**
 * The hub's gRPC edge (schemas/proto): the numbering, linkage and audit services, grpc.health.v1 and server
 * reflection (grpc.reflection.v1/v1alpha), over the
 * same CommandBus, QueryBus and audit controller as the HTTP edge of `app`, which MUST be initialised
 * (start-up recovery done) before start(). With HUB_TLS=on it serves TLS with the hub's certificate and
 * asks each client for its certificate (mutual TLS for agencies, checked per call by the Authenticator);
 * otherwise plaintext HTTP/2: bind it to loopback or put it behind a TLS-terminating proxy.
 */
export class HubGrpcServer {
  private readonly logger = new Logger('Grpc');
  private server: Server | undefined;

  constructor(
    private readonly app: INestApplicationContext,
    private readonly options: HubGrpcServerOptions,
  ) {}

  /** Binds and serves; answers the bound port. */
  async start(): Promise<number> {
    if (this.server !== undefined) throw new Error('the gRPC server is already started');
    const loaded = loadHubProtos();
    const config = this.app.get(HubConfig, { strict: false });
    const limits = new MethodMessageLimits(
      this.options.maxMessageBytes,
      this.options.methodMessageBytes ?? { [NOTICE_BATCHES_SERVICE]: { StartNoticeBatch: Math.max(this.options.maxMessageBytes, config.noticeBatches.bodyLimitBytes ?? 0) } },
    );
    // Each service's requests bounded by their method's limit (the server's own limit is above them all).
    const definition = Object.fromEntries(Object.entries(loaded).map(([name, d]) => [name, typeof d === 'object' && d !== null && !('format' in d) ? limits.definition(name, d as ServiceDefinition) : d])) as typeof loaded;
    const server = new Server({ 'grpc.max_receive_message_length': limits.serverBytes, ...(this.options.interceptors === undefined ? {} : { interceptors: [...this.options.interceptors] }) });
    const commandBus = this.app.get(CommandBus, { strict: false });
    const queryBus = this.app.get(QueryBus, { strict: false });
    const auth = this.app.get(Authenticator, { strict: false });
    const refusals = this.app.get(Refusals, { strict: false });
    const guard: RefusalGuard = {
      identify: (r) => auth.identify(r),
      record: (r) => refusals.record(r),
      throttle: (source) => refusals.throttle(source),
      limit: (caller, source, command) => refusals.limit(caller, source, command),
    };
    // Every method answers a message over its limit (message-limits.ts): StartNoticeBatch refuses it itself (recorded),
    // the others as grpc-js does at its own limit.
    const add = (service: string, implementation: UntypedServiceImplementation, checkedBy: readonly string[] = []): void =>
      server.addService(definition[service] as ServiceDefinition, limits.implementation(implementation, checkedBy));
    add(NUMBERING_SERVICE, numberingService(commandBus, queryBus, auth, guard));
    add(AUDIT_SERVICE, auditService(this.app.get(AuditController, { strict: false }), guard));
    add(LINKAGE_SERVICE, linkageService(commandBus, auth, this.app.get(QueryEdge, { strict: false }), guard, this.app.get(HubTls, { strict: false })));
    add(SUBSCRIPTIONS_SERVICE, subscriptionsService(auth, this.app.get(SubscriptionsService, { strict: false }), guard));
    add(UPDATES_SERVICE, updatesService(auth, this.app.get(PushFanOut, { strict: false }), this.app.get(PushRecords, { strict: false }), guard));
    add(NOTICE_BATCHES_SERVICE, noticeBatchesService(commandBus, auth, this.app.get(NoticeBatchProgress, { strict: false }), guard), ['StartNoticeBatch']);
    add(AUTHORIZATION_TABLES_SERVICE, authorizationTablesService(auth, this.app.get(AuthorizationTableRollout, { strict: false }), guard));
    add(HEALTH_SERVICE, healthService(queryBus, [NUMBERING_SERVICE, AUDIT_SERVICE, LINKAGE_SERVICE, SUBSCRIPTIONS_SERVICE, UPDATES_SERVICE, NOTICE_BATCHES_SERVICE, AUTHORIZATION_TABLES_SERVICE]));
    // Server reflection (grpc.reflection.v1 and v1alpha): standard tools list the services above and fetch their descriptors.
    new ReflectionService(loadHubProtos(REFLECTION_LOADER_OPTIONS)).addToServer(server);
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    const ca = this.app.get(HubTls, { strict: false }).ca;
    const credentials = grpcServerCredentials(ca === undefined ? undefined : { caCertificatePem: ca.trustBundlePem, ...ca.hub });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host}:${this.options.port}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
    });
    this.server = server;
    this.logger.log(`gRPC listening on ${host}:${port}`);
    return port;
  }

  /** Stops taking calls, lets those in flight finish for the grace period, then cancels the rest. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const grace = this.options.shutdownGraceMs ?? 5000;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, grace);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
