import { AGENCIES, startNetwork } from './network.js';

/**
 * `npm start`: the hub and the intermediate servers of the Japan Pension Service and Muroran City, with
 * demo data, on the embedded default (SQLite under ./data; Redis when one answers at 127.0.0.1:6379, the
 * store otherwise). Ctrl-C stops all three.
 */
async function main(): Promise<void> {
  // eslint-disable-next-line no-restricted-syntax -- the launcher's one read of its environment
  const env = process.env;
  const dataDir = env['HUB_DATA_DIR'] || './data';
  const hubPort = Number(env['HUB_PORT'] || 8080);
  const network = await startNetwork({
    dataDir,
    hubPort,
    nodePorts: { 'jpn-pension-service': hubPort + 1, 'muroran-city': hubPort + 2 },
    grpcPort: hubPort + 1010,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(
    [
      '',
      `hub                  ${network.hubUrl}   (OpenAPI: ${network.hubUrl}/docs; gRPC on port ${hubPort + 1010})`,
      `corporate registry   ${network.hubUrl}/v1/corporate-numbers?location=${encodeURIComponent('北海道室蘭市')}   (public; CSV: ${network.hubUrl}/v1/corporate-numbers.csv)`,
      ...AGENCIES.map((a) => `${a.agencyId.padEnd(20)} ${network.nodeUrl(a.agencyId)}   (intermediate server)`),
      '',
      'Now, in another terminal: npm run demo',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    void network.stop(signal).then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGTERM'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // One process ending on its own ends the demo: a half network would only confuse.
  await Promise.race(network.processes.map((p) => p.exited.then((code) => ({ name: p.name, code }))))
    .then(async ({ name, code }) => {
      if (stopping) return;
      process.stderr.write(`${name} exited (${String(code)}); stopping the others\n`);
      stopping = true;
      await network.stop('SIGTERM');
      process.exit(1);
    });
}

main().catch((error: unknown) => {
  process.stderr.write(`start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
