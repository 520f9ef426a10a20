import type { NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import type { HubConfig } from './config/hub-config.js';
import { correlationHook } from './http/correlation.js';
import { setupOpenApi } from './http/openapi.js';
import { ProblemDetailsFilter } from './http/problem-details.filter.js';
import { queryParametersHook } from './http/query-parameters.js';
import { DtoValidationPipe } from './http/validation.pipe.js';

/** The Fastify adapter of the hub: the configured body limit, no Fastify logger (Nest logs). */
export function hubFastifyAdapter(config: HubConfig): FastifyAdapter {
  return new FastifyAdapter({ bodyLimit: config.bodyLimitBytes, logger: false });
}

/** Nest's own body parsers are off: configureHubApp installs a JSON-only one (anything else is 415). */
export const HUB_APP_OPTIONS: NestApplicationOptions = { bodyParser: false };

/**
 * Everything between creating the application and init: the same for main.ts and the tests, so the
 * tests exercise the wiring that runs in production.
 */
export function configureHubApp(app: NestFastifyApplication, config: HubConfig): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', correlationHook);
  fastify.addHook('onRequest', queryParametersHook);
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: config.bodyLimitBytes }, fastify.getDefaultJsonParser('error', 'error'));
  app.useGlobalFilters(new ProblemDetailsFilter(config.bodyLimitBytes));
  app.useGlobalPipes(new DtoValidationPipe());
  setupOpenApi(app);
}

/** Creates and configures the hub (not yet initialised or listening). */
export async function createHubApp(config: HubConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), hubFastifyAdapter(config), {
    ...HUB_APP_OPTIONS,
    logger: config.logLevels,
  });
  configureHubApp(app, config);
  return app;
}
