import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';
import type { EventsPage } from './get-events.query.js';

export const MAX_EVENTS_PER_PAGE = 1000;
export const DEFAULT_EVENTS_PER_PAGE = 100;

/** Query strings are text: only plain decimal digits become numbers, anything else fails IsInt. */
const toInteger = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value);

export class EventsQuery {
  @ApiPropertyOptional({ description: 'First position to return (0-based, inclusive).', minimum: 0, default: 0 })
  @Transform(toInteger)
  @IsInt({ message: 'must be a non-negative integer' })
  @Min(0, { message: 'must be a non-negative integer' })
  from: number = 0;

  @ApiPropertyOptional({ description: 'Most events to return.', minimum: 1, maximum: MAX_EVENTS_PER_PAGE, default: DEFAULT_EVENTS_PER_PAGE })
  @Transform(toInteger)
  @IsInt({ message: `must be an integer from 1 to ${MAX_EVENTS_PER_PAGE}` })
  @Min(1, { message: `must be an integer from 1 to ${MAX_EVENTS_PER_PAGE}` })
  @Max(MAX_EVENTS_PER_PAGE, { message: `must be an integer from 1 to ${MAX_EVENTS_PER_PAGE}` })
  limit: number = DEFAULT_EVENTS_PER_PAGE;
}

export class RecordedEventDto {
  @ApiProperty({ description: 'UUIDv7.' }) eventId!: string;
  @ApiProperty({ example: 'IndividualNumberIssued' }) type!: string;
  @ApiProperty({ example: 1 }) schemaVersion!: number;
  @ApiProperty({ example: 'corporate-number-3430001012345' }) streamId!: string;
  @ApiProperty({ example: 0 }) streamRevision!: number;
  @ApiProperty({ description: '0-based global position; the Merkle leaf index.', example: 0 }) position!: number;
  @ApiProperty({ description: '処理通番.', example: '20260401010000000001' }) serial!: string;
  @ApiPropertyOptional({ enum: ['completed', 'denied', 'failed', 'voided'] }) terminal?: string;
  @ApiPropertyOptional({ type: [String], description: 'Uniqueness claims (keyed digests, never plaintext).' }) claims?: string[];
  @ApiProperty({ format: 'date-time' }) recordedAt!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'Event data (schemas/events). Numbering events hold digests and sealed (encrypted) identifiers, never a plaintext number.',
  })
  data!: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'actor, correlationId, idempotency stamp.' })
  metadata!: Record<string, unknown>;
}

export class EventsPageResponse {
  @ApiProperty({ type: [RecordedEventDto], description: 'Envelopes as stored; their RFC 8785 form is what the Merkle leaves hash.' })
  events!: RecordedEventDto[];

  @ApiProperty({ description: 'Where the next page starts (pass as `from`).', example: 100 })
  nextPosition!: number;

  @ApiProperty({ description: 'Number of events in the ledger.', example: 1234 })
  head!: number;
}

export function toEventsPageResponse(page: EventsPage): EventsPageResponse {
  return { events: page.events as unknown as RecordedEventDto[], nextPosition: page.nextPosition, head: page.head };
}
