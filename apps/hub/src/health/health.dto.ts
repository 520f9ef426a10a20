import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { SelfCheckViewDto } from '../audit/self-check.dto.js';
import type { Readiness } from './get-readiness.query.js';

export class LivenessResponse {
  @ApiProperty({ enum: ['live'] })
  status!: 'live';
}

export class ReadinessResponse {
  @ApiProperty({ enum: ['ready'] })
  status!: 'ready';

  @ApiProperty({ description: 'Number of events in the ledger.', example: 42 })
  head!: number;

  @ApiProperty({ description: 'Serials allocated and not yet ended.', example: 0 })
  openSerials!: number;

  @ApiProperty({ description: 'Serials voided by start-up recovery in this run.', example: 0 })
  voidedAtStartup!: number;

  @ApiProperty({
    description: 'Agency code translation: mode "redis" (Redis answers), "degraded" (Redis unreachable or stalled, or not open yet; the store answers, slower) or "store" (no Redis configured); breaker: the circuit breaker in front of Redis, "closed", "open" or "half-open" (absent without Redis).',
    example: { mode: 'redis', breaker: 'closed', since: '2026-04-01T00:00:00.000Z' },
  })
  codeMapper!: { mode: string; breaker?: string; since?: string; reason?: string };

  @ApiProperty({
    description:
      'The rate limits (docs/rate-limits.md): mode "redis" (budgets kept in Redis, shared by every hub on it), "degraded" (Redis configured but not answering or not connected yet: this hub\'s own budgets decide, the fallback; since and reason), "local" (no Redis: this hub\'s own budgets) or "off"; shared: true only in mode redis; fallbacks: times since start that Redis stopped answering and decisions turned local.',
    example: { mode: 'redis', shared: true, fallbacks: 0 },
  })
  rateLimits!: { mode: string; shared: boolean; fallbacks: number; since?: string; reason?: string };

  @ApiProperty({
    type: SelfCheckViewDto,
    description: "The hub's check of its own log: passed, off, or running (a scrub or a requested run). A finding makes readiness 503 NOT_READY with this object (status failed, the finding).",
    example: { status: 'passed', verifiedThrough: 42, run: 'start', runId: '0194f7a2-…', checked: 42, total: 42 },
  })
  selfCheck!: SelfCheckViewDto;

  @ApiProperty({ enum: ['leader', 'standby'], description: 'leader: takes commands (the embedded SQLite hub always leads); standby (hubs on KurrentDB): serves reads and refuses commands with 503 NOT_LEADER.', example: 'leader' })
  role: 'leader' | 'standby' = 'leader';

  @ApiPropertyOptional({ description: 'On KurrentDB: the leader as this hub knows it.', example: { instanceId: 'hub-a', url: 'http://10.0.0.5:8080' } })
  leader?: { instanceId: string; url?: string };
}

export function toReadinessResponse(r: Readiness): ReadinessResponse {
  return { status: r.status, head: r.head, openSerials: r.openSerials, voidedAtStartup: r.voidedAtStartup, codeMapper: r.codeMapper, rateLimits: r.rateLimits, selfCheck: r.selfCheck, role: r.role, ...(r.leader === undefined ? {} : { leader: r.leader }) };
}
