import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { join } from 'node:path';
import type { EventStore } from '#ledger';
import type { KurrentLogClient } from '#ledger/kurrentdb-event-store';
import { KafkaRelay, RELAY_CHECKPOINT_FILE, SqliteRelayCheckpoint, type RelayCheckpointStore } from '#relay';
import { HubConfig } from '../config/hub-config.js';
import type { HubRole, Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { EVENT_STORE, KURRENTDB_CLIENT } from '../ledger/tokens.js';
import { KurrentRelayCheckpoint, relayCheckpointStreamOf } from './kurrent-relay-checkpoint.js';

/** Failures are logged at most this often while the broker stays unreachable (the relay keeps retrying). */
const LOG_EVERY_MS = 10_000;

/**
 * Relays every committed event to Kafka when HUB_KAFKA_BROKERS is set (libs/relay): at-least-once, keyed
 * by stream, its checkpoint in `relay.sqlite` beside the ledger. An unreachable broker never blocks the
 * hub: appends go on, the relay retries and catches up from its checkpoint.
 *
 * On KurrentDB (several hubs on one log) only the leader relays: the relay starts when this hub leads (at
 * start or at a takeover) and stops when it steps down, and its checkpoint is kept beside the log in
 * KurrentDB (kurrent-relay-checkpoint.ts), so that a new leader resumes where the previous one was
 * acknowledged instead of relaying the log a second time.
 */
@Injectable()
export class EventRelay implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('EventRelay');
  #relay: KafkaRelay | undefined;
  #checkpoint: RelayCheckpointStore | undefined;
  /** The relay of this term stopping (a step-down), awaited before the next one starts. */
  #stopping: Promise<void> = Promise.resolve();
  #closed = false;
  #lastLogged = 0;
  #suppressed = 0;

  constructor(
    @Inject(EVENT_STORE) private readonly events: EventStore,
    private readonly config: HubConfig,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
    @Inject(KURRENTDB_CLIENT) private readonly client: KurrentLogClient | null,
  ) {}

  get path(): string {
    return join(this.config.dataDir, RELAY_CHECKPOINT_FILE);
  }

  /** The relay's checkpoint (last position Kafka acknowledged), or undefined when no relay runs (none configured, or a standby). */
  async checkpoint(): Promise<number | undefined> {
    return this.#relay?.checkpoint();
  }

  /** Whether this hub relays now (Kafka configured and, on KurrentDB, this hub leads). */
  get running(): boolean {
    return this.#relay !== undefined;
  }

  onModuleInit(): void {
    const kafka = this.config.kafka;
    if (kafka === undefined) return;
    if (this.leadership === null || this.client === null || this.config.eventStore.kind !== 'kurrentdb') {
      this.#checkpoint = new SqliteRelayCheckpoint({ path: this.path, name: kafka.topic });
      this.#start();
      return;
    }
    this.#checkpoint = new KurrentRelayCheckpoint(this.client, relayCheckpointStreamOf(this.config.eventStore.logStream, kafka.topic), this.leadership.instanceId);
    // Registered before the role is read: a change after this line starts or stops the relay.
    this.leadership.onRoleChange((role) => this.#roleChanged(role));
    if (this.leadership.role === 'leader') this.#start();
    else this.logger.log(`standing by: the Kafka relay to topic ${kafka.topic} starts when this hub leads`);
  }

  #roleChanged(role: HubRole): void {
    if (role === 'leader') {
      void this.#stopping.then(() => this.#start());
      return;
    }
    const relay = this.#relay;
    this.#relay = undefined;
    if (relay === undefined) return;
    this.logger.log('stepped down: the Kafka relay stops (the leader relays)');
    this.#stopping = this.#stopping.then(() => relay.stop()).catch((error: unknown) => this.#logFailure(error));
  }

  /** A new relay resumes from the stored checkpoint (on KurrentDB, where the previous leader left it). */
  #start(): void {
    const kafka = this.config.kafka;
    if (kafka === undefined || this.#checkpoint === undefined || this.#relay !== undefined || this.#closed) return;
    if (this.leadership !== null && this.leadership.role !== 'leader') return;
    // A new term takes the KurrentDB position stream over again (a deposed term's saves stay refused).
    if (this.#checkpoint instanceof KurrentRelayCheckpoint) this.#checkpoint.newTerm();
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
    this.#closed = true;
    await this.#relay?.stop();
    await this.#stopping;
  }

  async onApplicationShutdown(): Promise<void> {
    this.#closed = true;
    await this.#relay?.stop();
    await this.#stopping;
    await this.#checkpoint?.close();
  }
}
