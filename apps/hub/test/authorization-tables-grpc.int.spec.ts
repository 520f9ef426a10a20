import { status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { AUTHORIZATION_TABLES_SERVICE } from '../src/linkage/tables/authorization-tables.grpc-service.js';
import { expectGrpcProblem, startGrpcTestHub, type GrpcServiceClient, type GrpcTestHub } from './support/grpc-client.js';
import type { TestHub } from './support/test-hub.js';

/**
 * linkage_ledger.v1.AuthorizationTables (schemas/proto/linkage_ledger/v1/authorization_tables.proto) on the
 * hub's gRPC edge: the same commands, answers and recorded refusals as /v1/authorization-tables.
 */

const ROOT = join(import.meta.dirname, '../../..');
const V2_FILE = join(ROOT, 'schemas/authorization/authorization-table.v2.json');
const V2 = JSON.parse(readFileSync(V2_FILE, 'utf8')) as Record<string, unknown>;

let g: GrpcTestHub;
let hub: TestHub;
let client: GrpcServiceClient;
let operator: Record<string, string>;
const eventsOf = async (serial: string): Promise<RecordedEvent[]> => (await hub.ledger.readAll({ fromPosition: 0 })).filter((e) => e.serial === serial);

beforeAll(async () => {
  g = await startGrpcTestHub({ env: { HUB_AUTHORIZATION_TABLE_FILE: V2_FILE, HUB_CHECKPOINT_EVERY_EVENTS: '1000000' } });
  hub = g.hub;
  operator = hub.operator;
  client = g.client(AUTHORIZATION_TABLES_SERVICE);
});
afterAll(async () => {
  await g?.dispose();
});

describe('linkage_ledger.v1.AuthorizationTables', () => {
  const v3 = () => JSON.stringify({ ...V2, version: 3, effectiveFrom: new Date(Date.now() + 86_400_000).toISOString() });

  it('validates, publishes (its own serial) and lists a version, with the diff against the version in force', async () => {
    const checked = await client.call<Record<string, unknown>>('ValidateAuthorizationTable', { tableJson: v3() }, operator);
    expect(checked.response['serial'] ?? '').toBe('');
    expect(checked.response).toMatchObject({ version: 3, state: 'scheduled', diff: { againstVersion: 2, rowsAdded: [], rowsRemoved: [], rowsChanged: [] } });
    const table = v3();
    const published = await client.call<{ serial: string; version: number; digest: string }>('PublishAuthorizationTable', { tableJson: table }, { ...operator, 'idempotency-key': 'grpc-v3' });
    expect(published.response).toMatchObject({ version: 3, state: 'scheduled', serial: expect.stringMatching(/^\d{20}$/), digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await eventsOf(published.response.serial)).map((e) => e.type)).toEqual(['AuthorizationTablePublished']);
    const again = await client.call<{ serial: string }>('PublishAuthorizationTable', { tableJson: table }, { ...operator, 'idempotency-key': 'grpc-v3' });
    expect(again.response.serial).toBe(published.response.serial);
    expect(again.metadata.get('idempotent-replayed')).toEqual(['true']);
    const listed = await client.call<{ versions: { version: number; state: string }[]; inForce: number }>('ListAuthorizationTables', {});
    expect(listed.response.versions.map((v) => `${v.version} ${v.state}`)).toEqual(['2 in-force', '3 scheduled']);
    expect(listed.response.inForce).toBe(2);
  });

  it('refuses with the HTTP edge\'s problem codes, recorded as RequestRefused events (I6)', async () => {
    const schema = await expectGrpcProblem(client.call('PublishAuthorizationTable', { tableJson: JSON.stringify({ ...V2, version: 4, rows: 7 }) }, operator), status.INVALID_ARGUMENT, 'AUTHORIZATION_TABLE_SCHEMA_VIOLATION');
    expect((await eventsOf(String(schema.problem['serial'])))[0]).toMatchObject({ type: 'RequestRefused', data: { command: 'PublishAuthorizationTable', reason: 'AUTHORIZATION_TABLE_SCHEMA_VIOLATION' } });
    await expectGrpcProblem(client.call('PublishAuthorizationTable', { tableJson: v3() }, operator), status.FAILED_PRECONDITION, 'TABLE_VERSION_NOT_NEWER');
    await expectGrpcProblem(client.call('PublishAuthorizationTable', { tableJson: '{"version":' }, operator), status.INVALID_ARGUMENT, 'VALIDATION_FAILED');
    await expectGrpcProblem(client.call('ValidateAuthorizationTable', { tableJson: v3() }, {}), status.UNAUTHENTICATED, 'UNAUTHENTICATED');
    const inForce = await expectGrpcProblem(client.call('WithdrawAuthorizationTable', { version: 2, reason: 'too late' }, operator), status.FAILED_PRECONDITION, 'TABLE_VERSION_IN_FORCE');
    expect((await eventsOf(String(inForce.problem['serial'])))[0]).toMatchObject({ type: 'RequestRefused', data: { command: 'WithdrawAuthorizationTable', reason: 'TABLE_VERSION_IN_FORCE' } });
  });

  it('withdraws a scheduled version', async () => {
    const out = await client.call<{ version: number; serial: string; withdrawnAt: string }>('WithdrawAuthorizationTable', { version: 3, reason: 'postponed' }, operator);
    expect(out.response).toEqual({ version: 3, serial: expect.stringMatching(/^\d{20}$/), withdrawnAt: expect.any(String) });
    expect((await eventsOf(out.response.serial)).map((e) => e.type)).toEqual(['AuthorizationTableWithdrawn']);
    const listed = await client.call<{ versions: { version: number; state: string; withdrawalReason: string }[] }>('ListAuthorizationTables', {});
    expect(listed.response.versions.at(-1)).toMatchObject({ version: 3, state: 'withdrawn', withdrawalReason: 'postponed' });
  });
});
