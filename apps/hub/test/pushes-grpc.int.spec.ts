import { status as GrpcStatus } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { acquire, issuePerson, MURORAN_CITY, PENSION, registerAgency, until, type Agency } from './support/linkage-fixture.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcServiceClient, type GrpcTestHub } from './support/grpc-client.js';
import { PushReceiver, subscribe, writePushTable } from './pushes.support.js';

describe('gRPC linkage_ledger.v1.Updates', () => {
  const dir = mkdtempSync(join(tmpdir(), 's2-pushes-grpc-'));
  let grpc: GrpcTestHub;
  let updates: GrpcServiceClient;
  const receiver = new PushReceiver();
  let muroran: Agency;
  let pension: Agency;
  let muroranCode: string;
  let pensionCode: string;

  beforeAll(async () => {
    grpc = await startGrpcTestHub({ env: { HUB_AUTHORIZATION_TABLE_FILE: writePushTable(dir), HUB_PUSH_RETRY_BASE_MS: '40' } });
    await receiver.start(grpc.hub);
    muroran = await registerAgency(grpc.hub, MURORAN_CITY, 'municipality', receiver.endpoint);
    pension = await registerAgency(grpc.hub, PENSION, 'pension-service', receiver.endpoint);
    const person = await issuePerson(grpc.hub);
    muroranCode = await acquire(grpc.hub, muroran, person.individualNumber);
    pensionCode = await acquire(grpc.hub, pension, person.individualNumber);
    await subscribe(grpc.hub, pension, pensionCode, MURORAN_CITY, 'pension-award-claim', ['local-tax']);
    updates = grpc.client('linkage_ledger.v1.Updates');
  });

  afterAll(async () => {
    await grpc?.dispose();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('ReportUpdate fans out as over HTTP; ListPushes shows the push to both agencies', async () => {
    const { response } = await updates.call<{ updateId: string; serial: string; subscribers: number }>(
      'ReportUpdate',
      { code: muroranCode, itemCodes: ['local-tax'] },
      { authorization: `Bearer ${muroran.token}` },
    );
    expect(response.subscribers).toBe(1);
    expect(response.serial).toMatch(/^\d{20}$/);
    await until(async () => receiver.received.length === 1, 'the push', 15_000);
    expect(receiver.received[0]!.body['code']).toBe(pensionCode);
    await until(
      async () => (await updates.call<{ pushes: { status: string }[] }>('ListPushes', { role: 'subscriber' }, { authorization: `Bearer ${pension.token}` })).response.pushes[0]?.status === 'delivered',
      'delivered',
      15_000,
    );
    const provider = await updates.call<{ pushes: { subscriber: { agencyId: string }; itemCode: string; updateId: string }[] }>('ListPushes', { role: 'provider' }, { authorization: `Bearer ${muroran.token}` });
    expect(provider.response.pushes).toHaveLength(1);
    expect(provider.response.pushes[0]).toMatchObject({ subscriber: { agencyId: PENSION }, itemCode: 'local-tax', updateId: response.updateId });
  });

  test('refusals over gRPC carry the problem code and are recorded', async () => {
    const from = await grpc.hub.head();
    await expectGrpcProblem(updates.call('ReportUpdate', { code: pensionCode, itemCodes: ['local-tax'] }, { authorization: `Bearer ${muroran.token}` }), GrpcStatus.NOT_FOUND, 'UNKNOWN_CODE');
    await expectGrpcProblem(updates.call('ReportUpdate', { code: pensionCode, itemCodes: ['local-tax'] }, { authorization: `Bearer ${pension.token}` }), GrpcStatus.PERMISSION_DENIED, 'UPDATE_ITEM_NOT_PROVIDED');
    await expectGrpcProblem(updates.call('ReportUpdate', { code: muroranCode, itemCodes: [] }, { authorization: `Bearer ${muroran.token}` }), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    await expectGrpcProblem(updates.call('ListPushes', { role: 'both' }, { authorization: `Bearer ${muroran.token}` }), GrpcStatus.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    const events = await grpc.hub.store.readAll({ fromPosition: from });
    expect(events.map((e) => [e.type, (e.data as { reason?: string }).reason])).toEqual([
      ['RequestRefused', 'UNKNOWN_CODE'],
      ['RequestRefused', 'UPDATE_ITEM_NOT_PROVIDED'],
      ['RequestRefused', 'VALIDATION_FAILED'],
    ]);
  });
});
