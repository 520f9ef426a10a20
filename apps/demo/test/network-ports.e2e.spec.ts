import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startNetwork } from '../src/network.js';
import { freePorts } from '../../../test/support/free-ports.js';

// Another process already serving on a node's port answers the readiness probe, and the node itself fails to
// listen: the network must not take that answer for the node's, or the hub would call a stranger at the
// endpoint it registered for Muroran City.
it('refuses to start when another server answers on an intermediate server\'s port, naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'network-ports-e2e-'));
  const stranger = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ready', agencyId: 'jpn-pension-service' }));
  });
  try {
    const [hubPort, pension, muroran] = await freePorts(3);
    await new Promise<void>((resolve) => stranger.listen(muroran!, '127.0.0.1', resolve));
    const start = startNetwork({ dataDir: dir, hubPort: hubPort!, nodePorts: { 'jpn-pension-service': pension!, 'muroran-city': muroran! }, log: () => {}, hubEnv: { HUB_REDIS_URL: 'off', HUB_TLS: 'off' } });
    await expect(start).rejects.toThrow(`muroran-city did not answer at http://127.0.0.1:${muroran!}/health/ready; another server answers there (the node of jpn-pension-service): give muroran-city a port of its own`);
  } finally {
    stranger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
