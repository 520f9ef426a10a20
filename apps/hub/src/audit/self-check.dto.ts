import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { StoredLogFinding } from '#ledger';
import type { SelfCheckRun, SelfCheckView } from './self-check.service.js';

export class SelfCheckFindingDto {
  @ApiProperty({ enum: ['leaf', 'tile', 'checkpoint', 'tree', 'mark'], description: 'The comparison that found it.' })
  check!: StoredLogFinding['check'];

  @ApiProperty({ example: 'LEAF_MISMATCH' })
  code!: string;

  @ApiProperty({ type: Number, nullable: true, description: 'The first bad position (null when it concerns no single event).', example: 37 })
  position!: number | null;

  @ApiProperty({ type: String, nullable: true, description: 'The serial stored at that position.', example: '20261122010000000013' })
  serial!: string | null;

  @ApiProperty({ nullable: true, description: 'What the tree or the signature holds (a hash in hex, or a size).', example: '9f1c…' })
  expected!: string | number | null;

  @ApiProperty({ nullable: true, description: 'What the stored bytes make.', example: '03ab…' })
  calculated!: string | number | null;

  @ApiProperty()
  message!: string;

  @ApiPropertyOptional({ type: [Number], description: 'For a tree node: the leaves [from, to) under it.', example: [0, 256] })
  leaves?: readonly [number, number];
}

export class SelfCheckViewDto {
  @ApiProperty({ enum: ['off', 'unverified', 'running', 'passed', 'failed'] })
  status!: SelfCheckView['status'];

  @ApiProperty({ description: 'Leaves [0, verifiedThrough) were re-hashed and found equal (the verified mark).', example: 1000 })
  verifiedThrough!: number;

  @ApiPropertyOptional({ enum: ['start', 'scrub', 'requested'], description: 'The run in progress, or else the last one.' })
  run?: SelfCheckView['run'];

  @ApiPropertyOptional()
  runId?: string;

  @ApiPropertyOptional({ description: 'Leaves re-hashed by that run so far.' })
  checked?: number;

  @ApiPropertyOptional({ description: 'Leaves that run re-hashes.' })
  total?: number;

  @ApiPropertyOptional({ type: SelfCheckFindingDto, description: 'The first bad position found (status failed).' })
  finding?: SelfCheckFindingDto;

  @ApiPropertyOptional()
  findingCount?: number;
}

export class SelfCheckRunResponse {
  @ApiProperty()
  id!: string;

  @ApiProperty({ enum: ['start', 'scrub', 'requested'] })
  kind!: SelfCheckRun['kind'];

  @ApiProperty({ enum: ['running', 'passed', 'failed', 'error', 'stopped'] })
  status!: SelfCheckRun['status'];

  @ApiProperty({ description: 'First leaf re-hashed.' })
  from!: number;

  @ApiProperty({ description: 'End of the leaves re-hashed (exclusive).' })
  to!: number;

  @ApiProperty()
  checked!: number;

  @ApiProperty()
  total!: number;

  @ApiProperty({ description: 'Signed checkpoints whose signature and root were checked.' })
  checkpoints!: number;

  @ApiProperty()
  startedAt!: string;

  @ApiPropertyOptional()
  finishedAt?: string;

  @ApiPropertyOptional()
  seconds?: number;

  @ApiProperty({ type: [SelfCheckFindingDto], description: 'The first findings, in position order.' })
  findings!: SelfCheckFindingDto[];

  @ApiProperty()
  findingCount!: number;

  @ApiPropertyOptional({ description: 'Why the run could not finish (error, stopped).' })
  error?: string;

  @ApiPropertyOptional({ enum: ['checkpoints-through-port'], description: 'Only on KurrentDB: the reduced check (the stored texts read through the port, re-hashed against the signed checkpoints).' })
  scope?: 'checkpoints-through-port';

  @ApiPropertyOptional({ description: 'Only on KurrentDB: what the reduced check covers and what it does not.' })
  note?: string;

  @ApiProperty({ example: '/v1/audit/self-checks/0194f7a2-…' })
  statusUrl!: string;
}

export class SelfCheckListResponse {
  @ApiProperty({ type: SelfCheckViewDto })
  selfCheck!: SelfCheckViewDto;

  @ApiProperty({ type: [SelfCheckRunResponse], description: 'The last 20 runs, newest first.' })
  runs!: SelfCheckRunResponse[];
}

export function selfCheckRunResponse(run: SelfCheckRun): SelfCheckRunResponse {
  return { ...run, findings: [...run.findings], statusUrl: `/v1/audit/self-checks/${run.id}` };
}
