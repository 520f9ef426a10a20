import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { HubConfigError, loadHubConfig } from './config/hub-config.js';
import { HubGrpcServer } from './grpc/hub-grpc-server.js';
import { createHubApp } from './hub-app.js';
import { grpcMetricsInterceptor } from './metrics/grpc-metrics.js';
import { hubMetricsOf } from './metrics/install-hub-metrics.js';

/** EX_CONFIG (sysexits.h): the configuration is wrong, so restarting will not help. */
const EXIT_CONFIG = 78;

async function main(): Promise<void> {
  let config;
  try {
    // The one place the environment is read; everything else gets the validated HubConfig.
    // eslint-disable-next-line no-restricted-syntax -- boot-time read, validated into HubConfig
    config = loadHubConfig(process.env);
  } catch (error) {
    if (error instanceof HubConfigError) {
      process.stderr.write(`hub: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
  const { app, logs } = await createHubApp(config);
  const logger = new Logger('Hub');
  // listen() runs app.init() first, and with it start-up recovery: no command is taken before it is done.
  await app.listen({ host: config.host, port: config.port });
  const metrics = hubMetricsOf(app);
  const grpc =
    config.grpcPort === undefined
      ? undefined
      : new HubGrpcServer(app, { host: config.host, port: config.grpcPort, maxMessageBytes: config.bodyLimitBytes, ...(metrics === undefined ? {} : { interceptors: [grpcMetricsInterceptor(metrics.grpcDuration)] }) });
  const grpcPort = await grpc?.start();
  // SIGTERM/SIGINT: gRPC stops taking calls and lets those in flight finish, then HTTP, then the ledger
  // closes; then the signal is raised again, so the process ends as terminated by it.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void (grpc?.stop() ?? Promise.resolve())
        .then(() => app.close())
        .finally(() => {
          logs.flush(); // the log lines still buffered, before the signal ends the process
          process.kill(process.pid, signal);
        });
    });
  }
  const grpcNote = grpcPort === undefined ? '' : `, gRPC on port ${grpcPort}`;
  logger.log(`listening on ${await app.getUrl()}${grpcNote} (node ${String(config.nodeId).padStart(2, '0')}, data ${config.dataDir})`);
}

main().catch((error: unknown) => {
  // One JSON line like every other (docs/observability.md); the configuration's own errors above stay plain text.
  const err = error instanceof Error ? { type: error.name, message: error.message, stack: error.stack } : { message: String(error) };
  process.stderr.write(`${JSON.stringify({ level: 'fatal', time: new Date().toISOString(), app: 'hub', err, msg: `hub: failed to start: ${err.message}` })}\n`);
  process.exit(1);
});
