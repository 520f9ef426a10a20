import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, loadPackageDefinition, status as grpcStatus, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { agencyCodeFromRandomBytes } from '#linkage';
import { fromBase64url, openAnswer, generateAnswerKeyPair } from '#sealed-answer';
import { INTERMEDIATE_SERVER_PROTO, protoDir } from '../src/provider/provision-grpc.js';
import { DEMO_DIR, testSigner } from './support/agency-fixture.js';
import { json, startFakeHub, type FakeHub } from './support/fake-hub.js';
import { runCommand, runNode, startNode } from './support/spawned-node.js';

const INDIVIDUAL_NUMBER = '123456789018';

describe('the built agency node as a process', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'agency-e2e-'));
  const cwd = mkdtempSync(join(tmpdir(), 'agency-e2e-cwd-'));
  const signer = testSigner();
  const code = agencyCodeFromRandomBytes(randomBytes(16));
  let hub: FakeHub;
  let env: Record<string, string>;

  beforeAll(async () => {
    hub = await startFakeHub();
    // The hub serves its provision-signing key; the node fetches it once at start.
    hub.handle((req, res) => {
      if (req.path === '/v1/hub/keys') return json(res, 200, { provisionSigningKey: signer.publicKey });
      if (req.path === '/v1/queries') return json(res, 200, { serial: '20261129010000000002', queryId: 'q-cli', outcome: 'refused-by-provider', reason: 'NO_RECORD' });
      if (req.path === '/v1/agency-codes') return json(res, 201, { code, serial: '20261129010000000001', acquiredAt: new Date().toISOString(), reacquired: false });
      json(res, 404, { code: 'NOT_FOUND' });
    });
    env = { AGENCY_ID: 'muroran-city', AGENCY_DATA_DIR: dataDir, AGENCY_HUB_URL: hub.url, AGENCY_TOKEN: 'e2e-token', AGENCY_LOG_LEVEL: 'log' };
  });
  afterAll(async () => {
    await hub.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  });

  test('load-copies, acquire, serve: a signed provision over HTTP (and over gRPC) is answered, sealed, and in `records`', async () => {
    const keys = (await runCommand(['keys'], env, cwd)) as { answerPublicKey: string };
    expect(keys.answerPublicKey).toHaveLength(43);
    expect(statSync(join(dataDir, 'keys', 'answer-key.json')).mode & 0o777).toBe(0o600);
    expect(await runCommand(['load-copies', join(DEMO_DIR, 'muroran-city.copies.json')], env, cwd)).toMatchObject({ persons: 4, heldItems: ['local-tax', 'resident-record'] });
    const acquired = await runCommand(['acquire', '--local-id', 'M-000123', '--individual-number', '-', '--acquisition-number', 'ACQ-1'], env, cwd, `${INDIVIDUAL_NUMBER}\n`);
    expect(acquired).toMatchObject({ localId: 'M-000123', code });
    expect(hub.seen.find((r) => r.path === '/v1/agency-codes')!.body).toEqual({ individualNumber: INDIVIDUAL_NUMBER, acquisitionNumber: 'ACQ-1' });

    const queried = await runCommand(['query', '--local-id', 'M-000123', '--provider', 'jpn-pension-service', '--procedure', 'child-allowance', '--items', 'pension-enrollment'], env, cwd);
    expect(queried).toEqual({ serial: '20261129010000000002', queryId: 'q-cli', outcome: 'refused-by-provider', reason: 'NO_RECORD' });
    expect(hub.seen.find((r) => r.path === '/v1/queries')!.body).toMatchObject({ code, itemCodes: ['pension-enrollment'], answerPublicKey: keys.answerPublicKey });

    const node = await startNode({ ...env, AGENCY_GRPC_PORT: '0' }, cwd);
    try {
      const recipient = await generateAnswerKeyPair();
      const serial = '20261129010000000042';
      const body = JSON.stringify({
        protocol: 'linkage-ledger/provision/v1',
        serial,
        queryId: 'e2e-query-1',
        requesterAgencyId: 'jpn-pension-service',
        requesterKind: 'pension-service',
        providerAgencyId: 'muroran-city',
        code,
        procedureCode: 'pension-award-claim',
        itemCodes: ['local-tax'],
        answerPublicKey: recipient.publicKey,
        requestedAt: new Date().toISOString(),
      });
      const res = await fetch(`${node.baseUrl}/v1/provisions`, { method: 'POST', headers: { 'content-type': 'application/json', 'hub-signature': signer.sign(body) }, body });
      expect(res.status).toBe(200);
      const answer = (await res.json()) as { status: string; answer: string; encrypted: boolean };
      expect(answer).toMatchObject({ status: 'answered', encrypted: true });
      const opened = JSON.parse(Buffer.from(await openAnswer(fromBase64url(answer.answer)!, recipient.privateKey, serial)).toString('utf8')) as unknown;
      expect(opened).toMatchObject({ items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 3120000 } } });

      const forged = await fetch(`${node.baseUrl}/v1/provisions`, { method: 'POST', headers: { 'content-type': 'application/json', 'hub-signature': testSigner().sign(body) }, body });
      expect(forged.status).toBe(401);
      expect(((await forged.json()) as { code: string }).code).toBe('HUB_SIGNATURE_INVALID');

      // The same endpoint over gRPC (AGENCY_GRPC_PORT): a forged signature is refused before anything is read.
      const grpcPort = Number(/provision endpoint over gRPC on grpc:\/\/127\.0\.0\.1:(\d+)/.exec(node.output())?.[1]);
      expect(grpcPort).toBeGreaterThan(0);
      const refused = await provideOverGrpc(grpcPort, Buffer.from(body), testSigner().sign(body));
      expect([refused.code, refused.problem]).toEqual([grpcStatus.UNAUTHENTICATED, 'HUB_SIGNATURE_INVALID']);
      const again = await provideOverGrpc(grpcPort, Buffer.from(body), signer.sign(body));
      // The serial was answered over HTTP already: the node answers it the same way, once recorded.
      expect(again.code).toBe(grpcStatus.OK);
      expect(JSON.parse(again.body!.toString('utf8'))).toMatchObject({ status: 'answered', encrypted: true });

      const records = (await runCommand(['records'], env, cwd)) as { records: { serial: string; outcome: string; role: string }[] };
      expect(records.records).toEqual([
        expect.objectContaining({ serial, role: 'provided', outcome: 'answered', localId: 'M-000123' }),
        expect.objectContaining({ serial: '20261129010000000002', role: 'requested', outcome: 'refused-by-provider', reason: 'NO_RECORD' }),
      ]);

      // SIGTERM: Nest stops the server, the store closes (SQLite removes the WAL on a clean close), then the signal is re-raised.
      node.child.kill('SIGTERM');
      expect(await node.exited).toEqual({ code: null, signal: 'SIGTERM' });
      expect(existsSync(join(dataDir, 'agency.sqlite-wal'))).toBe(false);
      expect(statSync(join(dataDir, 'agency.sqlite')).mode & 0o777).toBe(0o600);
    } finally {
      if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
    }
    // The individual number went to the hub only: no file of the data dir holds it.
    const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
    for (const file of files(dataDir)) expect(readFileSync(file).includes(Buffer.from(INDIVIDUAL_NUMBER)), file).toBe(false);
  });

  test('refuses to start with a bad configuration, one line per bad variable (exit code 78)', async () => {
    const run = runNode(['serve'], { AGENCY_ID: 'Muroran City', AGENCY_DATA_DIR: dataDir, AGENCY_PORT: 'eighty', AGENCY_HUB_URL: 'ftp://hub' }, cwd);
    expect(await run.exited).toEqual({ code: 78, signal: null });
    expect(run.output()).toContain('invalid agency-node configuration');
    expect(run.output()).toContain('AGENCY_ID: must be 2-64 lowercase letters');
    expect(run.output()).toContain('AGENCY_PORT: must be an integer from 0 to 65535, got "eighty"');
    expect(run.output()).toContain('AGENCY_HUB_URL: must be an http(s) URL');
    expect(run.output()).toContain('AGENCY_TOKEN_FILE: is required');
  });
});

/** One Provide call over gRPC to a node process: its status, problem-code trailer and answer body. */
async function provideOverGrpc(port: number, body: Buffer, hubSignature: string): Promise<{ code: number; problem?: unknown; body?: Buffer }> {
  const definition = loadSync([INTERMEDIATE_SERVER_PROTO], { keepCase: false, bytes: Buffer, defaults: false, includeDirs: [protoDir()] });
  const Service = (loadPackageDefinition(definition)['linkage_ledger'] as Record<string, Record<string, ServiceClientConstructor>>)['v1']!['IntermediateServer']!;
  const client = new Service(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return await new Promise((resolve) => {
      (client as unknown as { provide: (r: unknown, cb: (e: ServiceError | null, r?: { body: Buffer }) => void) => void }).provide({ body, hubSignature }, (error, reply) =>
        resolve(error ? { code: error.code, problem: error.metadata.get('problem-code')[0] } : { code: grpcStatus.OK, body: reply!.body }),
      );
    });
  } finally {
    client.close();
  }
}
