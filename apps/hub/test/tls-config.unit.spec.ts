import { describe, expect, it } from 'vitest';
import { HubConfig, HubConfigError, loadHubConfig } from '../src/config/hub-config.js';

describe('HUB_TLS settings', () => {
  it('are on by default for the process (`npm start`, `npm run start:hub` without HUB_TLS), with the loopback names and a year per agency certificate', () => {
    const config = loadHubConfig({});
    expect(config.tls).toEqual({ enabled: true, hostNames: ['localhost', '127.0.0.1', '::1'], agencyCertificateDays: 365, requireCsr: false });
  });

  it('HUB_TLS=off turns them off; a HubConfig made in code (in-process tests, no socket) is off unless given', () => {
    expect(loadHubConfig({ HUB_TLS: 'off' }).tls.enabled).toBe(false);
    expect(new HubConfig('127.0.0.1', 8080, '/srv/hub/data', 1, 65_536, 'log', '/srv/hub/municipalities.json').tls.enabled).toBe(false);
  });

  it('HUB_TLS=on, the host names of the hub certificate always including HUB_HOST, and the agency certificate validity', () => {
    const config = loadHubConfig({ HUB_TLS: 'on', HUB_HOST: '0.0.0.0', HUB_TLS_HOSTS: 'hub.example,10.0.0.5', HUB_TLS_AGENCY_CERT_DAYS: '30' });
    expect(config.tls).toEqual({ enabled: true, hostNames: ['hub.example', '10.0.0.5', '0.0.0.0'], agencyCertificateDays: 30, requireCsr: false });
  });

  it('refuses a bad value, naming the variable', () => {
    expect(() => loadHubConfig({ HUB_TLS: 'yes' })).toThrow(HubConfigError);
    expect(() => loadHubConfig({ HUB_TLS: 'yes' })).toThrow(/HUB_TLS: must be on or off/);
    expect(() => loadHubConfig({ HUB_TLS_HOSTS: 'a b' })).toThrow(/HUB_TLS_HOSTS/);
    expect(() => loadHubConfig({ HUB_TLS_AGENCY_CERT_DAYS: '0' })).toThrow(/HUB_TLS_AGENCY_CERT_DAYS/);
    expect(() => loadHubConfig({ HUB_TLS_REQUIRE_CSR: 'true' })).toThrow(/HUB_TLS_REQUIRE_CSR: must be on or off/);
  });

  it('HUB_TLS_REQUIRE_CSR=on: the hub makes no agency keys (registration and renewal must carry a CSR); off by default', () => {
    expect(loadHubConfig({ HUB_TLS: 'on', HUB_TLS_REQUIRE_CSR: 'on' }).tls.requireCsr).toBe(true);
    expect(loadHubConfig({ HUB_TLS: 'on', HUB_TLS_REQUIRE_CSR: 'off' }).tls.requireCsr).toBe(false);
  });
});
