import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { HubConfigError, loadHubConfig } from '../src/config/hub-config.js';

describe('HUB_REDIS_CLUSTER', () => {
  it('is off by default: one Redis at HUB_REDIS_URL', () => {
    const { linkage } = loadHubConfig({});
    expect(linkage.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(linkage.redisCluster).toBeUndefined();
  });

  it('takes comma-separated host:port seed nodes (IPv6 in brackets, host names, duplicates once) and replaces HUB_REDIS_URL', () => {
    const { linkage } = loadHubConfig({ HUB_REDIS_CLUSTER: ' 10.0.0.1:7000, redis-2.internal:7001,[::1]:7002,10.0.0.1:7000', HUB_REDIS_URL: '' });
    expect(linkage.redisCluster).toEqual(['10.0.0.1:7000', 'redis-2.internal:7001', '[::1]:7002']);
    expect(linkage.redisUrl).toBeUndefined();
    expect(loadHubConfig({ HUB_REDIS_CLUSTER: '127.0.0.1:30001' }).linkage.redisCluster).toEqual(['127.0.0.1:30001']);
  });

  it('is mutually exclusive with HUB_REDIS_URL (even "off")', () => {
    for (const url of ['redis://127.0.0.1:6379', 'off']) {
      expect(() => loadHubConfig({ HUB_REDIS_CLUSTER: '127.0.0.1:30001', HUB_REDIS_URL: url })).toThrow(
        expect.objectContaining({
          problems: [
            {
              variable: 'HUB_REDIS_CLUSTER',
              message: `HUB_REDIS_CLUSTER and HUB_REDIS_URL are mutually exclusive: the code mapper uses one Redis or one Redis Cluster; unset HUB_REDIS_URL (got ${JSON.stringify(url)}) to use the cluster`,
            },
          ],
        }),
      );
    }
  });

  it.each([
    ['127.0.0.1', '"127.0.0.1" is not host:port (an IPv6 address in brackets)'],
    ['127.0.0.1:7000,', '"" is not host:port (an IPv6 address in brackets)'],
    ['127.0.0.1:0', '"127.0.0.1:0": port must be from 1 to 65535'],
    ['10.0.0.1:7000,10.0.0.2:70000', '"10.0.0.2:70000": port must be from 1 to 65535'],
    ['redis://10.0.0.1:7000', '"redis://10.0.0.1:7000" is not host:port (an IPv6 address in brackets)'],
    ['[10.0.0.1]:7000', '"[10.0.0.1]:7000": "10.0.0.1" is not an IP address or a host name'],
    ['bad_host:7000', '"bad_host:7000": "bad_host" is not an IP address or a host name'],
  ])('refuses %j, naming the node', (value, problem) => {
    const load = () => loadHubConfig({ HUB_REDIS_CLUSTER: value, HUB_REDIS_URL: '' });
    expect(load).toThrow(HubConfigError);
    expect(load).toThrow(
      expect.objectContaining({
        problems: [{ variable: 'HUB_REDIS_CLUSTER', message: `must be comma-separated host:port seed nodes of a Redis Cluster (e.g. 10.0.0.1:7000,10.0.0.2:7000): ${problem}` }],
      }),
    );
  });
});
