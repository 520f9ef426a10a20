import { Module, type DynamicModule } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import type { HubConfig } from './config/hub-config.js';
import { AuditModule } from './audit/audit.module.js';
import { CitizensModule } from './citizens/citizens.module.js';
import { SelfCheckModule } from './audit/self-check.module.js';
import { EventsModule } from './events/events.module.js';
import { HealthModule } from './health/health.module.js';
import { HubCoreModule } from './hub-core.module.js';
import { LinkageModule } from './linkage/linkage.module.js';
import { NumberingModule } from './numbering/numbering.module.js';
import { NoticesModule } from './notices/notices.module.js';
import { RecordsModule } from './records/records.module.js';
import { RefusalsModule } from './refusals/refusals.module.js';
import { RelayModule } from './relay/relay.module.js';
import { RetentionModule } from './retention/retention.module.js';
import { SubscriptionsModule } from './subscriptions/subscriptions.module.js';
import { PushesModule } from './pushes/pushes.module.js';
import { KekRotationModule } from './keys/kek-rotation.controller.js';
import { CredentialRotationModule } from './keys/credential-rotation.controller.js';
import { TlsCaRotationModule } from './keys/tls-ca-rotation.controller.js';

@Module({})
export class AppModule {
  static forRoot(config: HubConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [CqrsModule.forRoot(), HubCoreModule.forRoot(config), NumberingModule, LinkageModule, NoticesModule, RecordsModule, EventsModule, HealthModule, AuditModule, SelfCheckModule, RelayModule, RefusalsModule, RetentionModule, CitizensModule, SubscriptionsModule, PushesModule, CredentialRotationModule, KekRotationModule, TlsCaRotationModule],
    };
  }
}
