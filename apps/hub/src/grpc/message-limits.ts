import { status as GrpcStatus, type ServiceDefinition, type UntypedHandleCall, type UntypedServiceImplementation, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';

const OVERSIZE = Symbol('a request message over its method limit');

/** What a method's handler receives instead of a message over its limit (never decoded). */
export interface OversizeRequest {
  readonly [OVERSIZE]: { readonly bytes: number; readonly limit: number };
}

/** The size and limit of a request message that was over its method's limit; undefined for a decoded message. */
export function oversizeOf(request: unknown): { readonly bytes: number; readonly limit: number } | undefined {
  return typeof request === 'object' && request !== null && OVERSIZE in request ? (request as OversizeRequest)[OVERSIZE] : undefined;
}

/**
 * Request size limits per method. grpc-js has one receive limit per server (`grpc.max_receive_message_length`);
 * the hub sets it to twice the largest method limit and checks each method's own limit here, before decoding:
 * a message over its method's limit is not decoded, and the handler receives an `OversizeRequest` marker.
 * A handler named in `checkedBy` refuses it itself (StartNoticeBatch: a problem, recorded as a refusal);
 * every other method answers what grpc-js would have answered at the server limit (RESOURCE_EXHAUSTED
 * "Received message larger than max").
 */
export class MethodMessageLimits {
  constructor(
    /** The limit of every method not in `perMethod` (HUB_BODY_LIMIT_BYTES). */
    readonly defaultBytes: number,
    /** Limits by method name within a service (e.g. `StartNoticeBatch`), keyed by the service's full name. */
    readonly perMethod: Readonly<Record<string, Readonly<Record<string, number>>>> = {},
  ) {}

  /**
   * The server's receive limit: twice the largest method limit, so that a message somewhat over its
   * method's limit still reaches the hub and is refused precisely (and recorded, for StartNoticeBatch);
   * a larger one is refused by grpc-js before anything else.
   */
  get serverBytes(): number {
    let max = this.defaultBytes;
    for (const methods of Object.values(this.perMethod)) for (const bytes of Object.values(methods)) max = Math.max(max, bytes);
    return 2 * max;
  }

  limitOf(service: string, method: string): number {
    return this.perMethod[service]?.[method] ?? this.defaultBytes;
  }

  /** The service's definition with each method's request deserializer bounded by the method's limit. */
  definition(service: string, definition: ServiceDefinition): ServiceDefinition {
    const bounded: Record<string, unknown> = {};
    for (const [name, method] of Object.entries(definition)) {
      const limit = this.limitOf(service, name);
      const decode = method.requestDeserialize;
      bounded[name] = {
        ...method,
        requestDeserialize: (bytes: Buffer): unknown => (bytes.length > limit ? ({ [OVERSIZE]: { bytes: bytes.length, limit } } satisfies OversizeRequest) : decode(bytes)),
      };
    }
    return bounded as ServiceDefinition;
  }

  /**
   * The service's implementation with the methods that do not check the marker themselves answering
   * RESOURCE_EXHAUSTED for it, as grpc-js does for a message over the server's limit.
   */
  implementation(implementation: UntypedServiceImplementation, checkedBy: readonly string[] = []): UntypedServiceImplementation {
    const out: UntypedServiceImplementation = {};
    for (const [name, handler] of Object.entries(implementation)) {
      out[name] = checkedBy.includes(name) ? handler : refusingOversize(handler);
    }
    return out;
  }
}

function refusingOversize(handler: UntypedHandleCall): UntypedHandleCall {
  // The hub's RPCs are unary; a server-streaming one (no callback) would end its stream with the status instead.
  const call = handler as (call: ServerUnaryCall<unknown, unknown>, callback?: sendUnaryData<unknown>) => void;
  return ((serverCall: ServerUnaryCall<unknown, unknown>, callback?: sendUnaryData<unknown>) => {
    const over = oversizeOf(serverCall.request);
    if (over === undefined) return call(serverCall, callback);
    const refusal = { code: GrpcStatus.RESOURCE_EXHAUSTED, details: `Received message larger than max (${over.bytes} vs. ${over.limit})` };
    if (typeof callback === 'function') callback(refusal);
    else serverCall.emit('error', refusal);
  }) as UntypedHandleCall;
}
