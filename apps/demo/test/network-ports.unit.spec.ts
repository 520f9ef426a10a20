import { describe, expect, it } from 'vitest';
import { startNetwork } from '../src/network.js';
import { freePorts } from '../../../test/support/free-ports.js';

describe('the demo network\'s ports', () => {
  it('refuses a port given to two of its processes before starting anything, naming both', async () => {
    const start = startNetwork({ dataDir: '/nonexistent/network-ports', hubPort: 4100, nodePorts: { 'jpn-pension-service': 4101, 'muroran-city': 4101 }, log: () => {} });
    await expect(start).rejects.toThrow('nodePorts.muroran-city and nodePorts.jpn-pension-service are both port 4101: each process of the network needs a port of its own');
    await expect(startNetwork({ dataDir: '/nonexistent/network-ports', hubPort: 4100, portalPort: 4100, nodePorts: { 'jpn-pension-service': 4101, 'muroran-city': 4102 }, log: () => {} })).rejects.toThrow('portalPort and hubPort are both port 4100');
  });

  it('are chosen all different by the tests\' freePorts, even many at once', async () => {
    for (let round = 0; round < 5; round++) {
      const ports = await freePorts(40);
      expect(new Set(ports).size).toBe(40);
    }
  });
});
