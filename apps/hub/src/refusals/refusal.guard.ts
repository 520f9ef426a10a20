import { Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { HubProblem } from '../http/hub-problem.js';
import { Authenticator, type IdentifiedCaller } from '../linkage/authenticator.js';
import { RateLimits } from '../rate-limits/rate-limits.service.js';
import { Refusals } from './refusals.service.js';

const COMMAND = 'linkage-ledger:refused-command';

/** Names the command a route carries out: its refusals are recorded under this name (I6). */
export const RecordsRefusals = (command: string): MethodDecorator => SetMetadata(COMMAND, command);

const OPEN_COMMAND = 'linkage-ledger:refused-open-command';

/**
 * A command route that takes no credential (a citizen's passkey sign-in): its caller is unidentified
 * whatever it sends, so its refusals are counted per source like every other unidentified one, and a
 * source past its allowance for the interval is answered 429 before the body is looked at.
 */
export const RecordsUnidentifiedRefusals = (command: string): MethodDecorator => SetMetadata(OPEN_COMMAND, command);

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on command routes before anything else runs: what a refusal of this request is recorded as. */
    refusalContext?: { readonly command: string; readonly caller: IdentifiedCaller };
  }
}

/**
 * Before every command route (a guard runs before the body is validated): identifies the caller and
 * refuses a request that proves no one with 401 at once (429 once its source has sent too many such
 * requests in the interval). The one exception filter then records whatever
 * refusal the route answers, validation included, as an event of that caller (`recordRefusal`).
 * Before every route but health (commands and reads alike): spends one request of the caller's rate
 * budget (per agency, per citizen, per source for callers no credential identifies) and answers 429
 * RATE_LIMITED with Retry-After once it is spent (docs/rate-limits.md).
 */
@Injectable()
export class RefusalGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: Authenticator,
    private readonly refusals: Refusals,
    private readonly rateLimits: RateLimits,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const open = this.reflector.get<string | undefined>(OPEN_COMMAND, context.getHandler());
    if (open !== undefined) {
      const request = context.switchToHttp().getRequest<FastifyRequest>();
      const caller: IdentifiedCaller = { kind: 'anonymous' };
      request.refusalContext = { command: open, caller };
      const throttled = this.refusals.throttle(request.ip);
      if (throttled !== undefined) throw throttled;
      await this.#limit(caller, request.ip, open);
      return true;
    }
    const command = this.reflector.get<string | undefined>(COMMAND, context.getHandler());
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (command === undefined) {
      // A read (or any route that is not a command): limited too, health excepted (probes must always answer).
      if (!this.rateLimits.enabled || EXEMPT.test(request.routeOptions?.url ?? request.url)) return true;
      const caller = await this.auth.identify(request);
      await this.#limit(caller, request.ip, readName(context));
      return true;
    }
    const caller = await this.auth.identify(request);
    request.refusalContext = { command, caller };
    const refusal = unidentified(caller.kind);
    // A source without a credential: its unidentified allowance first, then its rate budget.
    if (refusal !== undefined) throw this.refusals.throttle(request.ip) ?? (this.rateLimits.enabled ? await this.refusals.limit(caller, request.ip, command) : undefined) ?? refusal;
    await this.#limit(caller, request.ip, command);
    return true;
  }

  async #limit(caller: IdentifiedCaller, source: string, name: string): Promise<void> {
    if (!this.rateLimits.enabled) return;
    const limited = await this.refusals.limit(caller, source, name);
    if (limited !== undefined) throw limited;
  }
}

/** Routes never rate-limited: liveness and readiness probes (and /metrics, served outside Nest). */
const EXEMPT = /^\/(?:health|metrics)(?:\/|$)/;

/** What a read is counted as in the record of rate-limited requests: `<Controller>.<handler>`. */
function readName(context: ExecutionContext): string {
  return `${context.getClass().name}.${context.getHandler().name}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
}

/** Records the refusal of a command request (the problem filter calls it before answering); undefined for other requests. */
export function recordRefusal(refusals: Refusals, request: FastifyRequest | undefined, error: unknown): Promise<void> | undefined {
  const context = request?.refusalContext;
  if (context === undefined) return undefined;
  return refusals.record({ caller: context.caller, command: context.command, error, source: request!.ip, body: request!.body, ...(request!.correlationId === undefined ? {} : { correlationId: request!.correlationId }) });
}

/** The refusal of a request that proves no one (or undefined when it does). */
export function unidentified(kind: string): HubProblem | undefined {
  switch (kind) {
    case 'anonymous':
    case 'malformed':
      return new HubProblem('UNAUTHENTICATED', 'send the credential as "authorization: Bearer <token>"', { wwwAuthenticate: 'Bearer' });
    case 'unknown':
      return new HubProblem('UNAUTHENTICATED', 'the bearer token is not a credential this hub knows');
    default:
      return undefined;
  }
}
