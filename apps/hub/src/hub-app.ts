import type { NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module.js';
import type { HubConfig } from './config/hub-config.js';
import { installBodyTimeout } from './http/body-timeout.js';
import { correlationHook, correlationIdOf } from './http/correlation.js';
import { parseJsonBody } from './http/json-body.js';
import { setupOpenApi } from './http/openapi.js';
import { ProblemDetailsFilter } from './http/problem-details.filter.js';
import { queryParametersHook } from './http/query-parameters.js';
import { installRequestLineChecks } from './http/request-line.js';
import { DtoValidationPipe } from './http/validation.pipe.js';
import { PinoNestLogger, RequestLogController, captureSerials, createLogSink, type LogSink } from '#logging';
import { installHubMetrics } from './metrics/install-hub-metrics.js';
import { recordRefusal } from './refusals/refusal.guard.js';
import { Refusals } from './refusals/refusals.service.js';

/** The one route with a body limit of its own: a nationwide notice to 10,000 codes takes ≈ 300 KB. */
export const NOTICE_BATCH_ROUTE = { method: 'POST', url: '/v1/notice-batches' } as const;

/** The body limit of a route that has its own (HUB_NOTICE_BATCH_BODY_LIMIT_BYTES for NOTICE_BATCH_ROUTE), else undefined. */
export function routeBodyLimitBytes(config: HubConfig, method: string | undefined, path: string): number | undefined {
  return method === NOTICE_BATCH_ROUTE.method && path.split('?')[0]!.replace(/\/+$/, '') === NOTICE_BATCH_ROUTE.url ? (config.noticeBatches.bodyLimitBytes ?? config.bodyLimitBytes) : undefined;
}

/** The one problem filter of a hub: Nest's global filter, and Fastify's answers before and outside Nest. */
function problemFilter(config: HubConfig): ProblemDetailsFilter {
  return new ProblemDetailsFilter({ bodyLimitBytes: config.bodyLimitBytes, bodyTimeoutMs: config.bodyTimeoutMs, routeBodyLimitBytes: (method, path) => routeBodyLimitBytes(config, method, path) });
}

/**
 * The Fastify adapter of the hub: the configured body limit, and every error Fastify or Node's HTTP
 * server answers itself turned into the hub's problem+json: a malformed URL or over-long path segment
 * (frameworkErrors), and a request that does not arrive within HUB_BODY_TIMEOUT_MS, over-large headers or
 * bytes that are not HTTP (clientErrorHandler). Given a log sink, Fastify logs with its pino logger: one
 * line per answered request (RequestLogController), no per-request child logger (the line names the
 * request's id itself). Without one (tests that capture Nest's logger), Fastify logs nothing.
 */
export function hubFastifyAdapter(config: HubConfig, logs?: LogSink): FastifyAdapter {
  const filter = problemFilter(config);
  return new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    ...(logs === undefined
      ? { logger: false }
      : { loggerInstance: logs.logger, logController: new RequestLogController(logs.logger, (request) => correlationIdOf(request)), childLoggerFactory: (logger: FastifyBaseLogger) => logger }),
    // request.ip: the socket's peer, or, from a trusted proxy (the portal), the client it names.
    ...(config.trustedProxies.length === 0 ? {} : { trustProxy: [...config.trustedProxies] }),
    // Node's request timeout ends at the last header (installBodyTimeout takes the body); it checks its
    // deadline every connectionsCheckingInterval (30 s by default): often enough to answer within a second of it.
    requestTimeout: config.bodyTimeoutMs,
    // HUB_TLS=on: HTTPS that asks every client for a certificate and refuses none at the handshake (a
    // citizen or the operator presents none; an agency's is checked per request, refusals recorded, I6).
    // The certificate and CA are set by HubTls at init, before the hub listens.
    ...(config.tls.enabled
      ? { https: { requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' as const, connectionsCheckingInterval: connectionsCheckingInterval(config) } }
      : { http: { connectionsCheckingInterval: connectionsCheckingInterval(config) } }),
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => filter.send(error, request, reply),
    clientErrorHandler: (error, socket) => filter.answerClientError(error, socket),
  });
}

function connectionsCheckingInterval(config: HubConfig): number {
  return Math.min(1000, Math.max(50, Math.floor(config.bodyTimeoutMs / 4)));
}

/** Nest's own body parsers are off: configureHubApp installs a JSON-only one (anything else is 415). */
export const HUB_APP_OPTIONS: NestApplicationOptions = { bodyParser: false };

/**
 * Everything between creating the application and init: the same for main.ts and the tests, so the
 * tests exercise the wiring that runs in production.
 */
export function configureHubApp(app: NestFastifyApplication, config: HubConfig): void {
  const fastify = app.getHttpAdapter().getInstance();
  const filter = problemFilter(config);
  fastify.addHook('onRequest', correlationHook);
  installRequestLineChecks(fastify);
  fastify.addHook('onRequest', queryParametersHook);
  installBodyTimeout(fastify, filter, config.bodyTimeoutMs);
  fastify.removeAllContentTypeParsers();
  // Every route reads at most HUB_BODY_LIMIT_BYTES (the parser's limit) but the notice batches' route, whose
  // own bodyLimit (set as Nest registers it, at init) Fastify takes before the parser's (route options win).
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: config.bodyLimitBytes }, parseJsonBody);
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const own = methods.some((m) => routeBodyLimitBytes(config, m, route.url) !== undefined);
    if (own) route.bodyLimit = routeBodyLimitBytes(config, NOTICE_BATCH_ROUTE.method, NOTICE_BATCH_ROUTE.url)!;
  });
  filter.recordRefusalsWith((request, exception) => recordRefusal(app.get(Refusals), request, exception));
  app.useGlobalFilters(filter);
  app.useGlobalPipes(new DtoValidationPipe());
  setupOpenApi(app);
  installHubMetrics(app, config);
}

export interface CreateHubOptions {
  /** Where the JSON log lines go; default: stdout. */
  readonly logStream?: DestinationStream;
}

/** The hub's application and its log sink (flushed by main.ts before the process ends). */
export interface HubApp {
  readonly app: NestFastifyApplication;
  readonly logs: LogSink;
}

/**
 * Creates and configures the hub (not yet initialised or listening), logging JSON lines with pino at
 * HUB_LOG_LEVEL: Fastify's logger, and Nest's (every `new Logger(context)`) through PinoNestLogger.
 */
export async function createHubApp(config: HubConfig, options: CreateHubOptions = {}): Promise<HubApp> {
  const logs = createLogSink('hub', config.logLevel, options.logStream);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), hubFastifyAdapter(config, logs), {
    ...HUB_APP_OPTIONS,
    logger: new PinoNestLogger(logs.logger),
  });
  configureHubApp(app, config);
  captureSerials(app.getHttpAdapter().getInstance(), logs.logger);
  return { app, logs };
}
