import type { RateLimit } from './rate-limiter.js';

/** Who a budget belongs to: an agency (its credential), a citizen (theirs), or a source (an address) for callers no credential identifies. */
export type PrincipalKind = 'agency' | 'citizen' | 'source';
export const PRINCIPAL_KINDS: readonly PrincipalKind[] = ['agency', 'citizen', 'source'];

/** Rate limits per principal (issue 15 item 2); a kind without a limit (rate 0) is not limited. */
export interface RateLimitSettings {
  readonly agency: RateLimit | undefined;
  readonly citizen: RateLimit | undefined;
  readonly source: RateLimit | undefined;
  /** Agencies with a limit of their own (HUB_RATE_LIMIT_AGENCIES), by agency id; null: not limited. */
  readonly agencies: Readonly<Record<string, RateLimit | null>>;
  /** Share the budgets through the hub's Redis (HUB_REDIS_URL / HUB_REDIS_CLUSTER) when it has one. */
  readonly redis: boolean;
  /** Key prefix of the budgets in Redis: hubs with the same prefix on one Redis share every budget. */
  readonly redisPrefix: string;
  /** A Redis decision not answered within this is taken by this hub's own limiter (and Redis rested for a second). */
  readonly redisTimeoutMs: number;
}

/**
 * Generous enough that the linkage load test (about 1,000 requests/s from a few agencies) and the
 * benchmarks are never throttled; tight enough that one caller cannot take the hub alone.
 */
export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  agency: { perSecond: 5000, burst: 10_000 },
  citizen: { perSecond: 50, burst: 200 },
  source: { perSecond: 1000, burst: 2000 },
  agencies: {},
  redis: true,
  redisPrefix: 'll-rate',
  redisTimeoutMs: 100,
};

export const RATE_LIMIT_VARIABLES = [
  'HUB_RATE_LIMIT_AGENCY_PER_S',
  'HUB_RATE_LIMIT_AGENCY_BURST',
  'HUB_RATE_LIMIT_CITIZEN_PER_S',
  'HUB_RATE_LIMIT_CITIZEN_BURST',
  'HUB_RATE_LIMIT_SOURCE_PER_S',
  'HUB_RATE_LIMIT_SOURCE_BURST',
  'HUB_RATE_LIMIT_AGENCIES',
  'HUB_RATE_LIMIT_REDIS',
  'HUB_RATE_LIMIT_REDIS_PREFIX',
  'HUB_RATE_LIMIT_REDIS_TIMEOUT_MS',
] as const;

const NUMBER = /^(?:0|[1-9]\d{0,6})(?:\.\d{1,3})?$/;
const INTEGER = /^[1-9]\d{0,8}$/;
const PREFIX = /^[A-Za-z0-9._:-]{1,64}$/;
const AGENCY_LIMIT = /^([a-z0-9][a-z0-9-]{0,62})=((?:0|[1-9]\d{0,6})(?:\.\d{1,3})?)(?:\/([1-9]\d{0,8}))?$/;

/**
 * Reads the rate limit variables (set and non-empty ones only, as loadHubConfig gives them): the settings,
 * or the problems, one per bad variable. `HUB_RATE_LIMIT_<KIND>_PER_S=0` turns that kind's limit off;
 * a burst left unset is twice the rate (at least 1).
 */
export function readRateLimits(given: Readonly<Record<string, string | undefined>>): { readonly settings: RateLimitSettings; readonly problems: { variable: string; message: string }[] } {
  const problems: { variable: string; message: string }[] = [];
  const limit = (kind: 'AGENCY' | 'CITIZEN' | 'SOURCE', fallback: RateLimit | undefined): RateLimit | undefined => {
    const rateName = `HUB_RATE_LIMIT_${kind}_PER_S`;
    const burstName = `HUB_RATE_LIMIT_${kind}_BURST`;
    const rateText = given[rateName];
    const burstText = given[burstName];
    let perSecond = fallback?.perSecond ?? 0;
    if (rateText !== undefined) {
      if (!NUMBER.test(rateText)) problems.push({ variable: rateName, message: `must be requests per second, a number from 0 (no limit) to 9999999 with at most 3 decimals, got ${JSON.stringify(rateText)}` });
      else perSecond = Number(rateText);
    }
    let burst = rateText === undefined ? (fallback?.burst ?? 1) : Math.max(1, Math.ceil(2 * perSecond));
    if (burstText !== undefined) {
      if (!INTEGER.test(burstText)) problems.push({ variable: burstName, message: `must be the requests allowed at once, an integer from 1 to 999999999, got ${JSON.stringify(burstText)}` });
      else burst = Number(burstText);
    }
    return perSecond > 0 ? { perSecond, burst } : undefined;
  };
  const agency = limit('AGENCY', DEFAULT_RATE_LIMITS.agency);
  const citizen = limit('CITIZEN', DEFAULT_RATE_LIMITS.citizen);
  const source = limit('SOURCE', DEFAULT_RATE_LIMITS.source);
  const agencies: Record<string, RateLimit | null> = {};
  const agencyText = given['HUB_RATE_LIMIT_AGENCIES'];
  for (const entry of agencyText === undefined ? [] : agencyText.split(',').map((e) => e.trim())) {
    const m = AGENCY_LIMIT.exec(entry);
    if (m === null || Object.hasOwn(agencies, m[1]!)) {
      problems.push({ variable: 'HUB_RATE_LIMIT_AGENCIES', message: `must be comma-separated <agency id>=<per second>[/<burst>], each agency once (e.g. jpn-pension-service=8000/16000,muroran-city=0), got ${JSON.stringify(entry)}` });
      continue;
    }
    const perSecond = Number(m[2]);
    agencies[m[1]!] = perSecond > 0 ? { perSecond, burst: m[3] === undefined ? Math.max(1, Math.ceil(2 * perSecond)) : Number(m[3]) } : null;
  }
  const redis = given['HUB_RATE_LIMIT_REDIS'] ?? 'on';
  if (redis !== 'on' && redis !== 'off') problems.push({ variable: 'HUB_RATE_LIMIT_REDIS', message: `must be on (share the budgets through the hub's Redis when it has one) or off, got ${JSON.stringify(redis)}` });
  const redisPrefix = given['HUB_RATE_LIMIT_REDIS_PREFIX'] ?? DEFAULT_RATE_LIMITS.redisPrefix;
  if (!PREFIX.test(redisPrefix)) problems.push({ variable: 'HUB_RATE_LIMIT_REDIS_PREFIX', message: `must be 1-64 letters, digits, ".", "_", ":" or "-", got ${JSON.stringify(redisPrefix)}` });
  const timeoutText = given['HUB_RATE_LIMIT_REDIS_TIMEOUT_MS'];
  let redisTimeoutMs = DEFAULT_RATE_LIMITS.redisTimeoutMs;
  if (timeoutText !== undefined) {
    if (!INTEGER.test(timeoutText) || Number(timeoutText) > 60_000) problems.push({ variable: 'HUB_RATE_LIMIT_REDIS_TIMEOUT_MS', message: `must be milliseconds from 1 to 60000, got ${JSON.stringify(timeoutText)}` });
    else redisTimeoutMs = Number(timeoutText);
  }
  return { settings: { agency, citizen, source, agencies, redis: redis !== 'off', redisPrefix, redisTimeoutMs }, problems };
}
