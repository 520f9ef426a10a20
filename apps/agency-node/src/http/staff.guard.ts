import { timingSafeEqual, createHash } from 'node:crypto';
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { AgencyConfig } from '../config/agency-config.js';
import { AGENCY_CONFIG } from '../tokens.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AgencyProblem } from './agency-problem.js';

/** Staff endpoints: when a staff token is configured, `authorization: Bearer <token>` must carry it. */
@Injectable()
export class StaffGuard implements CanActivate {
  private readonly expected: Buffer | undefined;

  constructor(@Inject(AGENCY_CONFIG) config: AgencyConfig) {
    this.expected = config.staffToken === undefined ? undefined : digest(config.staffToken);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.expected === undefined) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]+)$/i.exec(header) : null;
    // Compare digests so the comparison time says nothing about the token's length or prefix.
    if (match && timingSafeEqual(digest(match[1]!), this.expected)) return true;
    void context.switchToHttp().getResponse<FastifyReply>().header('www-authenticate', 'Bearer realm="agency-node"');
    throw new AgencyProblem('STAFF_TOKEN_INVALID', 'send the staff token of this intermediate server as "authorization: Bearer <token>"');
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
