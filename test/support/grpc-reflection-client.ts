import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, type Client, type ClientDuplexStream, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';

/**
 * A server reflection client as grpcurl is one: grpc-js with the reflection protocol's own .proto
 * (grpc.reflection.v1.ServerReflection/ServerReflectionInfo, a bidirectional stream), nothing of the server's
 * .proto files. It lists the services, fetches the file descriptors that define a symbol, and calls a unary
 * method with messages encoded from those descriptors alone.
 */

const require = createRequire(import.meta.url);

/** The reflection protocol's .proto as @grpc/reflection ships it. */
export function reflectionProtoDir(): string {
  return join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
}

interface ReflectionResponse {
  readonly validHost?: string;
  readonly listServicesResponse?: { readonly service: { readonly name: string }[] };
  readonly fileDescriptorResponse?: { readonly fileDescriptorProto: Buffer[] };
  readonly errorResponse?: { readonly errorCode: number; readonly errorMessage: string };
}

export type DecodedFileDescriptor = ReturnType<typeof descriptor.FileDescriptorProto.decode> & {
  name?: string;
  package?: string;
  service?: { name: string; method: { name: string; inputType: string; outputType: string }[] }[];
  messageType?: { name: string; field: { name: string; number: number }[] }[];
};

export class ReflectionClient {
  private readonly client: Client;
  private readonly stream: ClientDuplexStream<Record<string, unknown>, ReflectionResponse>;
  private readonly waiting: { resolve(r: ReflectionResponse): void; reject(e: Error): void }[] = [];

  constructor(readonly address: string, version: 'v1' | 'v1alpha' = 'v1') {
    const definition = loadSync(`grpc/reflection/${version}/reflection.proto`, { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true, includeDirs: [reflectionProtoDir()] });
    const pkg = loadPackageDefinition(definition) as unknown as { grpc: { reflection: Record<string, { ServerReflection: ServiceClientConstructor }> } };
    this.client = new pkg.grpc.reflection[version]!.ServerReflection(address, credentials.createInsecure());
    this.stream = (this.client as unknown as { serverReflectionInfo(m: Metadata): ClientDuplexStream<Record<string, unknown>, ReflectionResponse> }).serverReflectionInfo(new Metadata());
    this.stream.on('data', (response: ReflectionResponse) => this.waiting.shift()?.resolve(response));
    this.stream.on('error', (error: Error) => {
      for (const w of this.waiting.splice(0)) w.reject(error);
    });
  }

  private ask(request: Record<string, unknown>): Promise<ReflectionResponse> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.stream.write({ host: this.address, ...request });
    });
  }

  /** The fully qualified names of the services the server reflects. */
  async listServices(): Promise<string[]> {
    const response = await this.ask({ listServices: '*' });
    if (response.errorResponse) throw new Error(`list_services: ${response.errorResponse.errorMessage}`);
    return response.listServicesResponse!.service.map((s) => s.name);
  }

  /** The file descriptors (the one defining the symbol and its dependencies), decoded; or the error response. */
  async fileContainingSymbol(symbol: string): Promise<{ files: DecodedFileDescriptor[]; raw: Buffer[] } | { error: { errorCode: number; errorMessage: string } }> {
    const response = await this.ask({ fileContainingSymbol: symbol });
    if (response.errorResponse) return { error: response.errorResponse };
    const raw = response.fileDescriptorResponse!.fileDescriptorProto;
    return { raw, files: raw.map((bytes) => descriptor.FileDescriptorProto.decode(bytes) as DecodedFileDescriptor) };
  }

  /**
   * Calls `service/method` (unary) with messages encoded and decoded from the reflected descriptors only:
   * `request` with the .proto field names, the answer as a plain object with the .proto field names.
   */
  async call(service: string, method: string, request: Record<string, unknown>, metadata: Record<string, string> = {}): Promise<Record<string, unknown>> {
    const found = await this.fileContainingSymbol(service);
    if ('error' in found) throw new Error(`file_containing_symbol ${service}: ${found.error.errorMessage}`);
    const root = (protobuf.Root as unknown as { fromDescriptor(set: unknown): protobuf.Root }).fromDescriptor({ file: found.raw.map((b) => descriptor.FileDescriptorProto.decode(b)) });
    const rpc = root.lookupService(service).methods[method];
    if (rpc === undefined) throw new Error(`${service} has no method ${method}`);
    const input = root.lookupType(rpc.requestType);
    const output = root.lookupType(rpc.responseType);
    const md = new Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/${service}/${method}`,
        (message: Record<string, unknown>) => Buffer.from(input.encode(input.fromObject(message)).finish()),
        (bytes: Buffer) => output.toObject(output.decode(bytes), { longs: String, enums: String, defaults: true }),
        request,
        md,
        (error: ServiceError | null, response?: Record<string, unknown>) => (error ? reject(error) : resolve(response!)),
      );
    });
  }

  close(): void {
    this.stream.end();
    this.client.close();
  }
}
