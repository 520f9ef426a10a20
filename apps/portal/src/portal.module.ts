import { type DynamicModule, Module } from '@nestjs/common';
import { ApiController } from './api/api.controller.js';
import type { PortalConfig } from './config/portal-config.js';
import { HubClient } from './hub/hub-client.js';
import { FailedAttempts } from './session/attempts.js';
import { loadPortalKey } from './session/portal-key.js';
import { Sessions } from './session/session.js';
import { PORTAL_CONFIG } from './tokens.js';

@Module({})
export class PortalModule {
  static forRoot(config: PortalConfig): DynamicModule {
    return {
      module: PortalModule,
      controllers: [ApiController],
      providers: [
        { provide: PORTAL_CONFIG, useValue: config },
        { provide: Sessions, useFactory: () => new Sessions(config, loadPortalKey(config.dataDir)) },
        { provide: HubClient, useFactory: () => new HubClient(config.hubUrl) },
        { provide: FailedAttempts, useValue: new FailedAttempts() },
      ],
    };
  }
}
