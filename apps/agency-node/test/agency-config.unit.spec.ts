import { describe, expect, test } from 'vitest';
import { AgencyConfigError, loadAgencyConfig } from '../src/config/agency-config.js';

const KEY = 'A'.repeat(43);
const base = { AGENCY_ID: 'muroran-city', AGENCY_DATA_DIR: 'data/agency', AGENCY_HUB_URL: 'http://127.0.0.1:8080/', AGENCY_TOKEN: 'tok-123' };

function problemsOf(env: Record<string, string>, needsHub = true, files: Record<string, string> = {}): string[] {
  try {
    loadAgencyConfig(env, { needsHub, cwd: '/srv', readFile: (p) => files[p] ?? (() => { throw Object.assign(new Error('no'), { code: 'ENOENT' }); })() });
  } catch (error) {
    if (error instanceof AgencyConfigError) return error.problems.map((p) => `${p.variable}: ${p.message}`);
    throw error;
  }
  return [];
}

describe('loadAgencyConfig', () => {
  test('defaults, resolved paths, trailing slash dropped', () => {
    const c = loadAgencyConfig(base, { needsHub: true, cwd: '/srv' });
    expect(c).toMatchObject({ agencyId: 'muroran-city', host: '127.0.0.1', port: 8090, grpcPort: undefined, dataDir: '/srv/data/agency', staffToken: undefined, logLevel: 'log' });
    expect(c.hub).toEqual({ url: 'http://127.0.0.1:8080', token: 'tok-123', provisionKey: undefined, timeoutMs: 30000 });
  });

  test('the gRPC provision endpoint only when AGENCY_GRPC_PORT is set, to a port', () => {
    expect(loadAgencyConfig({ ...base, AGENCY_GRPC_PORT: '8093' }, { needsHub: true, cwd: '/srv' }).grpcPort).toBe(8093);
    expect(problemsOf({ ...base, AGENCY_GRPC_PORT: 'grpc' })).toEqual(['AGENCY_GRPC_PORT: must be an integer from 0 to 65535, got "grpc"']);
  });

  test('the fetch after a push is off unless AGENCY_PUSH_FETCH=on; any other value is refused', () => {
    expect(loadAgencyConfig(base, { needsHub: true, cwd: '/srv' }).pushFetch).toBe(false);
    expect(loadAgencyConfig({ ...base, AGENCY_PUSH_FETCH: 'on' }, { needsHub: true, cwd: '/srv' }).pushFetch).toBe(true);
    expect(loadAgencyConfig({ ...base, AGENCY_PUSH_FETCH: 'off' }, { needsHub: true, cwd: '/srv' }).pushFetch).toBe(false);
    expect(problemsOf({ ...base, AGENCY_PUSH_FETCH: 'yes' })).toEqual(['AGENCY_PUSH_FETCH: must be on or off, got "yes"']);
  });

  test('tokens from files; the hub key from the environment', () => {
    const c = loadAgencyConfig(
      { ...base, AGENCY_TOKEN: '', AGENCY_TOKEN_FILE: 'hub.token', AGENCY_STAFF_TOKEN_FILE: '/etc/staff.token', AGENCY_HUB_PROVISION_KEY: KEY },
      { needsHub: true, cwd: '/srv', readFile: (p) => ({ '/srv/hub.token': 'from-file\n', '/etc/staff.token': 'staff' })[p]! },
    );
    expect(c.hub).toMatchObject({ token: 'from-file', provisionKey: KEY });
    expect(c.staffToken).toBe('staff');
  });

  test('every bad variable is reported, one line each', () => {
    expect(problemsOf({ AGENCY_ID: 'Muroran', AGENCY_PORT: '70000', AGENCY_HUB_URL: 'http://hub?x=1', AGENCY_HUB_PROVISION_KEY: 'short', AGENCY_LOG_LEVEL: 'loud', AGENCY_TOKEN_FILE: 'missing' })).toEqual([
      'AGENCY_ID: must be 2-64 lowercase letters, digits or hyphens (e.g. muroran-city), got "Muroran"',
      'AGENCY_PORT: must be an integer from 0 to 65535, got "70000"',
      'AGENCY_DATA_DIR: is required: the directory for agency.sqlite and the keys (created if missing)',
      'AGENCY_LOG_LEVEL: must be one of fatal, error, warn, log, debug, verbose, got "loud"',
      "AGENCY_HUB_PROVISION_KEY: must be the hub's Ed25519 provision-signing public key: 43 characters of unpadded base64url (raw 32 bytes)",
      'AGENCY_HUB_URL: must be an http(s) URL without query or fragment (e.g. http://127.0.0.1:8080), got "http://hub?x=1"',
      'AGENCY_TOKEN_FILE: cannot read /srv/missing (ENOENT)',
    ]);
  });

  test('the hub settings are required only by the commands that talk to the hub', () => {
    const local = { AGENCY_ID: 'muroran-city', AGENCY_DATA_DIR: 'd' };
    expect(problemsOf(local, false)).toEqual([]);
    expect(problemsOf(local, true)).toEqual([
      "AGENCY_HUB_URL: is required: the hub's base URL (e.g. http://127.0.0.1:8080)",
      "AGENCY_TOKEN_FILE: is required (or AGENCY_TOKEN): the agency's bearer token for the hub",
    ]);
    expect(problemsOf({ ...base, AGENCY_TOKEN_FILE: 't' }, true, { '/srv/t': 'x' })).toEqual(['AGENCY_TOKEN: set either AGENCY_TOKEN_FILE or AGENCY_TOKEN, not both']);

  });

  test('the offline commands (keys, load-copies) do not read AGENCY_TOKEN_FILE: it does not exist before the agency is registered', () => {
    const beforeRegistration = { AGENCY_ID: 'muroran-city', AGENCY_DATA_DIR: 'd', AGENCY_HUB_URL: 'http://127.0.0.1:8080', AGENCY_TOKEN_FILE: 'muroran.token' };
    expect(problemsOf(beforeRegistration, false)).toEqual([]);
    expect(problemsOf(beforeRegistration, true)).toEqual(['AGENCY_TOKEN_FILE: cannot read /srv/muroran.token (ENOENT)']);
  });
});
