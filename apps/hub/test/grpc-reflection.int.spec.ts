import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_SERVICE, HEALTH_SERVICE, LINKAGE_SERVICE, NUMBERING_SERVICE, SUBSCRIPTIONS_SERVICE, UPDATES_SERVICE } from '../src/grpc/proto-files.js';
import { NOTICE_BATCHES_SERVICE } from '../src/notices/notice-batches.grpc-service.js';
import { AUTHORIZATION_TABLES_SERVICE } from '../src/linkage/tables/authorization-tables.grpc-service.js';
import { ReflectionClient } from '../../../test/support/grpc-reflection-client.js';
import { startGrpcTestHub, type GrpcTestHub } from './support/grpc-client.js';

// Server reflection (grpc.reflection.v1 and v1alpha) on the hub's gRPC edge: a client that knows only the
// reflection protocol lists the services, fetches their file descriptors and calls one, as grpcurl does.
let g: GrpcTestHub;
const clients: ReflectionClient[] = [];
function reflection(version: 'v1' | 'v1alpha' = 'v1'): ReflectionClient {
  const c = new ReflectionClient(`127.0.0.1:${g.port}`, version);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  g = await startGrpcTestHub({ env: { HUB_CHECKPOINT_EVERY_EVENTS: '1000000', HUB_CHECKPOINT_EVERY_MS: '86400000' } });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await g?.dispose();
});

describe('gRPC server reflection on the hub', () => {
  it('lists the hub\'s services over v1 and v1alpha', async () => {
    for (const version of ['v1', 'v1alpha'] as const) {
      const services = await reflection(version).listServices();
      expect([...services].sort()).toEqual([AUDIT_SERVICE, HEALTH_SERVICE, LINKAGE_SERVICE, NUMBERING_SERVICE, SUBSCRIPTIONS_SERVICE, UPDATES_SERVICE, NOTICE_BATCHES_SERVICE, AUTHORIZATION_TABLES_SERVICE].sort());
    }
  });

  it('answers file_containing_symbol with the descriptor of a service, its methods and messages named as in the .proto file', async () => {
    const client = reflection();
    const found = await client.fileContainingSymbol(NUMBERING_SERVICE);
    if ('error' in found) throw new Error(found.error.errorMessage);
    const file = found.files.find((f) => f.package === 'linkage_ledger.v1');
    expect(file).toBeDefined();
    const numbering = file!.service!.find((s) => s.name === 'Numbering');
    expect(numbering?.method.map((m) => m.name)).toEqual(expect.arrayContaining(['IssueIndividualNumber', 'DesignateCorporateNumber', 'GetCorporateNumber']));
    const issue = numbering!.method.find((m) => m.name === 'IssueIndividualNumber')!;
    expect(issue.inputType).toMatch(/(^|\.)linkage_ledger\.v1\.IssueIndividualNumberRequest$/);
    const request = file!.messageType!.find((m) => m.name === 'IssueIndividualNumberRequest')!;
    expect(request.field.map((f) => [f.name, f.number])).toEqual([['resident_record_code', 1], ['municipality_code', 2]]);
    // A method and a message are symbols too; the health service is in a file of its own.
    for (const symbol of [`${NUMBERING_SERVICE}.GetCorporateNumber`, 'linkage_ledger.v1.CorporateNumber', LINKAGE_SERVICE, AUDIT_SERVICE]) {
      const again = await client.fileContainingSymbol(symbol);
      expect('files' in again && again.files.some((f) => f.package === 'linkage_ledger.v1')).toBe(true);
    }
    const health = await client.fileContainingSymbol(HEALTH_SERVICE);
    expect('files' in health && health.files.some((f) => f.package === 'grpc.health.v1' && f.service!.some((s) => s.name === 'Health'))).toBe(true);
    const unknown = await client.fileContainingSymbol('linkage_ledger.v1.NoSuchService');
    expect('error' in unknown && unknown.error.errorCode).toBe(status.NOT_FOUND);
  });

  it('lets a client that knows only the reflected descriptors call the services', async () => {
    const client = reflection();
    const designated = await client.call(NUMBERING_SERVICE, 'DesignateCorporateNumber', { name: '株式会社リフレクション', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, g.hub.operator);
    expect(designated['corporate_number']).toMatch(/^\d{13}$/);
    const read = await client.call(NUMBERING_SERVICE, 'GetCorporateNumber', { corporate_number: designated['corporate_number'] });
    expect(read).toMatchObject({ corporate_number: designated['corporate_number'], name: '株式会社リフレクション', kind: 'stock-company' });
    const health = await client.call(HEALTH_SERVICE, 'Check', { service: '' });
    expect(health['status']).toBe('SERVING');
  });
});
