import { Module } from '@nestjs/common';
import { HubConfig } from '../config/hub-config.js';
import { AgenciesController } from './agencies/agencies.controller.js';
import { ChangeAgencyRegistryHandler } from './agencies/agency-registry.commands.js';
import { CitizenSessions } from '../citizens/citizen-sessions.js';
import { Authenticator } from './authenticator.js';
import { AuthorizationTablePublisher } from './authorization-table.publisher.js';
import { AcquireAgencyCodeHandler, AgencyCodesController } from './codes/agency-codes.js';
import { HubCodeMapper } from './hub-code-mapper.js';
import { CodeLocator } from '#mapper';
import { ProvisionSigner, loadOrCreateCodeLocator } from './hub-secrets.js';
import { LinkageViews } from './linkage-views.js';
import { ProviderClient } from './queries/provider-client.js';
import { QueriesController } from './queries/queries.controller.js';
import { QueryEdge } from './queries/query-edge.js';
import { QueryRunner } from './queries/query-runner.js';
import { SelfDisclosureTablePublisher } from './self-information/self-disclosure-table.publisher.js';
import { SelfInformationController } from './self-information/self-information.controller.js';
import { SelfInformationService } from './self-information/self-information.service.js';
import { AgencyCertificates, ChangeAgencyCertificatesHandler } from '../tls/agency-certificates.js';
import { HUB_TLS_PROVIDER, HubTls } from '../tls/hub-tls.js';
import { AuthorizationTableRollout } from './tables/authorization-table-rollout.js';
import { AuthorizationTablesController } from './tables/authorization-tables.controller.js';
import { CodeKeyRing } from '../keys/code-key-rotation.js';
import { CodeKeyRotationController } from '../keys/code-key-rotation.controller.js';
import { ProvisionKeyRing } from '../keys/provision-key-rotation.js';
import { ProvisionKeyRotationController } from '../keys/provision-key-rotation.controller.js';

/** Agencies, agency codes, lawful queries and provisions (I5–I7), and citizens' self-information requests. */
@Module({
  controllers: [AgenciesController, AgencyCodesController, QueriesController, SelfInformationController, AuthorizationTablesController, ProvisionKeyRotationController, CodeKeyRotationController],
  providers: [
    { provide: ProvisionSigner, useFactory: (config: HubConfig) => ProvisionSigner.loadOrCreate(config.keysDir), inject: [HubConfig] },
    { provide: CodeLocator, useFactory: (config: HubConfig) => loadOrCreateCodeLocator(config.keysDir), inject: [HubConfig] },
    // The keys rotated in after the first, read from the log at start and at a takeover (docs/key-rotation.md).
    ProvisionKeyRing,
    CodeKeyRing,
    LinkageViews,
    CitizenSessions,
    Authenticator,
    AuthorizationTablePublisher,
    AuthorizationTableRollout,
    SelfDisclosureTablePublisher,
    SelfInformationService,
    HubCodeMapper,
    ProviderClient,
    QueryRunner,
    QueryEdge,
    ChangeAgencyRegistryHandler,
    AcquireAgencyCodeHandler,
    HUB_TLS_PROVIDER,
    AgencyCertificates,
    ChangeAgencyCertificatesHandler,
  ],
  exports: [LinkageViews, CitizenSessions, Authenticator, HubCodeMapper, QueryEdge, AuthorizationTableRollout, HubTls, ProvisionSigner],
})
export class LinkageModule {}
