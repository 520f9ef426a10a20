import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';

const toInteger = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value);
const NON_NEGATIVE = { message: 'must be a non-negative integer' };

export const MAX_ENTRIES_PER_PAGE = 10_000;

export class FormatQuery {
  @ApiPropertyOptional({ enum: ['text', 'json'], default: 'text', description: 'text: the signed note as text/plain; json: its fields and the note.' })
  @IsOptional()
  @IsIn(['text', 'json'], { message: 'must be text or json' })
  format: 'text' | 'json' = 'text';
}

export class InclusionQuery {
  @ApiPropertyOptional({ description: 'Leaf index (position) of one event. Give this or serial.' })
  @IsOptional()
  @Transform(toInteger)
  @IsInt(NON_NEGATIVE)
  @Min(0, NON_NEGATIVE)
  position?: number;

  @ApiPropertyOptional({ description: 'Processing serial number: proofs for every event of it.', example: '20261122010000000001' })
  @IsOptional()
  @Matches(/^\d{20}$/, { message: 'must be a 20-digit processing serial number' })
  serial?: string;

  @ApiPropertyOptional({ description: 'Tree size to prove against (default: the latest checkpoint).' })
  @IsOptional()
  @Transform(toInteger)
  @IsInt(NON_NEGATIVE)
  @Min(0, NON_NEGATIVE)
  size?: number;
}

export class ConsistencyQuery {
  @ApiProperty({ description: 'The older tree size.' })
  @Transform(toInteger)
  @IsInt(NON_NEGATIVE)
  @Min(0, NON_NEGATIVE)
  from!: number;

  @ApiProperty({ description: 'The newer tree size.' })
  @Transform(toInteger)
  @IsInt(NON_NEGATIVE)
  @Min(0, NON_NEGATIVE)
  to!: number;
}

export class EntriesQuery {
  @ApiPropertyOptional({ description: 'First position (0-based, inclusive).', default: 0 })
  @Transform(toInteger)
  @IsInt(NON_NEGATIVE)
  @Min(0, NON_NEGATIVE)
  from: number = 0;

  @ApiPropertyOptional({ description: 'Most entries to return.', default: 1000, maximum: MAX_ENTRIES_PER_PAGE })
  @Transform(toInteger)
  @IsInt({ message: `must be an integer from 1 to ${MAX_ENTRIES_PER_PAGE}` })
  @Min(1, { message: `must be an integer from 1 to ${MAX_ENTRIES_PER_PAGE}` })
  @Max(MAX_ENTRIES_PER_PAGE, { message: `must be an integer from 1 to ${MAX_ENTRIES_PER_PAGE}` })
  limit: number = 1000;
}
