import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { PortalConfig } from './config/portal-config.js';
import { PortalProblemFilter } from './http/portal-problem.js';
import { installSecurityHeaders } from './http/security-headers.js';
import { PortalModule } from './portal.module.js';

/** Creates the portal (not yet listening): the API under /api, the built frontend at /. */
export async function createPortalApp(config: PortalConfig): Promise<NestFastifyApplication> {
  if (!existsSync(join(config.webRoot, 'index.html'))) {
    throw new Error(`the built frontend is missing at ${config.webRoot}: run npm run build first`);
  }
  const app = await NestFactory.create<NestFastifyApplication>(PortalModule.forRoot(config), new FastifyAdapter({ bodyLimit: 65_536, logger: false }), {
    logger: config.logLevel === 'error' ? ['error'] : config.logLevel === 'warn' ? ['error', 'warn'] : ['error', 'warn', 'log'],
  });
  installSecurityHeaders(app.getHttpAdapter().getInstance(), config);
  app.useGlobalFilters(new PortalProblemFilter());
  app.useStaticAssets({ root: config.webRoot, prefix: '/', index: ['index.html'], wildcard: true, dotfiles: 'deny' });
  return app;
}
