import { describe, expect, it } from 'vitest';
import { loadHubConfig } from '../src/config/hub-config.js';

describe('HUB_LEDGER_FILTER_MIB', () => {
  it('gives the ledger 4 MiB per filter by default', () => {
    expect(loadHubConfig({}).ledgerFilterMiB).toBe(4);
  });

  it.each([
    ['1', 1],
    ['64', 64],
    ['256', 256],
  ])('reads %s', (value, mib) => {
    expect(loadHubConfig({ HUB_LEDGER_FILTER_MIB: value }).ledgerFilterMiB).toBe(mib);
  });

  it.each(['0', '3', '48', '512', '4.0', '-4', 'four'])('refuses %j', (value) => {
    expect(() => loadHubConfig({ HUB_LEDGER_FILTER_MIB: value })).toThrow(
      expect.objectContaining({
        code: 'INVALID_CONFIGURATION',
        problems: [{ variable: 'HUB_LEDGER_FILTER_MIB', message: `must be a power of two from 1 to 256 (MiB per filter), got ${JSON.stringify(value)}` }],
      }),
    );
  });
});
