import { applyDecorators } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

/** Documents the headers every command takes. */
export function ApiCommandHeaders(): MethodDecorator {
  return applyDecorators(
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: '1-200 printable ASCII characters. A retry with the same key and body returns the original outcome (same serial, same number, same status); the same key with another body is refused (409 IDEMPOTENCY_KEY_REUSED).',
    }),
    ApiHeader({ name: 'X-Correlation-Id', required: false, description: '1-200 visible ASCII characters; generated when absent; echoed in the response and stored in event metadata.' }),
  );
}

export const REPLAYED_HEADER = 'idempotent-replayed';

/** Marks an answer rebuilt from the original request with the same Idempotency-Key. */
export function markReplayed(reply: FastifyReply, replayed: boolean): void {
  if (replayed) void reply.header(REPLAYED_HEADER, 'true');
}
