import { Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AnswerKeyPair } from '#sealed-answer';
import { LOG_LEVELS, databasePath, keysDir, type AgencyConfig } from './config/agency-config.js';
import { HealthController } from './health/health.controller.js';
import { HubClient } from './hub/hub-client.js';
import { ProblemDetailsFilter } from './http/problem-details.filter.js';
import { installJsonParser } from './http/raw-body.js';
import { StaffGuard } from './http/staff.guard.js';
import { DtoValidationPipe } from './http/validation.pipe.js';
import { loadOrCreateAnswerKeys } from './keys/answer-keys.js';
import { ProviderService } from './provider/provider.service.js';
import { ProvisionEndpoint } from './provider/provision-endpoint.js';
import { ProvisionSchemas, hubVerifierKey } from './provider/provision-protocol.js';
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
  /** The hub's provision-signing public key (base64url raw 32 bytes). */
  readonly hubProvisionKey: string;
  readonly clock: Clock;
  /** The provision protocol's handler, shared by the HTTP controller and the gRPC server. */
  readonly provisions: ProvisionEndpoint;
}

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly fetch?: typeof fetch;
}

/** Opens the store and keys, and gets the hub's provision key (from the configuration, else once from the hub). */
export async function openAgencyRuntime(config: AgencyConfig, options: RuntimeOptions = {}): Promise<AgencyRuntime> {
  if (config.hub === undefined) throw new Error('the server needs AGENCY_HUB_URL and a hub token');
  const hub = new HubClient(config.hub, options.fetch);
  const keys = await loadOrCreateAnswerKeys(keysDir(config));
  const hubProvisionKey = config.hub.provisionKey ?? (await hub.provisionSigningKey());
  const hubKey = hubVerifierKey(hubProvisionKey); // fails at start, not on the first provision, if the hub's key is unusable
  const store = new AgencyStore(databasePath(config));
  const clock = options.clock ?? (() => new Date());
  const provisions = new ProvisionEndpoint(new ProviderService(config.agencyId, store, clock), new ProvisionSchemas(), hubKey, clock);
  return { config, store, keys, hub, hubProvisionKey, clock, provisions };
}

@Module({})
export class AgencyModule implements OnApplicationShutdown {
  constructor(@Inject(AgencyStore) private readonly store: AgencyStore) {}

  static forRoot(runtime: AgencyRuntime): DynamicModule {
    return {
      module: AgencyModule,
      controllers: [ProvisionsController, RequesterController, HealthController],
      providers: [
        { provide: AGENCY_CONFIG, useValue: runtime.config },
        { provide: AgencyStore, useValue: runtime.store },
        { provide: CLOCK, useValue: runtime.clock },
        { provide: ProvisionEndpoint, useValue: runtime.provisions },
        { provide: RequesterService, useValue: new RequesterService(runtime.store, runtime.hub, runtime.keys, runtime.clock) },
        StaffGuard,
      ],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}

/** Creates and configures the server (not yet listening); the same wiring for main.ts and the tests. */
export async function createAgencyApp(runtime: AgencyRuntime): Promise<NestFastifyApplication> {
  const { config } = runtime;
  const app = await NestFactory.create<NestFastifyApplication>(AgencyModule.forRoot(runtime), new FastifyAdapter({ bodyLimit: config.bodyLimitBytes, logger: false }), {
    bodyParser: false,
    logger: LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(config.logLevel) + 1),
  });
  installJsonParser(app.getHttpAdapter().getInstance(), config.bodyLimitBytes);
  app.useGlobalFilters(new ProblemDetailsFilter());
  app.useGlobalPipes(new DtoValidationPipe());
  return app;
}
