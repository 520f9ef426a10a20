import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { AppendRequest, RecordedEvent } from '#ledger';
import { DEFAULT_PUSHES, type HubConfig } from '../src/config/hub-config.js';
import { PushDelivery } from '../src/pushes/push-delivery.js';
import type { PushFanOut } from '../src/pushes/push-fan-out.js';
import type { PushProjection } from '../src/pushes/push-projection.js';
import type { PushBody, PushSender, PushTry } from '../src/pushes/push-sender.js';
import { PushStore } from '../src/pushes/push-store.js';
import type { LinkageViews } from '../src/linkage/linkage-views.js';
import type { Leadership } from '../src/leadership/leadership.js';
import type { EventBus } from '@nestjs/cqrs';

const PUSH_ID = 'a0000000-0000-8000-8000-000000000001';

function issuedEvent(): RecordedEvent {
  const issuedAt = new Date().toISOString();
  return {
    type: 'PushIssued',
    schemaVersion: 1,
    streamId: `push-${PUSH_ID}`,
    revision: 0,
    position: 0,
    serial: '20260601010000000002',
    data: {
      pushId: PUSH_ID,
      updateId: 'b0000000-0000-4000-8000-000000000001',
      subjectId: 'subject',
      subscriptionId: 'c0000000-0000-4000-8000-000000000001',
      code: 'the-subscribers-code-x',
      requesterAgencyId: 'jpn-pension-service',
      providerAgencyId: 'muroran-city',
      procedureCode: 'pension-award-claim',
      itemCode: 'local-tax',
      updatedAt: issuedAt,
      issuedAt,
      deliverBy: new Date(Date.now() + 60_000).toISOString(),
    },
  } as unknown as RecordedEvent;
}

const until = async (check: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('the delivery worker delivers on the leader only', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  test('a standby takes no push; once it leads it delivers the pending one and records PushDelivered on the push\'s stream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's2-push-leader-'));
    dirs.push(dir);
    const store = new PushStore(join(dir, 'pushes.sqlite'), () => 'person');
    const event = issuedEvent();
    const { subjectId: _s, code: _c, subscriptionId: _x, ...clear } = event.data as Record<string, unknown>;
    await store.apply([{ ...event, data: clear } as RecordedEvent]);
    const sent: PushBody[] = [];
    const appended: AppendRequest[] = [];
    const leadership = { acceptsCommands: false };
    const delivery = new PushDelivery(
      { current: async () => store } as unknown as PushProjection,
      { onIssued: () => {}, isInFlight: () => false, resume: async () => 0 } as unknown as PushFanOut,
      { send: async (_endpoint: string, body: PushBody): Promise<PushTry> => (sent.push(body), { ok: true, duplicate: false }) } as unknown as PushSender,
      { agency: () => ({ status: 'active', agency: { endpoint: 'http://127.0.0.1:1' } }), catchUp: async () => {} } as unknown as LinkageViews,
      { publish: () => {} } as unknown as EventBus,
      { pushes: { ...DEFAULT_PUSHES, concurrency: 4 } } as unknown as HubConfig,
      {
        readStream: async () => [event],
        append: async (request: AppendRequest) => {
          appended.push(request);
          return { status: 'appended', serial: '20260601010000000003', firstPosition: 1, lastPosition: 1, nextExpectedRevision: 1, eventIds: [] };
        },
      } as never,
      () => new Date(),
      leadership as unknown as Leadership,
    );
    delivery.onApplicationBootstrap();
    await new Promise((r) => setTimeout(r, 300));
    delivery.wake();
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toEqual([]);
    expect(appended).toEqual([]);

    leadership.acceptsCommands = true;
    delivery.wake();
    await until(() => appended.length === 1, 'the delivery recorded');
    expect(sent).toEqual([expect.objectContaining({ pushId: PUSH_ID, serial: '20260601010000000002', code: 'the-subscribers-code-x', itemCode: 'local-tax' })]);
    expect(appended[0]).toMatchObject({ streamId: `push-${PUSH_ID}`, expectedRevision: 0, serial: { allocate: true }, events: [expect.objectContaining({ type: 'PushDelivered', terminal: 'completed' })] });
    expect(delivery.stats).toMatchObject({ delivered: 1, retries: 0 });
    // Not tried again while the projection has not folded its end yet.
    await new Promise((r) => setTimeout(r, 200));
    expect(sent).toHaveLength(1);
    await delivery.onApplicationShutdown();
    await store.close();
  });
});
