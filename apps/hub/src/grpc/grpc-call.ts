import type { Credentialed } from '../linkage/authenticator.js';
import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Metadata, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { RequestValidationError, type FieldError } from '../http/hub-problem.js';
import { VALIDATION_OPTIONS, validationFailure } from '../http/validation.pipe.js';
import { CORRELATION_METADATA, REQUEST_ID_METADATA, toGrpcProblem } from './grpc-problem.js';
import type { IdentifiedCaller } from '../linkage/authenticator.js';
import { unidentified } from '../refusals/refusal.guard.js';
import type { RefusedRequest } from '../refusals/refusals.service.js';

export const IDEMPOTENCY_METADATA = 'idempotency-key';
export const AUTHORIZATION_METADATA = 'authorization';
/** Initial metadata of an answer rebuilt from an earlier request with the same idempotency key. */
export const REPLAYED_METADATA = 'idempotent-replayed';

// The same rules as the HTTP headers X-Correlation-Id and Idempotency-Key, so a key works on both edges.
const CORRELATION_ID = /^[\x21-\x7e]{1,200}$/;
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,200}$/;
const BEARER = /^Bearer ([\x21-\x7e]{1,1000})$/;

/** What an RPC knows about its call besides the request message. */
export interface GrpcCall {
  /** Full method path, e.g. `/linkage_ledger.v1.Numbering/IssueIndividualNumber`. */
  readonly method: string;
  /** The hub's id of the call: in the events it appends and in its logs. */
  readonly correlationId: string;
  /** The caller's x-correlation-id, echoed in the answer's metadata only. */
  readonly callerCorrelationId?: string;
  /** The caller's `idempotency-key`, not yet scoped by actor. */
  readonly idempotencyKey?: string;
  /** The token of `authorization: Bearer <token>`, for the services that authenticate their callers. */
  readonly bearerToken?: string;
  /** The caller's network address (grpc-js peer), for refusals of callers the hub cannot identify. */
  readonly peer: string;
  /** Commands set it when their outcome was replayed for a retry. */
  replayed: boolean;
}

/** What records refusals at the gRPC edge: the authenticator's identification and the refusal recorder. */
export interface RefusalGuard {
  identify(request: Credentialed): Promise<IdentifiedCaller>;
  record(refused: RefusedRequest): Promise<void>;
  /** The 429 refusal of a source that sent too many requests without a credential (Refusals.throttle). */
  throttle(source: string): Error | undefined;
  /**
   * Spends one request of the caller's rate budget (Refusals.limit): the RATE_LIMITED refusal once it is
   * spent (answered RESOURCE_EXHAUSTED with retry-after metadata), else undefined. Absent: no rate limits.
   */
  limit?(caller: IdentifiedCaller, source: string, command: string): Promise<Error | undefined>;
}

/** Trailing metadata of a refusal that says when to retry (RATE_LIMITED, TOO_MANY_UNAUTHENTICATED_REQUESTS): seconds, as HTTP's Retry-After. */
export const RETRY_AFTER_METADATA = 'retry-after';
/** The same in milliseconds, under the name gRPC's retry policy reads (gRFC A6 server pushback). */
export const RETRY_PUSHBACK_METADATA = 'grpc-retry-pushback-ms';

/**
 * A command RPC whose refusals are events (I6), as the HTTP edge's RefusalGuard and problem filter do: the caller is
 * identified first (one without a valid credential is refused before anything else and counted per
 * source), and any refusal the command answers is recorded as that caller's.
 */
export function recorded<Req, Res>(command: string, guard: RefusalGuard, rpc: (request: Req, call: GrpcCall) => Promise<Res>): (request: Req, call: GrpcCall) => Promise<Res> {
  return async (request, call) => {
    const caller = await guard.identify(credentialed(call));
    try {
      const refusal = unidentified(caller.kind);
      // A source without a credential: its unidentified allowance first, then its rate budget (docs/rate-limits.md).
      if (refusal !== undefined) throw guard.throttle(peerAddress(call.peer)) ?? (await guard.limit?.(caller, peerAddress(call.peer), command)) ?? refusal;
      const limited = await guard.limit?.(caller, peerAddress(call.peer), command);
      if (limited !== undefined) throw limited;
      return await rpc(request, call);
    } catch (error) {
      await guard.record({ caller, command, error, source: peerAddress(call.peer), body: request, correlationId: call.correlationId });
      throw error;
    }
  };
}

/**
 * A read RPC under its caller's rate limit (docs/rate-limits.md), as the HTTP guard limits reads: the
 * caller is identified (no credential: its source), one request of its budget is spent, and past it the
 * call is refused RESOURCE_EXHAUSTED RATE_LIMITED (counted in the interval's record, never an event of its
 * own). Reads are not commands: nothing else is recorded. `name` is what the record counts it as.
 */
export function limited<Req, Res>(name: string, guard: Pick<RefusalGuard, 'identify' | 'limit'>, rpc: (request: Req, call: GrpcCall) => Promise<Res>): (request: Req, call: GrpcCall) => Promise<Res> {
  return async (request, call) => {
    if (guard.limit !== undefined) {
      const caller = await guard.identify(credentialed(call));
      const refusal = await guard.limit(caller, peerAddress(call.peer), name);
      if (refusal !== undefined) throw refusal;
    }
    return rpc(request, call);
  };
}

/** The address of a grpc-js peer ("ipv4:198.51.100.7:52114", "ipv6:[::1]:52114"), without its port: one source per host, as over HTTP. */
export function peerAddress(peer: string): string {
  const m = /^(?:ipv4:|ipv6:)?(?:\[([^\]]+)\]|([^:]+)):\d+$/.exec(peer);
  return m === null ? peer : (m[1] ?? m[2])!;
}

