import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { PortalConfig } from './config/portal-config.js';
import { PortalProblemFilter } from './http/portal-problem.js';
import { installSecurityHeaders } from './http/security-headers.js';
import { clientAddress } from './hub/hub-client.js';
import { PortalModule } from './portal.module.js';

/** Creates the portal (not yet listening): the API under /api, the built frontend at /. */
export async function createPortalApp(config: PortalConfig): Promise<NestFastifyApplication> {
  if (!existsSync(join(config.webRoot, 'index.html'))) {
    throw new Error(`the built frontend is missing at ${config.webRoot}: run npm run build first`);
  }
  const app = await NestFactory.create<NestFastifyApplication>(PortalModule.forRoot(config), new FastifyAdapter({ bodyLimit: 65_536, logger: false, ...(config.trustedProxies.length === 0 ? {} : { trustProxy: [...config.trustedProxies] }) }), {
    logger: config.logLevel === 'error' ? ['error'] : config.logLevel === 'warn' ? ['error', 'warn'] : ['error', 'warn', 'log'],
  });
  installSecurityHeaders(app.getHttpAdapter().getInstance(), config);
  // Every hub call made for this request names the citizen's address (X-Forwarded-For), so that the hub
  // counts and limits unidentified refusals per citizen, not per portal.
  app.getHttpAdapter().getInstance().addHook('onRequest', (request, _reply, done) => clientAddress.run(request.ip, done));
  app.useGlobalFilters(new PortalProblemFilter());
  app.useStaticAssets({ root: config.webRoot, prefix: '/', index: ['index.html'], wildcard: true, dotfiles: 'deny' });
  return app;
}
