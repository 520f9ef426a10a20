import { describe, expect, test } from 'vitest';
import { loadHubConfig, HubConfigError } from '../src/config/hub-config.js';
import { DEFAULT_RATE_LIMITS, readRateLimits } from '../src/rate-limits/rate-limit-settings.js';
import { LocalRateLimiter, gcraStep } from '../src/rate-limits/rate-limiter.js';

describe('GCRA (rate and burst)', () => {
  const limit = { perSecond: 10, burst: 3 };

  test('a burst passes at once, the next request waits one emission interval', () => {
    let tat: number | undefined;
    const decisions = [];
    for (let i = 0; i < 4; i++) {
      const step = gcraStep(tat, 1000, limit);
      tat = step.tat;
      decisions.push(step.decision);
    }
    expect(decisions).toEqual([{ allowed: true, retryAfterMs: 0 }, { allowed: true, retryAfterMs: 0 }, { allowed: true, retryAfterMs: 0 }, { allowed: false, retryAfterMs: 100 }]);
    // 100 ms later one more passes, and only one.
    expect(gcraStep(tat, 1100, limit).decision.allowed).toBe(true);
    expect(gcraStep(gcraStep(tat, 1100, limit).tat, 1100, limit).decision).toEqual({ allowed: false, retryAfterMs: 100 });
  });

  test('the average rate holds over time: 10 per second pass at 10 per second, for ever', () => {
    let tat: number | undefined;
    let passed = 0;
    for (let t = 0; t < 10_000; t += 10) {
      const step = gcraStep(tat, t, limit);
      tat = step.tat;
      if (step.decision.allowed) passed++;
    }
    // 10 s at 10/s, plus the burst.
    expect(passed).toBeGreaterThanOrEqual(100);
    expect(passed).toBeLessThanOrEqual(103);
  });

  test('the local limiter keeps keys apart and its memory bounded', () => {
    let now = 0;
    const limiter = new LocalRateLimiter({ maxKeys: 100, now: () => now });
    expect(limiter.takeSync('agency:a', { perSecond: 1, burst: 1 }).allowed).toBe(true);
    expect(limiter.takeSync('agency:a', { perSecond: 1, burst: 1 })).toEqual({ allowed: false, retryAfterMs: 1000 });
    expect(limiter.takeSync('agency:b', { perSecond: 1, burst: 1 }).allowed).toBe(true);
    for (let i = 0; i < 10_000; i++) limiter.takeSync(`source:${i}`, { perSecond: 1, burst: 1 });
    expect(limiter.size).toBeLessThanOrEqual(100);
    now = 5000;
    expect(limiter.takeSync('agency:a', { perSecond: 1, burst: 1 }).allowed).toBe(true);
  });
});

describe('HUB_RATE_LIMIT_* settings', () => {
  test('defaults: generous limits for every kind, shared through Redis under ll-rate', () => {
    expect(readRateLimits({})).toEqual({ settings: DEFAULT_RATE_LIMITS, problems: [] });
    expect(DEFAULT_RATE_LIMITS.agency!.perSecond).toBeGreaterThanOrEqual(3000);
  });

  test('a rate sets the burst to twice it unless given; 0 turns a kind off', () => {
    const { settings, problems } = readRateLimits({ HUB_RATE_LIMIT_AGENCY_PER_S: '100', HUB_RATE_LIMIT_CITIZEN_PER_S: '0.5', HUB_RATE_LIMIT_CITIZEN_BURST: '5', HUB_RATE_LIMIT_SOURCE_PER_S: '0', HUB_RATE_LIMIT_REDIS: 'off', HUB_RATE_LIMIT_REDIS_PREFIX: 'rl-x', HUB_RATE_LIMIT_REDIS_TIMEOUT_MS: '50' });
    expect(problems).toEqual([]);
    expect(settings).toEqual({ agency: { perSecond: 100, burst: 200 }, citizen: { perSecond: 0.5, burst: 5 }, source: undefined, agencies: {}, redis: false, redisPrefix: 'rl-x', redisTimeoutMs: 50 });
  });

  test('agencies with limits of their own: rate/burst, burst twice the rate when left out, 0 not limited; a bad or repeated entry is refused', () => {
    const { settings, problems } = readRateLimits({ HUB_RATE_LIMIT_AGENCIES: 'jpn-pension-service=8000/16000, muroran-city=0,constructor=3' });
    expect(problems).toEqual([]);
    expect(settings.agencies).toEqual({ 'jpn-pension-service': { perSecond: 8000, burst: 16000 }, 'muroran-city': null, constructor: { perSecond: 3, burst: 6 } });
    expect(readRateLimits({ HUB_RATE_LIMIT_AGENCIES: 'a=1,a=2' }).problems.map((p) => p.variable)).toEqual(['HUB_RATE_LIMIT_AGENCIES']);
    expect(readRateLimits({ HUB_RATE_LIMIT_AGENCIES: 'Bad Agency=1' }).problems.map((p) => p.variable)).toEqual(['HUB_RATE_LIMIT_AGENCIES']);
    expect(readRateLimits({ HUB_RATE_LIMIT_AGENCIES: 'a=-1' }).problems.map((p) => p.variable)).toEqual(['HUB_RATE_LIMIT_AGENCIES']);
  });

  test('bad values are refused at boot, each named', () => {
    const bad = { HUB_RATE_LIMIT_AGENCY_PER_S: '-1', HUB_RATE_LIMIT_SOURCE_BURST: '0', HUB_RATE_LIMIT_REDIS: 'yes', HUB_RATE_LIMIT_REDIS_PREFIX: 'a b' };
    expect(() => loadHubConfig(bad)).toThrow(HubConfigError);
    expect(readRateLimits(bad).problems.map((p) => p.variable).sort()).toEqual(['HUB_RATE_LIMIT_AGENCY_PER_S', 'HUB_RATE_LIMIT_REDIS', 'HUB_RATE_LIMIT_REDIS_PREFIX', 'HUB_RATE_LIMIT_SOURCE_BURST']);
  });

  test('the hub config carries them', () => {
    expect(loadHubConfig({ HUB_RATE_LIMIT_CITIZEN_PER_S: '3' }).rateLimits.citizen).toEqual({ perSecond: 3, burst: 6 });
  });
});
