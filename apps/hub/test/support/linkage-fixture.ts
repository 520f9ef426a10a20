import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Metadata, Server as GrpcServer, ServerCredentials, status as GrpcStatus, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { SERVER_LOADER_OPTIONS, defaultProtoDir, serviceClient } from '../../src/grpc/proto-files.js';
import { join } from 'node:path';
import { expect } from 'vitest';
import { RedisCodeMapper, createMapperRedisClient } from '#mapper';
import { generateAnswerKeyPair, sealAnswer, type AnswerKeyPair } from '#sealed-answer';
import { MURORAN, nextResidentRecordCode, startTestHub, type TestHub, type TestHubOptions } from './test-hub.js';

export const PENSION = 'jpn-pension-service';
export const MURORAN_CITY = 'muroran-city';
export const SAPPORO_CITY = 'sapporo-city';
export const JASSO = 'jasso';

/** Removes a test hub's code mapper keys from the shared Redis. */
export async function dropMapperKeys(prefix: string): Promise<void> {
  const client = createMapperRedisClient({ url: 'redis://127.0.0.1:6379' });
  await client.connect();
  try {
    await (await RedisCodeMapper.open(client, { prefix, onLayoutMismatch: 'reset' })).drop();
  } finally {
    await client.close();
  }
}

/**
 * A hub with the linkage on: the authorization table published at start, Redis under a prefix of this
 * run, whose keys `dispose()` removes with the data directory.
 */
export async function startLinkageHub(options: TestHubOptions = {}): Promise<TestHub> {
  const hub = await startTestHub({
    ...options,
    env: {
      HUB_AUTHORIZATION_TABLE_FILE: '',
      HUB_SELF_DISCLOSURE_TABLE_FILE: '',
      HUB_REDIS_URL: 'redis://127.0.0.1:6379',
      HUB_REDIS_PREFIX: `llt-${process.pid}-${randomBytes(4).toString('hex')}`,
      HUB_PROVIDER_TIMEOUT_MS: '1500',
      ...options.env,
    },
  });
  const prefix = hub.config.linkage.redisPrefix;
  return {
    ...hub,
    dispose: async () => {
      await hub.dispose();
      if (prefix !== undefined && hub.config.linkage.redisUrl === 'redis://127.0.0.1:6379') await dropMapperKeys(prefix);
    },
  };
}

