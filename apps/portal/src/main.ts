import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { PortalConfigError, loadPortalConfig } from './config/portal-config.js';
import { createPortalApp } from './portal-app.js';

const EXIT_CONFIG = 78;

async function main(): Promise<void> {
  let config;
  try {
    // eslint-disable-next-line no-restricted-syntax -- the portal's one read of its environment
    config = loadPortalConfig(process.env);
  } catch (error) {
    if (error instanceof PortalConfigError) {
      process.stderr.write(`portal: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
  const app = await createPortalApp(config);
  await app.listen({ host: config.host, port: config.port });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void app.close().finally(() => process.kill(process.pid, signal));
    });
  }
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  new Logger('Portal').log(`listening on http://${config.host}:${port} for ${config.origin}, over the hub at ${config.hubUrl}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`portal: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
