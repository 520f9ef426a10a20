import kafkajs from 'kafkajs';
import { RelayDeduplicator } from './dedupe.js';
import { RelayError } from './errors.js';
import { DEFAULT_RELAY_TOPIC, parseRelayMessage, type RelayedEvent } from './relay-message.js';

const { Kafka, logLevel: LogLevel } = kafkajs;

export interface RelayConsumerOptions {
  readonly brokers: readonly string[];
  /** The consumer group: members share the partitions, each event goes to one member. */
  readonly groupId: string;
  /** Called once per event, in log order within each stream. A throw makes Kafka deliver it again. */
  readonly handler: (relayed: RelayedEvent) => Promise<void> | void;
  /** Default `linkage-ledger.events`. */
  readonly topic?: string;
  readonly clientId?: string;
  /** Where a group without committed offsets starts; default the beginning of the topic. */
  readonly fromBeginning?: boolean;
  /** What was handed on before (a snapshot stored with the handler's effects); default nothing. */
  readonly dedupe?: RelayDeduplicator;
  readonly logLevel?: kafkajs.logLevel;
}

/**
 * Consumes the relay's topic and hands each event to the handler once: redeliveries (the relay is
 * at-least-once) are dropped by `RelayDeduplicator` (position per partition, event id at that position).
 */
export class RelayConsumer {
  readonly topic: string;
  readonly dedupe: RelayDeduplicator;
  private readonly consumer: kafkajs.Consumer;
  private handedOn = 0;
  private dropped = 0;
  private started = false;

  constructor(private readonly options: RelayConsumerOptions) {
    if (options.brokers.length === 0) throw new RelayError('INVALID_ARGUMENT', 'the consumer needs at least one broker');
    this.topic = options.topic ?? DEFAULT_RELAY_TOPIC;
    this.dedupe = options.dedupe ?? new RelayDeduplicator();
    const kafka = new Kafka({
      clientId: options.clientId ?? 'linkage-ledger-relay-consumer',
      brokers: [...options.brokers],
      logLevel: options.logLevel ?? LogLevel.NOTHING,
    });
    this.consumer = kafka.consumer({ groupId: options.groupId });
  }

  /** Events handed to the handler, and redeliveries dropped, so far. */
  get stats(): { readonly handedOn: number; readonly duplicatesDropped: number } {
    return { handedOn: this.handedOn, duplicatesDropped: this.dropped };
  }

  /** Joins the group and starts consuming; resolves once the consumer is running. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: this.options.fromBeginning ?? true });
    await this.consumer.run({
      eachMessage: async ({ partition, message }) => {
        const relayed = parseRelayMessage(message, partition);
        const { position, eventId } = relayed.event;
        if (!this.dedupe.isNew(partition, position, eventId)) {
          this.dropped++;
          return;
        }
        await this.options.handler(relayed);
        this.dedupe.handed(partition, position, eventId);
        this.handedOn++;
      },
    });
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.consumer.disconnect();
  }
}
