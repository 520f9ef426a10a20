import { createHash } from 'node:crypto';
import { gcraParameters, type RateDecision, type RateLimit, type RateLimiter } from './rate-limiter.js';

/**
 * GCRA in one Lua script, so the read and the write of a key's TAT are atomic on the Redis that holds it
 * (hubs sharing the Redis share the budget). The time is Redis' own (TIME), so hubs' clocks need not
 * agree. One key per call: it runs on a Redis Cluster as on one Redis (the key's slot picks the node).
 * KEYS[1] the key's TAT (ms, text); ARGV[1] the emission interval T (ms); ARGV[2] the tolerance τ (ms).
 * Answers {1, 0} (allowed) or {0, ms until the next request would pass}.
 */
export const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nxt = tat + interval
local allow_at = nxt - tolerance
if allow_at > now then
  return {0, math.max(1, math.ceil(allow_at - now))}
end
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil(nxt - now) + 1)
return {1, 0}
`;

export const GCRA_SHA = createHash('sha1').update(GCRA_SCRIPT).digest('hex');

/** Sends one command whose first key is `key` (a cluster client routes it by that key's slot). */
export type RedisSend = (key: string, args: readonly string[]) => Promise<unknown>;

/**
 * The limiter shared by every hub on one Redis (or Redis Cluster): each key is `<prefix>:{<kind>:<digest>}`,
 * the braces a hash tag, so a principal's keys stay on one slot while principals spread over the cluster.
 * Ids are digested: neither a subject id nor an address is written to Redis as given.
 */
export class RedisRateLimiter implements RateLimiter {
  #scriptLoaded = false;

  constructor(
    private readonly send: RedisSend,
    private readonly prefix: string,
  ) {}

  /** The Redis key of a limiter key (`agency:<id>`, `citizen:<subject>`, `source:<address>`). */
  redisKey(key: string): string {
    const colon = key.indexOf(':');
    const kind = colon < 0 ? 'key' : key.slice(0, colon);
    const digest = createHash('sha256').update(key).digest('base64url').slice(0, 22);
    return `${this.prefix}:{${kind}:${digest}}`;
  }

  async take(key: string, limit: RateLimit): Promise<RateDecision> {
    const redisKey = this.redisKey(key);
    const { intervalMs, toleranceMs } = gcraParameters(limit);
    const args = ['1', redisKey, String(intervalMs), String(toleranceMs)];
    let reply: unknown;
    if (this.#scriptLoaded) {
      try {
        reply = await this.send(redisKey, ['EVALSHA', GCRA_SHA, ...args]);
      } catch (error) {
        // A Redis restarted (or a cluster node failed over) has forgotten the script: send it whole again.
        if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
        reply = await this.send(redisKey, ['EVAL', GCRA_SCRIPT, ...args]);
      }
    } else {
      reply = await this.send(redisKey, ['EVAL', GCRA_SCRIPT, ...args]);
      this.#scriptLoaded = true;
    }
    if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`unexpected reply of the rate limit script: ${JSON.stringify(reply)}`);
    const allowed = Number(reply[0]) === 1;
    return { allowed, retryAfterMs: allowed ? 0 : Math.max(1, Number(reply[1])) };
  }
}
