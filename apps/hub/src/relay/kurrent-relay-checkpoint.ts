import { Logger } from '@nestjs/common';
import { NO_STREAM, StreamNotFoundError, WrongExpectedVersionError, binaryEvent, type AppendStreamState } from '@kurrent/kurrentdb-client';
import { randomUUID } from 'node:crypto';
import type { KurrentLogClient } from '#ledger/kurrentdb-event-store';
import type { RelayCheckpointStore } from '#relay';

const SAVED_TYPE = 'RelayCheckpointSaved';
/** How often `load()` reads the stream again when another hub wrote it between the read and the take-over. */
const TAKEOVER_ATTEMPTS = 5;
/** Checkpoint events KurrentDB keeps (older ones are scavenged): only the last one is read. */
const EVENTS_KEPT = 100;

/** The KurrentDB stream that holds the relay checkpoint of `topic` for the log in `logStream`. */
export function relayCheckpointStreamOf(logStream: string, topic: string): string {
  return `${logStream}-relay-${topic}`;
}

/** A save refused because another hub wrote the relay position since this hub took it over: this hub no longer relays. */
export class RelayCheckpointDeposedError extends Error {
  constructor(
    readonly stream: string,
    readonly expectedRevision: bigint | undefined,
    readonly writer: string | undefined,
  ) {
    super(
      `the relay position in ${stream} was written by ${writer === undefined ? 'another hub' : `hub ${writer}`} after this hub took it over` +
        `${expectedRevision === undefined ? '' : ` (expected revision ${expectedRevision})`}: this hub no longer leads the relay and does not overwrite the new leader's position`,
    );
    this.name = 'RelayCheckpointDeposedError';
  }
}

/**
 * The Kafka relay's checkpoint kept beside the log on KurrentDB, one stream per topic, shared by the hubs
 * of that log: whichever hub leads relays, and a new leader resumes at the position the previous one last
 * saw acknowledged, instead of at a position of its own (which would send again what the old leader sent).
 * Each save is one small event; the last one is the checkpoint.
 *
 * Fenced by the stream's expected revision. `load()` (a relay's start, at each term) reads the last
 * position and takes the stream over by appending it again, expecting the revision it read (read again,
 * up to a few times, when another hub wrote in between). Every `save()` then expects the revision of this
 * hub's own last append. A deposed leader that still relays (it has not yet seen that it lost the lease)
 * is refused its next save (RelayCheckpointDeposedError) once the new leader took the stream over, so it
 * can never move the new leader's position, back or forward, nor take the stream back when its relay
 * resumes after the failure (a later load of the same term is refused too); it stays refused until
 * `newTerm()` (EventRelay calls it when this hub leads again).
 */
export class KurrentRelayCheckpoint implements RelayCheckpointStore {
  private readonly logger = new Logger('EventRelay');
  private bounded = false;
  /** The revision of this hub's last append to the stream; undefined before `load()` took it over. */
  private revision: bigint | undefined;
  private deposed = false;

  constructor(
    private readonly client: KurrentLogClient,
    readonly stream: string,
    private readonly instanceId: string,
  ) {}

  /**
   * A new relay term of this hub (it leads again): the next `load()` takes the stream over again. Until
   * then, once deposed, this checkpoint refuses every load and save.
   */
  newTerm(): void {
    this.revision = undefined;
    this.deposed = false;
  }

  /**
   * The last saved position (-1 when none). The first load of a term takes the stream over for this
   * hub's saves; a later one (the relay resuming after a failure) only checks that no other hub wrote since.
   */
  async load(): Promise<number> {
    if (this.deposed) throw new RelayCheckpointDeposedError(this.stream, this.revision, undefined);
    if (this.revision !== undefined) {
      const last = await this.readLast();
      if (last.revision === this.revision) return last.position;
      this.deposed = true;
      throw new RelayCheckpointDeposedError(this.stream, this.revision, last.instanceId);
    }
    for (let attempt = 1; ; attempt++) {
      const last = await this.readLast();
      try {
        await this.append(last.position, last.revision === undefined ? NO_STREAM : last.revision);
        return last.position;
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError) || attempt >= TAKEOVER_ATTEMPTS) throw error;
      }
    }
  }

  async save(position: number): Promise<void> {
    if (this.deposed) throw new RelayCheckpointDeposedError(this.stream, this.revision, undefined);
    if (this.revision === undefined) await this.load();
    try {
      await this.append(position, this.revision!);
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      this.deposed = true;
      const writer = await this.readLast().then(
        (last) => last.instanceId,
        () => undefined,
      );
      throw new RelayCheckpointDeposedError(this.stream, this.revision, writer);
    }
  }

  private async append(position: number, streamState: AppendStreamState): Promise<void> {
    const data = { position, instanceId: this.instanceId };
    const result = (await this.client.appendToStream(this.stream, [binaryEvent({ id: randomUUID(), type: SAVED_TYPE, data: Buffer.from(JSON.stringify(data), 'utf8') })], { streamState })) as { nextExpectedRevision?: unknown } | undefined;
    const next = result?.nextExpectedRevision;
    if (typeof next !== 'bigint') throw new Error(`appending to ${this.stream} gave no next expected revision`);
    this.revision = next;
    if (!this.bounded) await this.bound();
  }

  /** The stream's last event: its position, revision and writer (position -1, no revision when the stream does not exist). */
  private async readLast(): Promise<{ position: number; revision: bigint | undefined; instanceId: string | undefined }> {
    try {
      for await (const resolved of this.client.readStream(this.stream, { fromRevision: 'end', maxCount: 1n, direction: 'backwards' })) {
        const event = resolved.event;
        if (event === undefined) continue;
        const data = event.data;
        if (!(data instanceof Uint8Array)) throw new Error(`the relay checkpoint in ${this.stream} at revision ${event.revision} is not a saved position`);
        const parsed = JSON.parse(Buffer.from(data).toString('utf8')) as { position?: unknown; instanceId?: unknown };
        const position = parsed.position;
        if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < -1) throw new Error(`the relay checkpoint in ${this.stream} is not a position: ${String(position)}`);
        return { position, revision: event.revision, instanceId: typeof parsed.instanceId === 'string' ? parsed.instanceId : undefined };
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return { position: -1, revision: undefined, instanceId: undefined };
      throw error;
    }
    return { position: -1, revision: undefined, instanceId: undefined };
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
