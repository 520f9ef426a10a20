import { Injectable, SetMetadata, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { catchError, from, switchMap, throwError, type Observable } from 'rxjs';
import { HubProblem } from '../http/hub-problem.js';
import { Authenticator } from '../linkage/authenticator.js';
import { Refusals } from './refusals.service.js';

const COMMAND = 'linkage-ledger:refused-command';

/** Names the command a route carries out: its refusals are recorded under this name (I6). */
export const RecordsRefusals = (command: string): MethodDecorator => SetMetadata(COMMAND, command);

/**
 * Around every command route: identifies the caller first (a request without a valid credential is refused
 * before its body is even validated, and counted per source), then records whatever refusal the route
 * answers (validation included) as an event of that caller.
 */
@Injectable()
export class RefusalInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: Authenticator,
    private readonly refusals: Refusals,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const command = this.reflector.get<string | undefined>(COMMAND, context.getHandler());
    if (command === undefined || context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const record = (caller: Awaited<ReturnType<Authenticator['identify']>>, error: unknown) =>
      from(this.refusals.record({ caller, command, error, source: request.ip, body: request.body })).pipe(switchMap(() => throwError(() => error)));
    return from(this.auth.identify(request)).pipe(
      switchMap((caller) => {
        const refusal = unidentified(caller.kind);
        if (refusal !== undefined) return record(caller, refusal);
        return next.handle().pipe(catchError((error: unknown) => record(caller, error)));
      }),
    );
  }
}

/** The refusal of a request that proves no one (or undefined when it does). */
export function unidentified(kind: string): HubProblem | undefined {
  switch (kind) {
    case 'anonymous':
      return new HubProblem('UNAUTHENTICATED', 'send the credential as "authorization: Bearer <token>"', { wwwAuthenticate: 'Bearer' });
    case 'malformed':
      return new HubProblem('UNAUTHENTICATED', 'send the credential as "authorization: Bearer <token>"', { wwwAuthenticate: 'Bearer' });
    case 'unknown':
      return new HubProblem('UNAUTHENTICATED', 'the bearer token is not a credential this hub knows');
    default:
      return undefined;
  }
}
