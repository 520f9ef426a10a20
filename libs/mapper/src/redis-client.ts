import { createClient, createCluster } from 'redis';
import type { RedisLike } from './redis-code-mapper.js';

export interface MapperRedisClientOptions {
  /** e.g. redis://127.0.0.1:6379/0 */
  readonly url: string;
  readonly connectTimeoutMs?: number;
  /** Longest pause between reconnection attempts. Default 2000 ms. */
  readonly maxReconnectDelayMs?: number;
}

/**
 * A node-redis client set up for the mapper: commands fail at once while disconnected (instead of
 * queueing until Redis returns), so that the FallbackCodeMapper can answer from the store; the client
 * keeps reconnecting in the background. node-redis' per-command timeout is off: it allocates a timer per
 * command, and the mapper bounds each batch with one deadline instead.
 */
export function createMapperRedisClient(options: MapperRedisClientOptions) {
  const maxDelay = options.maxReconnectDelayMs ?? 2000;
  return createClient({
    url: options.url,
    disableOfflineQueue: true,
    commandOptions: { timeout: 0 },
    socket: {
      connectTimeout: options.connectTimeoutMs ?? 1000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, maxDelay),
    },
  });
}

export interface MapperRedisClusterOptions {
  /** Seed nodes, `host:port` (IPv6 in brackets): the client discovers the rest of the cluster from any that answers. */
  readonly nodes: readonly string[];
  readonly connectTimeoutMs?: number;
  /** Longest pause between one node's reconnection attempts. Default 2000 ms. */
  readonly maxReconnectDelayMs?: number;
}

/**
 * A node-redis cluster client (`createCluster`) set up as `createMapperRedisClient` sets up one client:
 * every node's connection fails commands at once while disconnected and keeps reconnecting. It follows
 * MOVED / ASK redirections (a slot migration) and rediscovers the topology after them. Wrap it with
 * `clusterRedisLike` for the mapper. `connect()` rejects when no seed node answers: call it again (or make
 * a new client) to retry.
 */
export function createMapperRedisCluster(options: MapperRedisClusterOptions) {
  if (options.nodes.length === 0) throw new Error('a Redis Cluster needs at least one seed node');
  const maxDelay = options.maxReconnectDelayMs ?? 2000;
  const socket = {
    connectTimeout: options.connectTimeoutMs ?? 1000,
    reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, maxDelay),
  };
  return createCluster({
    rootNodes: options.nodes.map((node) => ({ url: `redis://${node}`, socket })),
    defaults: { disableOfflineQueue: true, socket },
    commandOptions: { timeout: 0 },
  });
}

type MapperRedisCluster = ReturnType<typeof createMapperRedisCluster>;

/** Commands the mapper sends that only read (a cluster may serve them from a replica when asked to). */
const READ_ONLY = new Set(['GET', 'MGET', 'HGETALL', 'LRANGE', 'TYPE', 'DUMP']);

/**
 * The mapper's view of a connected cluster client: each command goes to the master of its first key's
 * slot (the mapper only sends commands whose keys share one slot: redis-layout.ts); a listing (SCAN) runs
 * on every master.
 */
export function clusterRedisLike(cluster: MapperRedisCluster): RedisLike {
  return {
    sendCommand: (args, options) => cluster.sendCommand(args[1], READ_ONLY.has(String(args[0]).toUpperCase()), args as (string | Buffer)[], options),
    masters: async () =>
      Promise.all(
        cluster.masters.map(async (master) => {
          const node = await cluster.nodeClient(master);
          return { sendCommand: (args, options) => node.sendCommand(args as (string | Buffer)[], options) } satisfies RedisLike;
        }),
      ),
  };
}
