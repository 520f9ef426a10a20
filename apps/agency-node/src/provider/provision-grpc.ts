import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metadata, Server, ServerCredentials, status, loadPackageDefinition, type ServerUnaryCall, type sendUnaryData, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { AgencyProblem } from '../http/agency-problem.js';
import type { ProvisionEndpoint } from './provision-endpoint.js';

export const INTERMEDIATE_SERVER_PROTO = 'linkage_ledger/v1/intermediate_server.proto';

interface SignedProvision {
  readonly body?: Buffer;
  readonly hubSignature?: string;
  readonly hubSignatureKey?: string;
}

/** schemas/proto of the repository this module belongs to (from src in tests, from dist once built). */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'schemas', 'proto');
    if (existsSync(join(candidate, INTERMEDIATE_SERVER_PROTO))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`schemas/proto/${INTERMEDIATE_SERVER_PROTO} not found above the agency-node build`);
    dir = parent;
  }
}

/** The problem's gRPC status: what the HTTP status of the same problem means. */
function grpcStatus(httpStatus: number): status {
  if (httpStatus === 401) return status.UNAUTHENTICATED;
  if (httpStatus === 404) return status.NOT_FOUND;
  if (httpStatus === 409) return status.ALREADY_EXISTS;
  if (httpStatus === 503) return status.UNAVAILABLE;
  if (httpStatus >= 400 && httpStatus < 500) return status.INVALID_ARGUMENT;
  return status.INTERNAL;
}

function handler(run: (raw: Buffer, signature: string | undefined, keyId: string | undefined) => Promise<unknown>) {
  return (call: ServerUnaryCall<SignedProvision, unknown>, done: sendUnaryData<{ body: Buffer }>): void => {
    const raw = call.request.body ?? Buffer.alloc(0);
    run(raw, call.request.hubSignature, call.request.hubSignatureKey || undefined).then(
      (answer) => done(null, { body: Buffer.from(JSON.stringify(answer), 'utf8') }),
      (error: unknown) => {
        const problem = error instanceof AgencyProblem ? error : new AgencyProblem('INTERNAL', 'the provision could not be handled');
        const trailer = new Metadata();
        trailer.set('problem-code', problem.code);
        done({ code: grpcStatus(problem.status), details: `${problem.code}: ${problem.message}`, metadata: trailer });
      },
    );
  };
}

/**
 * The provision endpoint over gRPC (linkage_ledger.v1.IntermediateServer), serving the same
 * ProvisionEndpoint as HTTP, with server reflection. Plaintext (h2c) on the given host and port; put TLS in front for grpcs://.
 */
export async function startProvisionGrpcServer(endpoint: ProvisionEndpoint, options: { host: string; port: number; maxMessageBytes: number }): Promise<{ readonly port: number; close(): Promise<void> }> {
  const definition = loadSync([INTERMEDIATE_SERVER_PROTO], { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: false, includeDirs: [protoDir()] });
  const service = (loadPackageDefinition(definition)['linkage_ledger'] as Record<string, Record<string, ServiceClientConstructor>>)['v1']!['IntermediateServer']!.service;
  const server = new Server({ 'grpc.max_receive_message_length': options.maxMessageBytes });
  server.addService(service, {
    provide: handler((raw, signature, keyId) => endpoint.provide(raw, signature, undefined, keyId)),
    provideBatch: handler((raw, signature, keyId) => endpoint.provideBatch(raw, signature, undefined, keyId)),
  });
  // Server reflection (grpc.reflection.v1 and v1alpha), from the .proto file's own field names (keepCase), for grpcurl and the like.
  new ReflectionService(loadSync([INTERMEDIATE_SERVER_PROTO], { keepCase: true, includeDirs: [protoDir()] })).addToServer(server);
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
}
