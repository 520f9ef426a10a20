import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Refusals } from '../src/refusals/refusals.service.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

/**
 * Rate limits on hubs sharing one KurrentDB log: a standby limits its own callers too, appends nothing,
 * keeps counting the rate-limited requests (bounded per kind), and records them when it leads.
 */
announceServer();
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Stored {
  readonly type: string;
  readonly data: { principalKind?: string; count?: number; sources?: unknown; sealed?: unknown };
}

describe('rate-limited requests on a standby', () => {
  it('are refused 429 by the standby, held (no event, no error), and recorded once per kind when it leads', async () => {
    const log = new SharedLog();
    cleanups.push(() => log.dispose());
    const start = async (instanceId: string): Promise<KurrentTestHub> => {
      const hub = await startKurrentHub(log, { instanceId, env: { HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '3600000', HUB_RATE_LIMIT_SOURCE_PER_S: '0.01', HUB_RATE_LIMIT_SOURCE_BURST: '2' } });
      cleanups.push(() => hub.close());
      return hub;
    };
    const a = await start('hub-a');
    const b = await start('hub-b');
    const refusals = b.app.get(Refusals);
    const errors = vi.spyOn(Logger.prototype, 'error');
    cleanups.push(() => errors.mockRestore());
    const read = (source: string) => b.inject({ method: 'GET', url: '/v1/audit/verifier-key', remoteAddress: source });
    const recorded = async () => (await log.texts()).map((t) => JSON.parse(t) as Stored).filter((e) => e.type === 'RateLimitedRequestsRecorded');

    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await read('198.51.100.50')).statusCode);
    expect(codes).toEqual([200, 200, 429, 429, 429]);
    await refusals.flush();
    expect((await read('198.51.100.51')).statusCode).toBe(200);
    expect((await read('198.51.100.51')).statusCode).toBe(200);
    expect((await read('198.51.100.51')).statusCode).toBe(429);
    await refusals.flush();
    expect(await recorded()).toEqual([]);
    expect(refusals.pendingRateLimited).toEqual({ source: 4 });
    expect(errors.mock.calls.filter((c) => String(c[0]).includes('could not be recorded'))).toEqual([]);

    await a.close();
    await eventually('hub-b leads', async () => b.leadership.role === 'leader');
    await eventually('the held counts recorded', async () => refusals.pendingRateLimited['source'] === undefined);
    await refusals.flush();
    const events = await recorded();
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ principalKind: 'source', count: 4 });
    // The addresses are sealed in the stored text (I10).
    expect(events[0]!.data).not.toHaveProperty('sources');
    expect(JSON.stringify(events[0])).not.toContain('198.51.100.5');
  });
});
