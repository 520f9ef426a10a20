import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';

/** The hub's .proto files, relative to `schemas/proto`. */
export const HUB_PROTO_FILES = [
  'linkage_ledger/v1/numbering.proto',
  'linkage_ledger/v1/audit.proto',
  'linkage_ledger/v1/linkage.proto',
  'linkage_ledger/v1/subscriptions.proto',
  'linkage_ledger/v1/updates.proto',
  'linkage_ledger/v1/notice_batches.proto',
  'linkage_ledger/v1/authorization_tables.proto',
  'grpc/health/v1/health.proto',
] as const;

export const NUMBERING_SERVICE = 'linkage_ledger.v1.Numbering';
export const AUDIT_SERVICE = 'linkage_ledger.v1.Audit';
export const LINKAGE_SERVICE = 'linkage_ledger.v1.Linkage';
export const HEALTH_SERVICE = 'grpc.health.v1.Health';
export const SUBSCRIPTIONS_SERVICE = 'linkage_ledger.v1.Subscriptions';
export const UPDATES_SERVICE = 'linkage_ledger.v1.Updates';

/**
 * How the server reads messages: lowerCamelCase fields (the proto3 JSON names, which are the HTTP DTOs'
 * names), 64-bit integers as decimal strings (validated like query strings, never rounded), and absent
 * fields left undefined so that "not given" is not mistaken for "" or 0.
 */
export const SERVER_LOADER_OPTIONS: Options = { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: false, oneofs: true };

/**
 * How the reflection service (grpc.reflection.v1 and v1alpha) reads the files: field names as written in the
 * .proto files (snake_case), so the descriptors it serves name the fields as grpcurl, Postman or grpc_cli
 * expect them. Only the descriptors are used; the services' messages are decoded with SERVER_LOADER_OPTIONS.
 */
export const REFLECTION_LOADER_OPTIONS: Options = { keepCase: true };

/**
 * `schemas/proto` of the repository this module belongs to, found by walking up from this file (it runs
 * from apps/hub/src in tests and from dist/apps/hub/src once built), never from the cwd.
 */
export function defaultProtoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; ) {
    const candidate = join(dir, 'schemas', 'proto');
    if (existsSync(join(candidate, HUB_PROTO_FILES[0]))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`schemas/proto with ${HUB_PROTO_FILES[0]} was not found above ${here}; the hub needs its .proto files at run time`);
    dir = parent;
  }
}

/** The hub's services and messages as grpc-js definitions. */
export function loadHubProtos(options: Options = SERVER_LOADER_OPTIONS, protoDir: string = defaultProtoDir()): PackageDefinition {
  return loadSync([...HUB_PROTO_FILES], { ...options, includeDirs: [protoDir] });
}

/** A service's client constructor from a loaded package (`linkage_ledger.v1.Numbering` → its class). */
export function serviceClient(definition: PackageDefinition, qualifiedName: string): ServiceClientConstructor {
  let node: GrpcObject | ServiceClientConstructor | unknown = loadPackageDefinition(definition);
  for (const part of qualifiedName.split('.')) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function' || !('service' in node)) throw new Error(`no gRPC service ${qualifiedName} in the hub's .proto files`);
  return node as ServiceClientConstructor;
}
