import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { copyUpdateStreamId, decideCopyUpdate, type AgencyId, type SubjectId } from '#linkage';
import { HubCodeMapper } from '../src/linkage/hub-code-mapper.js';
import { pushIdOf } from '../src/pushes/push-fan-out.js';
import { acquire, issuePerson, JASSO, MURORAN_CITY, PENSION, registerAgency, startLinkageHub, until } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';
import { PushReceiver, subscribe, writePushTable } from './pushes.support.js';

describe('a fan-out cut short by a crash is resumed at the next start', () => {
  const dir = mkdtempSync(join(tmpdir(), 's2-pushes-resume-'));
  const dataDir = join(dir, 'hub');
  const receiver = new PushReceiver();
  let hub: TestHub | undefined;

  afterAll(async () => {
    await hub?.dispose();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a report recorded with no push issued yet (the hub died right after CopyUpdated): after restart both pushes are issued, under the fan-out\'s push ids, and delivered', async () => {
    const env = { HUB_AUTHORIZATION_TABLE_FILE: writePushTable(dir), HUB_PUSH_RETRY_BASE_MS: '40' };
    hub = await startLinkageHub({ dataDir, env });
    await receiver.start(hub);
    const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', receiver.endpoint);
    const pension = await registerAgency(hub, PENSION, 'pension-service', receiver.endpoint);
    const jasso = await registerAgency(hub, JASSO, 'jasso', receiver.endpoint);
    const person = await issuePerson(hub);
    const muroranCode = await acquire(hub, muroran, person.individualNumber);
    const subscriptions = [
      await subscribe(hub, pension, await acquire(hub, pension, person.individualNumber), MURORAN_CITY, 'pension-award-claim', ['local-tax']),
      await subscribe(hub, jasso, await acquire(hub, jasso, person.individualNumber), MURORAN_CITY, 'jasso-scholarship', ['local-tax']),
    ];
    const subjectId = (await hub.app.get(HubCodeMapper).mapper.resolve(MURORAN_CITY, muroranCode)) as SubjectId;
    // What POST /v1/updates records first; the process then "dies" before it issues a push.
    const updateId = randomUUID();
    const at = new Date().toISOString();
    await hub.ledger.append({
      streamId: copyUpdateStreamId(updateId),
      expectedRevision: 'no_stream',
      events: decideCopyUpdate({ updateId, subjectId, providerAgencyId: MURORAN_CITY as AgencyId, itemCodes: ['local-tax'], updatedAt: at, reportedAt: at, pushes: 2, tableVersion: 1 }),
      serial: { allocate: true },
      metadata: { actor: `agency:${MURORAN_CITY}`, correlationId: 'resume-test' },
    });
    await hub.close();
    expect(receiver.received).toHaveLength(0);

    hub = await startLinkageHub({ dataDir, env });
    const from = 0;
    await until(async () => (await hub!.store.readAll({ fromPosition: from })).filter((e) => e.type === 'PushDelivered').length === 2, 'two deliveries', 15_000);
    const events = await hub.store.readAll({ fromPosition: from });
    const issued = events.filter((e) => e.type === 'PushIssued').map((e) => (e.data as { pushId: string }).pushId);
    expect(new Set(issued)).toEqual(new Set(subscriptions.map((s) => pushIdOf(updateId, s, 'local-tax'))));
    expect(receiver.received.map((r) => r.body['pushId']).sort()).toEqual([...issued].sort());
    expect(receiver.received.every((r) => r.signatureValid && !r.duplicate)).toBe(true);
    expect(hub.logger.lines.some((l) => l.level === 'warn' && l.message.includes(`resumed the fan-out of update ${updateId}: 2 push(es)`))).toBe(true);
  });
});