export function operatorToken(hub: TestHub): string {
  return (JSON.parse(readFileSync(join(hub.config.keysDir, 'operator.token.json'), 'utf8')) as { token: string }).token;
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export interface Agency {
  readonly agencyId: string;
  readonly token: string;
  readonly keys: AnswerKeyPair;
}

export async function registerAgency(hub: TestHub, agencyId: string, kind: string, endpoint: string): Promise<Agency> {
  const keys = await generateAnswerKeyPair();
  const res = await hub.post('/v1/agencies', { agencyId, name: `${agencyId} (test)`, kind, endpoint, publicKey: keys.publicKey }, bearer(operatorToken(hub)));
  expect(res.statusCode, res.body).toBe(201);
  return { agencyId, token: res.json<{ token: string }>().token, keys };
}

/** Issues a number to a new resident of Muroran; returns the number and the citizen's secret. */
export async function issuePerson(hub: TestHub): Promise<{ individualNumber: string; citizenSecret: string; residentRecordCode: string }> {
  const residentRecordCode = nextResidentRecordCode();
  const res = await hub.post('/v1/individual-numbers', { residentRecordCode, municipalityCode: MURORAN }, hub.operator);
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json<{ individualNumber: string; citizenSecret: string }>();
  return { ...body, residentRecordCode };
}

export async function acquire(hub: TestHub, agency: Agency, individualNumber: string, acquisitionNumber = `acq-${randomBytes(4).toString('hex')}`): Promise<string> {
  const res = await hub.post('/v1/agency-codes', { individualNumber, acquisitionNumber }, bearer(agency.token));
  expect([200, 201], res.body).toContain(res.statusCode);
  return res.json<{ code: string }>().code;
}

export interface ProvisionCall {
  readonly path: string;
  readonly body: Record<string, unknown>;
  readonly signatureValid: boolean;
  /** The key the call names (hub-signature-key, or hub_signature_key over gRPC). */
  readonly keyId: string;
}

/** What the fake intermediate server does for a code: answer items, refuse, hang, or break the protocol. */
export type Behaviour =
  | { answer: Record<string, unknown>; plaintextAlways?: true }
  | { refuse: string }
  | { hang: true }
  | { status: number }
  | { garbage: true };

/**
 * A provider's intermediate server in-process: verifies the hub's signature with the key the hub serves,
 * records every call, and answers per code (default NO_RECORD), sealing to answerPublicKey when given.
 */
export class FakeProvider {
  readonly calls: ProvisionCall[] = [];
  readonly behaviours = new Map<string, Behaviour>();
  /** When set, every batch call is refused (HTTP: with this status; gRPC: INVALID_ARGUMENT) and nothing is answered. */
  batchStatus: number | undefined;
  #server: Server | undefined;
  #grpc: GrpcServer | undefined;
  #hubKey: string | undefined;
  port = 0;
  grpcPort = 0;

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The same provider over gRPC (linkage_ledger.v1.IntermediateServer), once `startGrpc` ran. */
  get grpcEndpoint(): string {
    return `grpc://127.0.0.1:${this.grpcPort}`;
  }

  /** Serves the provision protocol over gRPC too, with the same behaviours (a `status` one ends the call with INTERNAL). */
  async startGrpc(): Promise<void> {
    const definition = loadSync(['linkage_ledger/v1/intermediate_server.proto'], { ...SERVER_LOADER_OPTIONS, includeDirs: [defaultProtoDir()] });
    const service = serviceClient(definition, 'linkage_ledger.v1.IntermediateServer').service;
    const handle = (path: string) => (call: ServerUnaryCall<{ body?: Buffer; hubSignature?: string; hubSignatureKey?: string }, unknown>, done: sendUnaryData<{ body: Buffer }>) =>
      void this.#handleGrpc(path, call.request.body ?? Buffer.alloc(0), call.request.hubSignature ?? '', done, call.request.hubSignatureKey ?? '');
    this.#grpc = new GrpcServer();
    this.#grpc.addService(service, { provide: handle('/v1/provisions'), provideBatch: handle('/v1/provisions/batch') });
    this.grpcPort = await new Promise<number>((resolve, reject) =>
      this.#grpc!.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
    );
  }

  async #handleGrpc(path: string, raw: Buffer, signatureHeader: string, done: sendUnaryData<{ body: Buffer }>, keyId: string): Promise<void> {
    const body = this.#record(path, raw, signatureHeader, keyId);
    const reply = (value: unknown): void => done(null, { body: Buffer.from(JSON.stringify(value), 'utf8') });
    if (path === '/v1/provisions/batch') {
      if (this.batchStatus !== undefined) return done({ code: GrpcStatus.INVALID_ARGUMENT, details: 'refused as a whole' });
      const responses = [];
      for (const r of body['requests'] as Record<string, unknown>[]) responses.push(await this.#answer(r));
      return reply({ responses });
    }
    const behaviour = this.behaviours.get(String(body['code']));
    if (behaviour && 'hang' in behaviour) return;
    if (behaviour && 'status' in behaviour) {
      const trailer = new Metadata();
      trailer.set('problem-code', 'INTERNAL');
      return done({ code: GrpcStatus.INTERNAL, details: 'broken', metadata: trailer });
    }
    if (behaviour && 'garbage' in behaviour) return done(null, { body: Buffer.from('{"status":"answered"', 'utf8') });
    return reply(await this.#answer(body));
  }

  /** Records a call (whether its signature verified over the exact bytes) and returns its body. */
  #record(path: string, raw: Buffer, signatureHeader: string, keyId = ''): Record<string, unknown> {
    const signature = signatureHeader.replace(/^ed25519=/, '');
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: this.#hubKey! }, format: 'jwk' });
    const signatureValid = verify(null, raw, key, Buffer.from(signature, 'base64url'));
    const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    this.calls.push({ path, body, signatureValid, keyId });
    return body;
  }

  async start(hub: TestHub): Promise<void> {
    this.#hubKey = (await hub.get('/v1/hub/keys')).json<{ provisionSigningKey: string }>().provisionSigningKey;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.#grpc?.forceShutdown();
    this.#grpc = undefined;
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = undefined;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const body = this.#record(req.url ?? '', raw, String(req.headers['hub-signature'] ?? ''), String(req.headers['hub-signature-key'] ?? ''));
    if (req.url === '/v1/provisions/batch') {
      if (this.batchStatus !== undefined) return this.#send(res, this.batchStatus, { code: 'VALIDATION_FAILED', message: 'refused as a whole' });
      const responses = [];
      for (const r of body['requests'] as Record<string, unknown>[]) responses.push(await this.#answer(r));
      return this.#send(res, 200, { responses });
    }
    const behaviour = this.behaviours.get(String(body['code']));
    if (behaviour && 'hang' in behaviour) return; // never answers
    if (behaviour && 'status' in behaviour) return this.#send(res, behaviour.status, { error: 'broken' });
    if (behaviour && 'garbage' in behaviour) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"answered"');
      return;
    }
    return this.#send(res, 200, await this.#answer(body));
  }

  async #answer(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    const behaviour = this.behaviours.get(String(request['code']));
    if (behaviour === undefined) return { status: 'refused', reason: 'NO_RECORD' };
    if ('refuse' in behaviour) return { status: 'refused', reason: behaviour.refuse };
    if (!('answer' in behaviour)) return { status: 'refused', reason: 'NO_RECORD' };
    const plain = Buffer.from(JSON.stringify({ items: behaviour.answer }), 'utf8');
    const key = request['answerPublicKey'];
    if (typeof key === 'string' && behaviour.plaintextAlways === undefined) {
      const sealed = await sealAnswer(plain, key, String(request['serial']));
      return { status: 'answered', answer: Buffer.from(sealed).toString('base64url'), encrypted: true };
    }
    return { status: 'answered', answer: plain.toString('base64url'), encrypted: false };
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
}

/** The seeds/001 query: `requester` asks Muroran City for a person's local tax information, by its code. */
export function queryLocalTax(hub: TestHub, requester: Agency, code: string) {
  return hub.post('/v1/queries', { code, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(requester.token));
}

/** The code mapper's mode as readiness reports it (`redis`, `degraded`, `store`). */
export async function mapperMode(hub: TestHub): Promise<string> {
  return (await hub.get('/health/ready')).json<{ codeMapper: { mode: string } }>().codeMapper.mode;
}

/** Polls `check` every 50 ms until it holds; throws naming `what` after `ms`. */
export async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
