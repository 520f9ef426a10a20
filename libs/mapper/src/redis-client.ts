import { createClient } from 'redis';

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
