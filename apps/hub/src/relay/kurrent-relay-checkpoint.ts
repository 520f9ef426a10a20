import { Logger } from '@nestjs/common';
import { ANY, StreamNotFoundError, binaryEvent } from '@kurrent/kurrentdb-client';
import { randomUUID } from 'node:crypto';
import type { KurrentLogClient } from '#ledger/kurrentdb-event-store';
import type { RelayCheckpointStore } from '#relay';

const SAVED_TYPE = 'RelayCheckpointSaved';
/** Checkpoint events KurrentDB keeps (older ones are scavenged): only the last one is read. */
const EVENTS_KEPT = 100;

/** The KurrentDB stream that holds the relay checkpoint of `topic` for the log in `logStream`. */
export function relayCheckpointStreamOf(logStream: string, topic: string): string {
  return `${logStream}-relay-${topic}`;
}

/**
 * The Kafka relay's checkpoint kept beside the log on KurrentDB, one stream per topic, shared by the hubs
 * of that log: whichever hub leads relays, and a new leader resumes at the position the previous one last
 * saw acknowledged, instead of at a position of its own (which would send again what the old leader sent).
 * Each save is one small event; the last one is the checkpoint.
 */
export class KurrentRelayCheckpoint implements RelayCheckpointStore {
  private readonly logger = new Logger('EventRelay');
  private bounded = false;

  constructor(
    private readonly client: KurrentLogClient,
    readonly stream: string,
    private readonly instanceId: string,
  ) {}

  async load(): Promise<number> {
    try {
      for await (const resolved of this.client.readStream(this.stream, { fromRevision: 'end', maxCount: 1n, direction: 'backwards' })) {
        const data = resolved.event?.data;
        if (!(data instanceof Uint8Array)) continue;
        const position = (JSON.parse(Buffer.from(data).toString('utf8')) as { position?: unknown }).position;
        if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < -1) throw new Error(`the relay checkpoint in ${this.stream} is not a position: ${String(position)}`);
        return position;
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return -1;
      throw error;
    }
    return -1;
  }

  async save(position: number): Promise<void> {
    const data = { position, instanceId: this.instanceId };
    await this.client.appendToStream(this.stream, [binaryEvent({ id: randomUUID(), type: SAVED_TYPE, data: Buffer.from(JSON.stringify(data), 'utf8') })], { streamState: ANY });
    if (!this.bounded) await this.bound();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** KurrentDB keeps only the stream's last events, when the client can set stream metadata (a stand-in may not). */
  private async bound(): Promise<void> {
    this.bounded = true;
    const client = this.client as KurrentLogClient & { setStreamMetadata?: (stream: string, metadata: { maxCount: number }) => Promise<unknown> };
    if (typeof client.setStreamMetadata !== 'function') return;
    try {
      await client.setStreamMetadata(this.stream, { maxCount: EVENTS_KEPT });
    } catch (error) {
      this.logger.warn(`could not bound ${this.stream} to its last ${EVENTS_KEPT} events: ${(error as Error).message}`);
    }
  }
}
