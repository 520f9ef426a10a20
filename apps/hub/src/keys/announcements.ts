import type { EventStore, RecordedEvent } from '#ledger';

/**
 * The events of one type on a key's announcement stream (`$checkpoint-keys`, `$provision-signing-keys`,
 * `$code-keys`, …), oldest first; none when nothing was ever rotated (the stream does not exist yet).
 */
export async function readAnnouncements(store: EventStore, stream: string, type: string): Promise<readonly RecordedEvent[]> {
  const events = await store.readStream(stream).catch((error: unknown) => {
    if ((error as { code?: string }).code === 'STREAM_NOT_FOUND') return [];
    throw error;
  });
  return events.filter((e) => e.type === type);
}
