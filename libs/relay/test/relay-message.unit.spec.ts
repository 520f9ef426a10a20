import { describe, expect, it } from 'vitest';
import { canonicalize, type EventId, type RecordedEvent, type SerialNumber } from '#ledger';
import { parseRelayMessage, relayMessage } from '#relay';

const event: RecordedEvent = {
  eventId: '0190f0e2-0000-7000-8000-000000000001' as EventId,
  type: 'QueryAccepted',
  schemaVersion: 1,
  streamId: 'query-1',
  streamRevision: 0,
  position: 42,
  serial: '20261130010000000009' as SerialNumber,
  recordedAt: '2026-11-30T07:38:17.123Z',
  data: { z: 1, a: ['情報', 2.5] },
  metadata: { actor: 'agency:jps', correlationId: 'c-1' },
};

const asConsumed = (m: ReturnType<typeof relayMessage>, offset = '3') => ({
  key: Buffer.from(m.key),
  value: Buffer.from(m.value),
  headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)])),
  offset,
});

describe('relayMessage', () => {
  it('is keyed by stream id, carries the RFC 8785 envelope text and the event id, position, serial and type', () => {
    const m = relayMessage(event);
    expect(m.key).toBe('query-1');
    expect(m.value).toBe(canonicalize(event));
    expect(m.headers).toEqual({ 'event-id': event.eventId, position: '42', serial: event.serial, type: 'QueryAccepted' });
    expect(m.timestamp).toBe(String(Date.parse(event.recordedAt)));
  });

  it('reads back into the same envelope and text', () => {
    const parsed = parseRelayMessage(asConsumed(relayMessage(event)), 2);
    expect(parsed).toEqual({ event, text: canonicalize(event), partition: 2, offset: '3' });
  });

  it('refuses a message whose key or headers disagree with its envelope, or that is no envelope', () => {
    const m = relayMessage(event);
    const bad = [
      { ...asConsumed(m), key: Buffer.from('query-2') },
      { ...asConsumed(m), headers: { ...asConsumed(m).headers, position: Buffer.from('41') } },
      { ...asConsumed(m), headers: { ...asConsumed(m).headers, 'event-id': Buffer.from('x') } },
      { ...asConsumed(m), value: Buffer.from('not json') },
      { ...asConsumed(m), value: Buffer.from('{"a":1}') },
      { ...asConsumed(m), value: null },
    ];
    for (const message of bad) expect(() => parseRelayMessage(message, 0)).toThrow(expect.objectContaining({ code: 'INVALID_MESSAGE' }));
  });
});
