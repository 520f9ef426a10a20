import { canonicalEnvelope, type RecordedEvent } from '#ledger';
import { RelayError } from './errors.js';

/** The topic every committed event is relayed to unless the relay is told otherwise. */
export const DEFAULT_RELAY_TOPIC = 'linkage-ledger.events';

/** Header names of a relayed message; values are UTF-8 text. */
export const RELAY_HEADERS = { eventId: 'event-id', position: 'position', serial: 'serial', type: 'type' } as const;

/** A Kafka message as the relay produces it. */
export interface RelayMessage {
  /** The stream id: every event of a stream goes to one partition, in log order. */
  readonly key: string;
  /** The RFC 8785 text of the whole envelope: the bytes the ledger stores and the Merkle leaf hashes. */
  readonly value: string;
  readonly headers: { readonly [name: string]: string };
  /** The event's `recordedAt` in epoch milliseconds, as text (Kafka's CreateTime). */
  readonly timestamp: string;
}

export function relayMessage(event: RecordedEvent): RelayMessage {
  return {
    key: event.streamId,
    value: canonicalEnvelope(event),
    headers: {
      [RELAY_HEADERS.eventId]: event.eventId,
      [RELAY_HEADERS.position]: String(event.position),
      [RELAY_HEADERS.serial]: event.serial,
      [RELAY_HEADERS.type]: event.type,
    },
    timestamp: String(Date.parse(event.recordedAt)),
  };
}

/** One consumed message: the envelope, its text as relayed, and where Kafka kept it. */
export interface RelayedEvent {
  readonly event: RecordedEvent;
  readonly text: string;
  readonly partition: number;
  readonly offset: string;
}

type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** Reads a consumed message back into its envelope; refuses one whose key or headers disagree with it. */
export function parseRelayMessage(
  message: { readonly key: Buffer | null; readonly value: Buffer | null; readonly headers?: { readonly [name: string]: HeaderValue }; readonly offset: string },
  partition: number,
): RelayedEvent {
  if (message.value === null) throw new RelayError('INVALID_MESSAGE', `message at ${partition}/${message.offset} has no value`);
  const text = message.value.toString('utf8');
  let event: RecordedEvent;
  try {
    event = JSON.parse(text) as RecordedEvent;
  } catch (cause) {
    throw new RelayError('INVALID_MESSAGE', `message at ${partition}/${message.offset} is not JSON`, { cause });
  }
  if (typeof event !== 'object' || event === null || typeof event.eventId !== 'string' || !Number.isSafeInteger(event.position)) {
    throw new RelayError('INVALID_MESSAGE', `message at ${partition}/${message.offset} is not an event envelope`);
  }
  const header = (name: string): string | undefined => {
    const value = message.headers?.[name];
    const one = Array.isArray(value) ? value[0] : value;
    return one === undefined ? undefined : one.toString();
  };
  const expected: [string, string | undefined, string][] = [
    ['key', message.key?.toString('utf8'), event.streamId],
    [RELAY_HEADERS.eventId, header(RELAY_HEADERS.eventId), event.eventId],
    [RELAY_HEADERS.position, header(RELAY_HEADERS.position), String(event.position)],
  ];
  for (const [name, got, want] of expected) {
    if (got !== want) throw new RelayError('INVALID_MESSAGE', `message at ${partition}/${message.offset}: ${name} is ${got}, the envelope says ${want}`);
  }
  return { event, text, partition, offset: message.offset };
}
