import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { QueryBus } from '@nestjs/cqrs';
import { GetReadinessQuery } from '../health/get-readiness.query.js';
import { HubProblem } from '../http/hub-problem.js';
import { unary } from './grpc-call.js';

interface CheckMessage {
  service?: string;
}

/**
 * grpc.health.v1.Health: "" (the whole server) and every service the hub serves are SERVING exactly when
 * GET /health/ready would answer 200 (ledger open, start-up recovery done, the self-check found nothing);
 * NOT_SERVING otherwise.
 */
export function healthService(queryBus: QueryBus, services: readonly string[]): UntypedServiceImplementation {
  return {
    Check: unary(async (m: CheckMessage) => {
      const service = m.service ?? '';
      if (service !== '' && !services.includes(service)) {
        throw new HubProblem('NOT_FOUND', `this server does not serve ${JSON.stringify(service)}; it serves ${services.join(', ')}`);
      }
      try {
        await queryBus.execute(new GetReadinessQuery());
        return { status: 'SERVING' };
      } catch (error) {
        if (error instanceof HubProblem && error.code === 'NOT_READY') return { status: 'NOT_SERVING' };
        throw error;
      }
    }),
  };
}