/** The call's bearer token in the shape the Authenticator reads (an HTTP request's headers). */
export function credentialed(call: GrpcCall): Credentialed {
  return { headers: { authorization: call.bearerToken === undefined ? undefined : `Bearer ${call.bearerToken}` } };
}

function single(metadata: Metadata, key: string): { value?: string; repeated: boolean } {
  const values = metadata.get(key);
  if (values.length === 0) return { repeated: false };
  const first = values[0];
  return { value: typeof first === 'string' ? first : undefined, repeated: values.length > 1 || typeof first !== 'string' };
}

/** Reads the call's metadata; a malformed value is a VALIDATION_FAILED problem naming the metadata key. */
function readCall(method: string, metadata: Metadata, peer: string): { call: GrpcCall; problems: FieldError[] } {
  const problems: FieldError[] = [];
  const correlation = single(metadata, CORRELATION_METADATA);
  const validCorrelation = !correlation.repeated && correlation.value !== undefined && CORRELATION_ID.test(correlation.value);
  if (correlation.repeated || (correlation.value !== undefined && !validCorrelation)) {
    problems.push({ field: CORRELATION_METADATA, message: 'must be 1-200 visible ASCII characters (no spaces), sent once' });
  }
  const key = single(metadata, IDEMPOTENCY_METADATA);
  const validKey = !key.repeated && key.value !== undefined && IDEMPOTENCY_KEY.test(key.value);
  if (key.repeated || (key.value !== undefined && !validKey)) {
    problems.push({ field: IDEMPOTENCY_METADATA, message: 'must be 1-200 printable ASCII characters, sent once' });
  }
  const authorization = single(metadata, AUTHORIZATION_METADATA);
  const bearer = authorization.repeated || authorization.value === undefined ? undefined : BEARER.exec(authorization.value)?.[1];
  if (authorization.repeated || (authorization.value !== undefined && bearer === undefined)) {
    problems.push({ field: AUTHORIZATION_METADATA, message: 'must be "Bearer <token>", sent once' });
  }
  const call: GrpcCall = {
    method,
    // The hub's own id goes into events and logs; the caller's is only echoed (it never reaches the log, I10).
    correlationId: randomUUID(),
    ...(validCorrelation && correlation.value !== undefined ? { callerCorrelationId: correlation.value } : {}),
    ...(validKey ? { idempotencyKey: key.value! } : {}),
    ...(bearer !== undefined ? { bearerToken: bearer } : {}),
    peer,
    replayed: false,
  };
  return { call, problems };
}

/**
 * A unary RPC of the hub: reads the metadata, runs `rpc`, and answers either its result (with the
 * correlation id, and `idempotent-replayed` when so, in the initial metadata) or the mapped error. An
 * unexpected error is logged with the correlation id and answered as INTERNAL without its details.
 */
export function unary<Req, Res>(rpc: (request: Req, call: GrpcCall) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (serverCall: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const method = serverCall.getPath();
    const { call, problems } = readCall(method, serverCall.metadata, serverCall.getPeer());
    const answer = (): Promise<Res> => (problems.length > 0 ? Promise.reject(new RequestValidationError(problems)) : rpc(serverCall.request, call));
    answer().then(
      (response) => {
        const metadata = new Metadata();
        metadata.set(CORRELATION_METADATA, call.callerCorrelationId ?? call.correlationId);
        metadata.set(REQUEST_ID_METADATA, call.correlationId);
        if (call.replayed) metadata.set(REPLAYED_METADATA, 'true');
        serverCall.sendMetadata(metadata);
        callback(null, response);
      },
      (error: unknown) => {
        const mapped = toGrpcProblem(error, call);
        const retryAfter = mapped.problem['retryAfter'];
        if (typeof retryAfter === 'number') {
          const retryAfterMs = mapped.problem['retryAfterMs'];
          mapped.error.metadata.set(RETRY_AFTER_METADATA, String(retryAfter));
          mapped.error.metadata.set(RETRY_PUSHBACK_METADATA, String(typeof retryAfterMs === 'number' ? retryAfterMs : retryAfter * 1000));
        }
        if (mapped.unexpected) {
          const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
          logger.error(`[${call.correlationId}] ${method}: ${text}`);
        }
        callback(mapped.error);
      },
    );
  };
}

const logger = new Logger('Grpc');

/** Drops fields the caller did not send, so that DTO defaults apply as they do for HTTP query strings. */
function present(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** `residentRecordCode` → `resident_record_code`: errors name the field as the .proto file spells it. */
function protoFieldName(path: string, renamed: Readonly<Record<string, string>>): string {
  return renamed[path] ?? path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Validates a request with the HTTP edge's DTO class and rules (class-validator, whitelist, unknown
 * fields refused): one VALIDATION_FAILED listing every wrong field (CHECK_DIGIT_MISMATCH when only check
 * digits are wrong, as over HTTP), or the DTO instance. `renamed` maps a
 * DTO property to its .proto field where the two names differ.
 */
export function validated<T extends object>(dto: new () => T, fields: Readonly<Record<string, unknown>>, renamed: Readonly<Record<string, string>> = {}): T {
  const instance = plainToInstance(dto, present(fields));
  const errors = validateSync(instance, VALIDATION_OPTIONS);
  if (errors.length > 0) throw validationFailure(errors, (field) => protoFieldName(field, renamed));
  return instance;
}
