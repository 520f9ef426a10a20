import kafkajs from 'kafkajs';
import { follow, type EventStore, type LogProjection, type RecordedEvent } from '#ledger';
import { RelayError } from './errors.js';
import type { RelayCheckpointStore } from './relay-checkpoint.js';
import { DEFAULT_RELAY_TOPIC, relayMessage } from './relay-message.js';

// kafkajs is CommonJS: take its named exports from the default export.
const { Kafka, Partitioners, logLevel: LogLevel } = kafkajs;
type Producer = kafkajs.Producer;

export interface KafkaRelayOptions {
  readonly store: Pick<EventStore, 'readAll' | 'subscribe'>;
  /** Bootstrap servers, `host:port`. */
  readonly brokers: readonly string[];
  readonly checkpoint: RelayCheckpointStore;
  /** Default `linkage-ledger.events`. */
  readonly topic?: string;
  readonly clientId?: string;
  /** Most events per produce request (each request is acknowledged, then checkpointed). Default 500. */
  readonly maxBatch?: number;
  /** Backoff between failed sends: doubles from `initialMs` up to `maxMs`. Defaults 100 ms and 5 s. */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Producer request timeout (ms) before a send counts as failed and is retried. Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** Each failure (a send, a checkpoint write, the log read); the relay retries, it never skips. */
  readonly onError?: (error: unknown) => void;
  /** After each acknowledged and checkpointed batch, with the new checkpoint. */
  readonly onRelayed?: (checkpoint: number) => void;
  /** kafkajs' own logging; default none (failures go to `onError`). */
  readonly logLevel?: kafkajs.logLevel;
}

/**
 * Relays every committed event of the log to one Kafka topic: key = stream id, value = the envelope's
 * RFC 8785 text, headers = event id, position, serial, type. It is a projection of the log run by the
 * ledger's one follow loop: a batch is sent with acks = -1 (all in-sync replicas) and the checkpoint is
 * saved only after the send resolved, so the checkpoint MUST NOT run ahead of what Kafka acknowledged.
 * A restart resumes at checkpoint + 1: delivery is at-least-once, and consumers drop the copies
 * (`RelayDeduplicator`). A failed send is retried with backoff, forever, from the same event.
 */
export class KafkaRelay implements LogProjection {
  readonly topic: string;
  private readonly producer: Producer;
  private readonly maxBatch: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private connected = false;
  private current: number | undefined;
  private controller: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: KafkaRelayOptions) {
    if (options.brokers.length === 0) throw new RelayError('INVALID_ARGUMENT', 'the relay needs at least one broker');
    this.topic = options.topic ?? DEFAULT_RELAY_TOPIC;
    this.maxBatch = options.maxBatch ?? 500;
    if (!Number.isSafeInteger(this.maxBatch) || this.maxBatch < 1) throw new RelayError('INVALID_ARGUMENT', 'maxBatch must be a positive integer');
    this.initialMs = options.retry?.initialMs ?? 100;
    this.maxMs = options.retry?.maxMs ?? 5000;
    const kafka = new Kafka({
      clientId: options.clientId ?? 'linkage-ledger-relay',
      brokers: [...options.brokers],
      logLevel: options.logLevel ?? LogLevel.NOTHING,
      requestTimeout: options.requestTimeoutMs ?? 10_000,
      connectionTimeout: 3000,
      // Few client-level retries: a failure reaches the relay's own loop, which retries forever.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    // Not idempotent (librdkafka's mock broker refuses kafkajs' InitProducerId); one request in flight keeps
    // each partition in log order across kafkajs' own retries.
    this.producer = kafka.producer({ idempotent: false, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  }

  /** Starts following the log in the background; `stop()` ends it. */
  start(): void {
    if (this.running !== undefined) return;
    const controller = new AbortController();
    this.controller = controller;
    this.running = this.run(controller.signal);
  }

  /** Stops following and disconnects; resolves once no send or checkpoint write is in progress. */
  async stop(): Promise<void> {
    this.controller?.abort();
    await this.running;
    this.running = undefined;
    this.controller = undefined;
    if (this.connected) {
      this.connected = false;
      await this.producer.disconnect().catch(() => undefined);
    }
  }

  /** Position of the last event Kafka acknowledged and the checkpoint stored; -1 before any. */
  async checkpoint(): Promise<number> {
    this.current ??= await this.options.checkpoint.load();
    return this.current;
  }

  /** Relays the whole log again from the start (consumers drop what they already had). */
  async reset(): Promise<void> {
    await this.options.checkpoint.save(-1);
    this.current = -1;
  }

  /**
   * Sends the events after the checkpoint, in batches of at most `maxBatch`, each acknowledged before its
   * last position is saved. Events at or before the checkpoint are skipped; a hole after it is refused.
   */
  async apply(events: readonly RecordedEvent[]): Promise<void> {
    let last = await this.checkpoint();
    let batch: RecordedEvent[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      await this.send(batch);
      const position = batch[batch.length - 1]!.position;
      await this.options.checkpoint.save(position);
      this.current = position;
      batch = [];
      this.options.onRelayed?.(position);
    };
    for (const event of events) {
      if (event.position <= last) continue;
      if (event.position !== last + 1) throw new RelayError('RELAY_GAP', `event ${event.position} follows ${last}: the relay never skips an event`);
      last = event.position;
      batch.push(event);
      if (batch.length >= this.maxBatch) await flush();
    }
    await flush();
  }

  private async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let failure: unknown;
      try {
        await follow(this.options.store, this, {
          signal,
          maxBatch: this.maxBatch,
          onError: (error) => (failure = error),
          onApplied: () => (failures = 0),
        });
      } catch (error) {
        failure = error;
      }
      if (signal.aborted) return;
      // follow ended on a failed batch (or the log could not be read): resume from the stored checkpoint.
      this.current = undefined;
      if (failure !== undefined) this.options.onError?.(failure);
      await sleep(this.backoff(failures++), signal);
    }
  }

  /** Sends one batch with acks = -1, retrying with backoff until Kafka acknowledged it or the relay stops. */
  private async send(events: readonly RecordedEvent[]): Promise<void> {
    const messages = events.map(relayMessage);
    const signal = this.controller?.signal;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new RelayError('RELAY_CLOSED', 'the relay stopped before Kafka acknowledged the batch');
      try {
        if (!this.connected) {
          await this.producer.connect();
          this.connected = true;
        }
        await this.producer.send({ topic: this.topic, acks: -1, messages });
        return;
      } catch (error) {
        this.options.onError?.(error);
        if (this.connected) {
          this.connected = false;
          await this.producer.disconnect().catch(() => undefined);
        }
        await sleep(this.backoff(attempt), signal);
      }
    }
  }

  private backoff(attempt: number): number {
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(attempt, 20));
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
