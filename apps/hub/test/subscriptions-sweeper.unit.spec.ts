import { describe, expect, it } from 'vitest';
import type { EventBus } from '@nestjs/cqrs';
import type { EventStore } from '#ledger';
import type { HubConfig } from '../src/config/hub-config.js';
import type { Leadership } from '../src/leadership/leadership.js';
import type { LinkageViews } from '../src/linkage/linkage-views.js';
import type { SubscriptionDirectory } from '../src/subscriptions/subscription-directory.js';
import { SubscriptionSweeper } from '../src/subscriptions/subscription-sweeper.service.js';

/** Only the leader appends hub-initiated work: a standby's sweep reads nothing and appends nothing. */
describe('SubscriptionSweeper on a standby', () => {
  const untouchable = <T extends object>(name: string): T =>
    new Proxy({} as T, {
      get: (_t, p) => {
        throw new Error(`the sweep used ${name}.${String(p)}`);
      },
    });

  function sweeper(acceptsCommands: () => boolean): { sweeper: SubscriptionSweeper; roleChange: (role: string) => void } {
    let listener: (role: string) => void = () => {};
    const leadership = { get acceptsCommands() { return acceptsCommands(); }, role: 'standby', onRoleChange: (l: (role: string) => void) => (listener = l) } as unknown as Leadership;
    const s = new SubscriptionSweeper(
      untouchable<EventStore>('the ledger'),
      () => new Date('2026-12-05T00:00:00Z'),
      untouchable<SubscriptionDirectory>('the directory'),
      untouchable<LinkageViews>('the views'),
      untouchable<EventBus>('the event bus'),
      { subscriptions: { sweepIntervalMs: 60_000 } } as HubConfig,
      leadership,
    );
    return { sweeper: s, roleChange: (r) => listener(r) };
  }

  it('sweeps nothing while it stands by', async () => {
    const { sweeper: s } = sweeper(() => false);
    await expect(s.sweep()).resolves.toEqual({ expired: 0, ended: 0 });
  });

  it('sweeps (reads the index) once it leads', async () => {
    let leads = false;
    const { sweeper: s, roleChange } = sweeper(() => leads);
    await expect(s.sweep()).resolves.toEqual({ expired: 0, ended: 0 });
    leads = true;
    roleChange('leader');
    await expect(s.sweep()).rejects.toThrow(/the sweep used the directory\.current/);
  });
});
