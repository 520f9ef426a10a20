import { randomBytes, randomUUID } from 'node:crypto';
import { Metadata, credentials, loadPackageDefinition, status, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { agencyCodeFromRandomBytes } from '#linkage';
import { INTERMEDIATE_SERVER_PROTO, protoDir, startProvisionGrpcServer } from '../src/provider/provision-grpc.js';
import { provisionKeyId } from '../src/hub/hub-keys.js';
import { demoCopies, startTestNode, testSigner, type TestNode } from './support/agency-fixture.js';

// The provision endpoint over gRPC: the same checks as over HTTP (signature first, then schema,
// freshness, addressee), refusals as gRPC statuses with the problem code in the `problem-code` trailer.
const NOW = new Date('2026-11-29T09:00:00.000Z');
const signer = testSigner();
const code = agencyCodeFromRandomBytes(randomBytes(16));
let node: TestNode;
let server: { port: number; close(): Promise<void> };
let client: InstanceType<ServiceClientConstructor>;
let serial = 0;

function provision(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  serial += 1;
  return {
    protocol: 'linkage-ledger/provision/v1',
    serial: `2026112901${String(serial).padStart(10, '0')}`,
    queryId: randomUUID(),
    requesterAgencyId: 'jpn-pension-service',
    requesterKind: 'pension-service',
    providerAgencyId: 'muroran-city',
    code,
    procedureCode: 'pension-award-claim',
    itemCodes: ['local-tax'],
    requestedAt: NOW.toISOString(),
    ...overrides,
  };
}

function call(method: 'provide' | 'provideBatch', text: string, signature = signer.sign(text), hubSignatureKey?: string): Promise<{ body?: Record<string, unknown>; error?: ServiceError }> {
  return new Promise((resolve) => {
    (client as unknown as Record<string, (r: unknown, m: Metadata, cb: (e: ServiceError | null, r?: { body: Buffer }) => void) => void>)[method]!(
      { body: Buffer.from(text, 'utf8'), hubSignature: signature, ...(hubSignatureKey === undefined ? {} : { hubSignatureKey }) },
      new Metadata(),
      (error, reply) => resolve(error ? { error } : { body: JSON.parse(reply!.body.toString('utf8')) as Record<string, unknown> }),
    );
  });
}

function problemOf(error: ServiceError | undefined): [number | undefined, unknown] {
  return [error?.code, error?.metadata.get('problem-code')[0]];
}

beforeAll(async () => {
  node = await startTestNode({ agencyId: 'muroran-city', signer, now: NOW });
  node.runtime.store.loadCopies(demoCopies('muroran-city'), NOW);
  node.runtime.store.setAgencyCode('M-000123', code, NOW.toISOString());
  server = await startProvisionGrpcServer(node.runtime.provisions, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024 });
  const definition = loadSync([INTERMEDIATE_SERVER_PROTO], { keepCase: false, longs: String, bytes: Buffer, defaults: false, includeDirs: [protoDir()] });
  const Service = (loadPackageDefinition(definition)['linkage_ledger'] as Record<string, Record<string, ServiceClientConstructor>>)['v1']!['IntermediateServer']!;
  client = new Service(`127.0.0.1:${server.port}`, credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await server?.close();
  await node?.close();
});

describe('linkage_ledger.v1.IntermediateServer', () => {
  test('Provide answers a signed request with the same document as over HTTP, and records the provision', async () => {
    const req = provision();
    const { body, error } = await call('provide', JSON.stringify(req));
    expect(error).toBeUndefined();
    expect(body).toMatchObject({ status: 'answered', encrypted: false });
    expect(JSON.parse(Buffer.from(body!['answer'] as string, 'base64url').toString('utf8'))).toEqual({ items: { 'local-tax': demoCopies('muroran-city')[0]!.items['local-tax'] } });
    expect(node.runtime.store.recordFor('provided', req['serial'] as string)).toMatchObject({ role: 'provided', counterpartAgencyId: 'jpn-pension-service' });
  });

  test('ProvideBatch answers each request in order', async () => {
    const first = provision();
    const unknown = provision({ code: agencyCodeFromRandomBytes(randomBytes(16)) });
    const { body } = await call('provideBatch', JSON.stringify({ protocol: 'linkage-ledger/provision/v1', requests: [first, unknown] }));
    expect((body!['responses'] as { status: string; reason?: string }[]).map((r) => [r.status, r.reason ?? null])).toEqual([
      ['answered', null],
      ['refused', 'NO_RECORD'],
    ]);
  });

  test('refuses, recording nothing: a bad signature (UNAUTHENTICATED), a body that is not JSON, not the schema, stale, or for another provider (INVALID_ARGUMENT)', async () => {
    const before = node.runtime.store.records({ limit: 1000, role: 'provided' }).length;
    const req = provision();
    expect(problemOf((await call('provide', JSON.stringify(req), signer.sign(JSON.stringify({ ...req, code: 'x' })))).error)).toEqual([status.UNAUTHENTICATED, 'HUB_SIGNATURE_INVALID']);
    expect(problemOf((await call('provide', '{"protocol":')).error)).toEqual([status.INVALID_ARGUMENT, 'MALFORMED_JSON']);
    expect(problemOf((await call('provide', JSON.stringify({ ...provision(), itemCodes: [] }))).error)).toEqual([status.INVALID_ARGUMENT, 'VALIDATION_FAILED']);
    expect(problemOf((await call('provide', JSON.stringify(provision({ requestedAt: '2026-11-29T08:00:00.000Z' })))).error)).toEqual([status.INVALID_ARGUMENT, 'STALE_REQUEST']);
    expect(problemOf((await call('provide', JSON.stringify(provision({ providerAgencyId: 'sapporo-city' })))).error)).toEqual([status.INVALID_ARGUMENT, 'WRONG_PROVIDER']);
    expect(node.runtime.store.records({ limit: 1000, role: 'provided' }).length).toBe(before);
  });

  test('hub_signature_key names the key: the pinned key\'s id is answered, another id is UNAUTHENTICATED (HUB_SIGNATURE_KEY_UNKNOWN), recording nothing', async () => {
    const req = JSON.stringify(provision());
    expect((await call('provide', req, signer.sign(req), provisionKeyId(signer.publicKey))).body).toMatchObject({ status: 'answered' });
    const before = node.runtime.store.records({ limit: 1000, role: 'provided' }).length;
    const other = JSON.stringify(provision());
    expect(problemOf((await call('provide', other, signer.sign(other), '0123456789abcdef')).error)).toEqual([status.UNAUTHENTICATED, 'HUB_SIGNATURE_KEY_UNKNOWN']);
    expect(node.runtime.store.records({ limit: 1000, role: 'provided' }).length).toBe(before);
  });
});

describe('a person\'s own self-information request over gRPC', () => {
  test('carries requesterKind "citizen" and the browser\'s key: answered sealed; without a key INVALID_ARGUMENT (VALIDATION_FAILED)', async () => {
    const { generateAnswerKeyPair, openAnswer, fromBase64url } = await import('#sealed-answer');
    const browser = await generateAnswerKeyPair();
    const { requesterAgencyId: _omitted, ...request } = provision({ requesterKind: 'citizen', procedureCode: 'self-information', answerPublicKey: browser.publicKey });
    void _omitted;
    const answered = await call('provide', JSON.stringify(request));
    expect(answered.body).toMatchObject({ status: 'answered', encrypted: true });
    const plain = JSON.parse(Buffer.from(await openAnswer(fromBase64url(answered.body!['answer'] as string)!, browser.privateKey, request['serial'] as string)).toString('utf8'));
    expect(plain).toEqual({ items: { 'local-tax': demoCopies('muroran-city')[0]!.items['local-tax'] } });
    const keyless: Record<string, unknown> = { ...request, serial: `2026112901${String(++serial).padStart(10, '0')}` };
    delete keyless['answerPublicKey'];
    expect(problemOf((await call('provide', JSON.stringify(keyless))).error)).toEqual([status.INVALID_ARGUMENT, 'VALIDATION_FAILED']);
  });
});

describe('server reflection on the intermediate server', () => {
  test('lists linkage_ledger.v1.IntermediateServer and serves its descriptor, fields named as in the .proto file', async () => {
    const { ReflectionClient } = await import('../../../test/support/grpc-reflection-client.js');
    const reflection = new ReflectionClient(`127.0.0.1:${server.port}`);
    try {
      expect(await reflection.listServices()).toEqual(['linkage_ledger.v1.IntermediateServer']);
      const found = await reflection.fileContainingSymbol('linkage_ledger.v1.IntermediateServer');
      if ('error' in found) throw new Error(found.error.errorMessage);
      const file = found.files.find((f) => f.package === 'linkage_ledger.v1')!;
      expect(file.service!.find((s) => s.name === 'IntermediateServer')!.method.map((m) => m.name).sort()).toEqual(['Provide', 'ProvideBatch']);
      const signed = file.messageType!.find((m) => m.name === 'SignedProvision')!;
      expect(signed.field.map((f) => f.name)).toContain('hub_signature');
    } finally {
      reflection.close();
    }
  });
});
