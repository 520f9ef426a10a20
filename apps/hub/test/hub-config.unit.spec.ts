import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HubConfigError, defaultMunicipalitiesFile, loadHubConfig } from '../src/config/hub-config.js';

describe('loadHubConfig', () => {
  it('fills the defaults', () => {
    const config = loadHubConfig({}, '/srv/hub');
    expect(config).toMatchObject({ host: '127.0.0.1', port: 8080, dataDir: '/srv/hub/data', nodeId: 1, bodyLimitBytes: 65536, bodyTimeoutMs: 5000, logLevel: 'log' });
    expect(config.ledgerPath).toBe('/srv/hub/data/ledger.sqlite');
    expect(config.keysDir).toBe('/srv/hub/data/keys');
    expect(config.logLevels).toEqual(['fatal', 'error', 'warn', 'log']);
    expect(config.municipalitiesFile).toBe(defaultMunicipalitiesFile());
  });

  it('finds schemas/municipalities.json from the module location, not the cwd', () => {
    expect(defaultMunicipalitiesFile()).toMatch(/schemas\/municipalities\.json$/);
    expect(existsSync(defaultMunicipalitiesFile())).toBe(true);
  });

  it('reads every variable and treats empty ones as unset', () => {
    const config = loadHubConfig(
      { HUB_HOST: '0.0.0.0', HUB_PORT: '9090', HUB_DATA_DIR: '/var/hub', HUB_NODE_ID: '07', HUB_BODY_LIMIT_BYTES: '2048', HUB_BODY_TIMEOUT_MS: '750', HUB_LOG_LEVEL: 'error', HUB_MUNICIPALITIES_FILE: '' },
      '/',
    );
    expect(config).toMatchObject({ host: '0.0.0.0', port: 9090, dataDir: '/var/hub', nodeId: 7, bodyLimitBytes: 2048, bodyTimeoutMs: 750, logLevel: 'error' });
    expect(config.logLevels).toEqual(['fatal', 'error']);
  });

  it('lists every bad variable in one error', () => {
    const load = () =>
      loadHubConfig({ HUB_HOST: 'not a host', HUB_PORT: '70000', HUB_NODE_ID: '1', HUB_BODY_LIMIT_BYTES: '12k', HUB_BODY_TIMEOUT_MS: '50', HUB_LOG_LEVEL: 'chatty' });
    expect(load).toThrow(HubConfigError);
    expect(load).toThrow(
      expect.objectContaining({
        problems: [
          { variable: 'HUB_HOST', message: 'must be an IP address or a host name, got "not a host"' },
          { variable: 'HUB_PORT', message: 'must be an integer from 0 to 65535, got "70000"' },
          { variable: 'HUB_NODE_ID', message: 'must be exactly 2 digits (e.g. 01), got "1"' },
          { variable: 'HUB_BODY_LIMIT_BYTES', message: 'must be an integer from 1024 to 104857600, got "12k"' },
          { variable: 'HUB_BODY_TIMEOUT_MS', message: 'must be an integer from 100 to 600000, got "50"' },
          { variable: 'HUB_LOG_LEVEL', message: 'must be one of fatal, error, warn, log, debug, verbose, got "chatty"' },
        ],
      }),
    );
    expect(load).toThrow(/invalid hub configuration:\n {2}HUB_HOST: .*\n {2}HUB_PORT: /);
  });

  it('refuses a municipality list file that does not exist', () => {
    expect(() => loadHubConfig({ HUB_MUNICIPALITIES_FILE: '/nonexistent/m.json' })).toThrow(
      expect.objectContaining({ problems: [{ variable: 'HUB_MUNICIPALITIES_FILE', message: 'no file at /nonexistent/m.json' }] }),
    );
  });
});
