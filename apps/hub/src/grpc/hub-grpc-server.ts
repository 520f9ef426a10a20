import { Logger, type INestApplicationContext } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { Server, ServerCredentials, type ServerInterceptor, type ServiceDefinition } from '@grpc/grpc-js';
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
import { AUDIT_SERVICE, HEALTH_SERVICE, LINKAGE_SERVICE, NUMBERING_SERVICE, REFLECTION_LOADER_OPTIONS, SUBSCRIPTIONS_SERVICE, UPDATES_SERVICE, loadHubProtos } from './proto-files.js';

export interface HubGrpcServerOptions {
  /** IP address or host name to bind, as HUB_HOST. */
  readonly host: string;
  /** 0: any free port (start() answers the bound one). */
  readonly port: number;
  /** Largest request message accepted; a larger one is refused with RESOURCE_EXHAUSTED before it is decoded. */
  readonly maxMessageBytes: number;
  /** How long stop() lets calls in flight finish before cancelling them. Default 5000. */
  readonly shutdownGraceMs?: number;
  /** Server interceptors around every call (the metrics' latency per method and status). */
  readonly interceptors?: readonly ServerInterceptor[];
}

/**
 * The hub's gRPC edge (schemas/proto): the numbering, linkage and audit services, grpc.health.v1 and server
 * reflection (grpc.reflection.v1/v1alpha), over the
 * same CommandBus, QueryBus and audit controller as the HTTP edge of `app`, which MUST be initialised
 * (start-up recovery done) before start(). Plaintext HTTP/2: bind it to loopback or put it behind a
 * TLS-terminating proxy, as the HTTP edge.
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
    const definition = loadHubProtos();
    const server = new Server({ 'grpc.max_receive_message_length': this.options.maxMessageBytes, ...(this.options.interceptors === undefined ? {} : { interceptors: [...this.options.interceptors] }) });
    const commandBus = this.app.get(CommandBus, { strict: false });
    const queryBus = this.app.get(QueryBus, { strict: false });
    const auth = this.app.get(Authenticator, { strict: false });
    const refusals = this.app.get(Refusals, { strict: false });
    const guard: RefusalGuard = { identify: (r) => auth.identify(r), record: (r) => refusals.record(r), throttle: (source) => refusals.throttle(source) };
    server.addService(definition[NUMBERING_SERVICE] as ServiceDefinition, numberingService(commandBus, queryBus, auth, guard));
    server.addService(definition[AUDIT_SERVICE] as ServiceDefinition, auditService(this.app.get(AuditController, { strict: false })));
    server.addService(
      definition[LINKAGE_SERVICE] as ServiceDefinition,
      linkageService(commandBus, auth, this.app.get(QueryEdge, { strict: false }), guard),
    );
    server.addService(definition[SUBSCRIPTIONS_SERVICE] as ServiceDefinition, subscriptionsService(auth, this.app.get(SubscriptionsService, { strict: false }), guard));
    server.addService(definition[UPDATES_SERVICE] as ServiceDefinition, updatesService(auth, this.app.get(PushFanOut, { strict: false }), this.app.get(PushRecords, { strict: false }), guard));
    server.addService(definition[NOTICE_BATCHES_SERVICE] as ServiceDefinition, noticeBatchesService(commandBus, auth, this.app.get(NoticeBatchProgress, { strict: false }), guard));
    server.addService(definition[HEALTH_SERVICE] as ServiceDefinition, healthService(queryBus, [NUMBERING_SERVICE, AUDIT_SERVICE, LINKAGE_SERVICE, SUBSCRIPTIONS_SERVICE, UPDATES_SERVICE, NOTICE_BATCHES_SERVICE]));
    // Server reflection (grpc.reflection.v1 and v1alpha): standard tools list the services above and fetch their descriptors.
    new ReflectionService(loadHubProtos(REFLECTION_LOADER_OPTIONS)).addToServer(server);
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host}:${this.options.port}`, ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
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
