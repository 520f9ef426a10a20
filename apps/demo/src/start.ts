import { join } from 'node:path';
import { AGENCIES, personFile, startNetwork } from './network.js';

/**
 * `npm start`: the hub, the intermediate servers of the Japan Pension Service and Muroran City and the
 * citizen portal, with demo data, on the embedded default (SQLite under ./data; Redis when one answers at
 * 127.0.0.1:6379, the store otherwise), over TLS (mutual for the agencies) unless HUB_TLS=off. Ctrl-C
 * stops them all.
 */
async function main(): Promise<void> {
  // eslint-disable-next-line no-restricted-syntax -- the launcher's one read of its environment
  const env = process.env;
  const dataDir = env['HUB_DATA_DIR'] || './data';
  const hubPort = Number(env['HUB_PORT'] || 8080);
  const grpcPort = Number(env['HUB_GRPC_PORT'] || hubPort + 1010);
  // Every other HUB_* variable goes to the hub as given (apps/hub/README.md), e.g. HUB_REDIS_URL=off.
  const launcher = new Set(['HUB_DATA_DIR', 'HUB_PORT', 'HUB_GRPC_PORT']);
  // TLS is on unless HUB_TLS=off (docs/tls.md): the hub's CA is made at first start in <data>/keys.
  const hubEnv = { HUB_TLS: 'on', ...Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('HUB_') && !launcher.has(e[0]) && e[1] !== undefined && e[1] !== '')) };
  const caFile = join(dataDir, 'keys', 'tls-ca.cert.pem');
  const network = await startNetwork({
    dataDir,
    hubPort,
    nodePorts: { 'jpn-pension-service': hubPort + 1, 'muroran-city': hubPort + 2 },
    grpcPort,
    portalPort: Number(env['PORTAL_PORT'] || 3300),
    log: (line) => process.stdout.write(`${line}\n`),
    hubEnv,
  });
  process.stdout.write(
    [
      '',
      `hub                  ${network.hubUrl}   (OpenAPI: ${network.hubUrl}/docs; gRPC on port ${grpcPort})`,
      `corporate registry   ${network.hubUrl}/v1/corporate-numbers?location=${encodeURIComponent('北海道室蘭市')}   (public; CSV: ${network.hubUrl}/v1/corporate-numbers.csv)`,
      ...AGENCIES.map((a) => `${a.agencyId.padEnd(20)} ${network.nodeUrl(a.agencyId)}   (intermediate server)`),
      `citizen portal       ${network.portalUrl}   (情報提供等記録開示; open it as localhost: passkeys belong to that origin)`,
      ...(hubEnv.HUB_TLS === 'on'
        ? ['', `TLS: the hub and the intermediate servers serve certificates of the demo CA ${caFile}; trust it for this demo only:`, `  curl --cacert ${caFile} ${network.hubUrl}/health/ready   (Node: NODE_EXTRA_CA_CERTS=${caFile}; a browser: import it as an authority, docs/tls.md)`]
        : []),
      '',
      `Aoyama-san signs in: open ${network.portalUrl}, はじめての登録, paste the citizenSecret of ${personFile(dataDir)}`,
      '(her one-time secret), create a passkey; from then on サインイン with the passkey alone.',
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
