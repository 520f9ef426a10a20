import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import { KafkaRelay, RELAY_CHECKPOINT_FILE, SqliteRelayCheckpoint } from '#relay';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';

/** Failures are logged at most this often while the broker stays unreachable (the relay keeps retrying). */
const LOG_EVERY_MS = 10_000;

/**
 * Relays every committed event to Kafka when HUB_KAFKA_BROKERS is set (libs/relay): at-least-once, keyed
 * by stream, its checkpoint in `relay.sqlite` beside the ledger. An unreachable broker never blocks the
 * hub: appends go on, the relay retries and catches up from its checkpoint.
 */
@Injectable()
export class EventRelay implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('EventRelay');
  #relay: KafkaRelay | undefined;
  #checkpoint: SqliteRelayCheckpoint | undefined;
  #lastLogged = 0;
  #suppressed = 0;

  constructor(
    @Inject(EVENT_STORE) private readonly events: EventStore,
    private readonly config: HubConfig,
  ) {}

  get path(): string {
    return join(this.config.dataDir, RELAY_CHECKPOINT_FILE);
  }

  /** The relay's checkpoint (last position Kafka acknowledged), or undefined when no relay runs. */
  async checkpoint(): Promise<number | undefined> {
    return this.#relay?.checkpoint();
  }

  onModuleInit(): void {
    const kafka = this.config.kafka;
    if (kafka === undefined) return;
    this.#checkpoint = new SqliteRelayCheckpoint({ path: this.path, name: kafka.topic });
    this.#relay = new KafkaRelay({
      store: this.events,
      brokers: kafka.brokers,
      topic: kafka.topic,
      checkpoint: this.#checkpoint,
      clientId: `linkage-ledger-hub-${String(this.config.nodeId).padStart(2, '0')}`,
      onError: (error) => this.#logFailure(error),
    });
    this.#relay.start();
    this.logger.log(`relaying committed events to Kafka topic ${kafka.topic} (${kafka.brokers.join(',')})`);
  }

  #logFailure(error: unknown): void {
    const now = Date.now();
    if (now - this.#lastLogged < LOG_EVERY_MS) {
      this.#suppressed++;
      return;
    }
    const more = this.#suppressed > 0 ? ` (${this.#suppressed} more since the last report)` : '';
    this.#lastLogged = now;
    this.#suppressed = 0;
    this.logger.warn(`Kafka relay: ${error instanceof Error ? error.message : String(error)}; retrying${more}`);
  }

  /** Stops before any module closes: the send in flight is acknowledged (and checkpointed) or abandoned, while the ledger is still open. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.#relay?.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.#relay?.stop();
    await this.#checkpoint?.close();
  }
}
