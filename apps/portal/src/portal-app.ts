import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyBaseLogger } from 'fastify';
import { pino, type DestinationStream } from 'pino';
import { PinoNestLogger, RequestLogController, createLogSink } from '#logging';
import type { PortalConfig } from './config/portal-config.js';
import { PortalProblemFilter } from './http/portal-problem.js';
import { installSecurityHeaders } from './http/security-headers.js';
import { clientAddress } from './hub/hub-client.js';
import { PortalModule } from './portal.module.js';

/**
 * Creates the portal (not yet listening): the API under /api, the built frontend at /. It logs JSON lines
 * with pino at PORTAL_LOG_LEVEL (Fastify's logger, one line per answered request with the portal's own
 * request id and route template, never the URL, a header, a cookie or a body; Nest's on the same stream).
 */
export async function createPortalApp(config: PortalConfig, options: { logStream?: DestinationStream } = {}): Promise<NestFastifyApplication> {
  if (!existsSync(join(config.webRoot, 'index.html'))) {
    throw new Error(`the built frontend is missing at ${config.webRoot}: run npm run build first`);
  }
  // Written synchronously: the portal logs little, and nothing is left buffered when a signal ends it.
  const logs = createLogSink('portal', config.logLevel, options.logStream ?? pino.destination({ dest: 1, sync: true }));
  const adapter = new FastifyAdapter({
    bodyLimit: 65_536,
    loggerInstance: logs.logger,
    logController: new RequestLogController(logs.logger, (request) => request.id),
    childLoggerFactory: (logger: FastifyBaseLogger) => logger,
    genReqId: () => randomUUID(),
    ...(config.trustedProxies.length === 0 ? {} : { trustProxy: [...config.trustedProxies] }),
  });
  const app = await NestFactory.create<NestFastifyApplication>(PortalModule.forRoot(config), adapter, { logger: new PinoNestLogger(logs.logger) });
  installSecurityHeaders(app.getHttpAdapter().getInstance(), config);
  // Every hub call made for this request names the citizen's address (X-Forwarded-For), so that the hub
  // counts and limits unidentified refusals per citizen, not per portal.
  app.getHttpAdapter().getInstance().addHook('onRequest', (request, _reply, done) => clientAddress.run(request.ip, done));
  app.useGlobalFilters(new PortalProblemFilter());
  app.useStaticAssets({ root: config.webRoot, prefix: '/', index: ['index.html'], wildcard: true, dotfiles: 'deny' });
  return app;
}
