import { describe, expect, it } from 'vitest';
import { advertisedUrl, loadHubConfig } from '../src/config/hub-config.js';

describe('HUB_EVENT_STORE, HUB_INSTANCE_ID and the leadership timings', () => {
  it('keep the embedded SQLite ledger by default and for "sqlite"', () => {
    expect(loadHubConfig({}).eventStore).toEqual({ kind: 'sqlite' });
    expect(loadHubConfig({ HUB_EVENT_STORE: 'sqlite' }).eventStore).toEqual({ kind: 'sqlite' });
    expect(loadHubConfig({}).leadership).toEqual({ renewMs: 1000, leaseMs: 4000 });
  });

  it.each([
    'kurrentdb://127.0.0.1:2113?tls=false',
    'kurrentdb://node1:2113,node2:2113,node3:2113?tls=false',
    'esdb://localhost:2113?tls=false',
    'kurrentdb+discover://cluster.example:2113',
    'kurrentdb://[::1]:2113/?tls=false',
    'kurrentdb://localhost',
  ])('read the KurrentDB connection string %s', (url) => {
    expect(loadHubConfig({ HUB_EVENT_STORE: url }).eventStore).toEqual({ kind: 'kurrentdb', connection: url, display: url, logStream: 'linkage-ledger' });
  });

  it('mask the credentials of a connection string wherever it is shown', () => {
    const config = loadHubConfig({ HUB_EVENT_STORE: 'kurrentdb://admin:changeit@db:2113?tls=false' });
    expect(config.eventStore).toEqual({ kind: 'kurrentdb', connection: 'kurrentdb://admin:changeit@db:2113?tls=false', display: 'kurrentdb://***@db:2113?tls=false', logStream: 'linkage-ledger' });
    const error = (() => {
      try {
        loadHubConfig({ HUB_EVENT_STORE: 'kurrentdb://admin:changeit@db:99999' });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error?.message).toContain('kurrentdb://***@db:99999');
    expect(error?.message).not.toContain('changeit');
  });

  const expected = 'must be "sqlite" (the embedded ledger, the default) or a KurrentDB connection string kurrentdb://host:port[,host:port…][?tls=false] (esdb:// accepted)';
  it.each([
    ['postgres://db:5432', `${expected}, got "postgres://db:5432"`],
    ['SQLite', `${expected}, got "SQLite"`],
    ['kurrentdb://', `${expected}, got "kurrentdb://"`],
    ['kurrentdb://db:2113,:2113', `${expected}: ":2113" is not host[:port], got "kurrentdb://db:2113,:2113"`],
    ['kurrentdb://db:0', `${expected}: "db:0": port must be from 1 to 65535, got "kurrentdb://db:0"`],
    ['kurrentdb://db_1:2113', `${expected}: "db_1:2113" is not host[:port], got "kurrentdb://db_1:2113"`],
  ])('refuse HUB_EVENT_STORE=%j', (value, message) => {
    expect(() => loadHubConfig({ HUB_EVENT_STORE: value })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', problems: [{ variable: 'HUB_EVENT_STORE', message }] }));
  });

  it('read the log stream name, and refuse a system stream', () => {
    expect(loadHubConfig({ HUB_EVENT_STORE: 'kurrentdb://db:2113', HUB_KURRENTDB_LOG_STREAM: 'ledger-2026' }).eventStore).toMatchObject({ logStream: 'ledger-2026' });
    expect(() => loadHubConfig({ HUB_KURRENTDB_LOG_STREAM: '$all' })).toThrow(
      expect.objectContaining({ problems: [{ variable: 'HUB_KURRENTDB_LOG_STREAM', message: 'must be a KurrentDB stream name of 1-100 letters, digits, ".", "_" or "-" (not a $ system stream), got "$all"' }] }),
    );
  });

  it('take the instance id given, else host name and pid', () => {
    expect(loadHubConfig({ HUB_INSTANCE_ID: 'hub-a' }).instanceId).toBe('hub-a');
    expect(loadHubConfig({}).instanceId).toMatch(new RegExp(`-${process.pid}$`));
    expect(() => loadHubConfig({ HUB_INSTANCE_ID: 'hub a' })).toThrow(
      expect.objectContaining({ problems: [{ variable: 'HUB_INSTANCE_ID', message: 'must be 1-64 letters, digits, ".", "_", ":" or "-" starting with a letter or digit, got "hub a"' }] }),
    );
  });

  it('name this hub by HUB_ADVERTISED_URL, else by its host and port', () => {
    expect(advertisedUrl(loadHubConfig({ HUB_ADVERTISED_URL: 'https://hub-a.example:8443' }))).toBe('https://hub-a.example:8443');
    expect(advertisedUrl(loadHubConfig({ HUB_HOST: '::1', HUB_PORT: '8081' }))).toBe('https://[::1]:8081');
    expect(advertisedUrl(loadHubConfig({ HUB_HOST: '::1', HUB_PORT: '8081', HUB_TLS: 'off' }))).toBe('http://[::1]:8081');
    expect(() => loadHubConfig({ HUB_ADVERTISED_URL: 'hub-a:8080' })).toThrow(
      expect.objectContaining({ problems: [{ variable: 'HUB_ADVERTISED_URL', message: 'must be an http:// or https:// URL (how clients reach this hub), got "hub-a:8080"' }] }),
    );
  });

  it('read the lease timings and refuse a lease shorter than two renewals', () => {
    expect(loadHubConfig({ HUB_LEADERSHIP_RENEW_MS: '200', HUB_LEADERSHIP_LEASE_MS: '1000' }).leadership).toEqual({ renewMs: 200, leaseMs: 1000 });
    expect(() => loadHubConfig({ HUB_LEADERSHIP_RENEW_MS: '1000', HUB_LEADERSHIP_LEASE_MS: '1500' })).toThrow(
      expect.objectContaining({
        problems: [{ variable: 'HUB_LEADERSHIP_LEASE_MS', message: 'must be at least twice HUB_LEADERSHIP_RENEW_MS (1000 ms), so that one late renewal does not hand leadership over; got 1500' }],
      }),
    );
  });
});
