import { credentials, Metadata, status as GrpcStatus, type Client, type ServiceError } from '@grpc/grpc-js';
import { expect } from 'vitest';
import { HubGrpcServer } from '../../src/grpc/hub-grpc-server.js';
import { PROBLEM_BODY_TRAILER, PROBLEM_CODE_TRAILER } from '../../src/grpc/grpc-problem.js';
import { AUDIT_SERVICE, HEALTH_SERVICE, NUMBERING_SERVICE, loadHubProtos, serviceClient } from '../../src/grpc/proto-files.js';
import { startTestHub, type TestHub, type TestHubOptions } from './test-hub.js';

/** How a client reads messages: defaults filled in (as most gRPC clients see them), 64-bit integers as strings, no virtual oneof fields. */
const CLIENT_OPTIONS = { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: false } as const;

export interface GrpcAnswer<T> {
  readonly response: T;
  /** The answer's initial metadata (x-correlation-id, idempotent-replayed). */
  readonly metadata: Metadata;
}

type Unary = (request: unknown, metadata: Metadata, callback: (error: ServiceError | null, response: unknown) => void) => { on(event: 'metadata', listener: (m: Metadata) => void): void };

/** A real @grpc/grpc-js client of one hub service, built from the same .proto files as the server. */
export class GrpcServiceClient {
  /** `defaults`: metadata sent with every call unless the call gives its own value (e.g. the operator's token). */
  constructor(
    private readonly client: Client,
    private readonly defaults: Record<string, string> = {},
  ) {}

  call<T = Record<string, unknown>>(method: string, request: unknown, metadata: Record<string, string> = {}): Promise<GrpcAnswer<T>> {
    const md = new Metadata();
    for (const [k, v] of Object.entries({ ...this.defaults, ...metadata })) md.set(k, v);
    const fn = (this.client as unknown as Record<string, Unary>)[method];
    if (fn === undefined) throw new Error(`the client has no method ${method}`);
    return new Promise((resolve, reject) => {
      let initial = new Metadata();
      const call = fn.call(this.client, request, md, (error, response) => (error ? reject(error) : resolve({ response: response as T, metadata: initial })));
      call.on('metadata', (m) => {
        initial = m;
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

export interface GrpcTestHub {
  readonly hub: TestHub;
  readonly server: HubGrpcServer;
  readonly port: number;
  readonly numbering: GrpcServiceClient;
  readonly audit: GrpcServiceClient;
  readonly health: GrpcServiceClient;
  /** Another client of any service, e.g. with other channel options or default metadata. */
  client(service: string, options?: Record<string, number>, defaults?: Record<string, string>): GrpcServiceClient;
  dispose(): Promise<void>;
}

/** The test hub (test-hub.ts) with its gRPC edge on 127.0.0.1, any free port, and clients of each service. */
export async function startGrpcTestHub(options: TestHubOptions & { readonly maxMessageBytes?: number } = {}): Promise<GrpcTestHub> {
  const hub = await startTestHub(options);
  const server = new HubGrpcServer(hub.app, { host: '127.0.0.1', port: 0, maxMessageBytes: options.maxMessageBytes ?? hub.config.bodyLimitBytes, shutdownGraceMs: 1000 });
  const port = await server.start();
  const definition = loadHubProtos(CLIENT_OPTIONS);
  const clients: GrpcServiceClient[] = [];
  const client = (service: string, channelOptions: Record<string, number> = {}, defaults: Record<string, string> = {}) => {
    const Ctor = serviceClient(definition, service);
    const c = new GrpcServiceClient(new Ctor(`127.0.0.1:${port}`, credentials.createInsecure(), channelOptions), defaults);
    clients.push(c);
    return c;
  };
  return {
    hub,
    server,
    port,
    // Numbering commands need the operator's token (the lookups are public).
    numbering: client(NUMBERING_SERVICE, {}, hub.operator),
    audit: client(AUDIT_SERVICE),
    health: client(HEALTH_SERVICE),
    client,
    dispose: async () => {
      for (const c of clients) c.close();
      await server.stop();
      await hub.dispose();
    },
  };
}

/**
 * Awaits a call that MUST fail, asserts its gRPC status, its `problem-code` trailer and the problem body in
 * `problem-bin`, and returns that body with the error.
 */
export async function expectGrpcProblem(
  call: Promise<unknown>,
  status: GrpcStatus,
  code: string,
): Promise<{ problem: Record<string, unknown>; error: ServiceError }> {
  const error = await call.then(
    () => {
      throw new Error(`expected the call to fail with ${GrpcStatus[status]} ${code}, but it succeeded`);
    },
    (e: ServiceError) => e,
  );
  expect({ status: GrpcStatus[error.code], code: error.metadata.get(PROBLEM_CODE_TRAILER)[0] }).toEqual({ status: GrpcStatus[status], code });
  const body = error.metadata.get(PROBLEM_BODY_TRAILER)[0];
  expect(Buffer.isBuffer(body)).toBe(true);
  const problem = JSON.parse((body as Buffer).toString('utf8')) as Record<string, unknown>;
  expect(problem).toMatchObject({ code, detail: error.details, correlationId: error.metadata.get('x-request-id')[0], instance: expect.stringMatching(/^\/linkage_ledger\.v1\.|^\/grpc\.health\.v1\./) });
  return { problem, error };
}
