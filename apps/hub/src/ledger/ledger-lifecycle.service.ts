import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { voidOpenSerials, type EventStore } from '#ledger';
import type { KurrentLogClient } from '#ledger/kurrentdb-event-store';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { EVENT_STORE, KURRENTDB_CLIENT } from './tokens.js';

/**
 * Start-up recovery and shutdown of the ledger. Recovery runs in onModuleInit, i.e. inside
 * `app.init()`, which `listen()` awaits: no command is accepted before every serial left open by a
 * crash is voided (I2). The store closes after the HTTP server stopped taking requests.
 *
 * On KurrentDB (several hubs, one leads) the first election runs here too, and recovery is a step of
 * every takeover: the hub that becomes the leader, at start or when the leader died, voids the serials
 * the previous leader left open before it takes a command, and allocates the next serials from the log.
 */
@Injectable()
export class LedgerLifecycle implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Ledger');
  private recovered = false;
  private closing = false;
  private closed = false;
  private voided = 0;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
    @Inject(KURRENTDB_CLIENT) private readonly client: KurrentLogClient | null,
  ) {
    leadership?.onTakeover(() => this.recover('the previous leader stopped before the serial ended (takeover recovery)'));
  }

  async onModuleInit(): Promise<void> {
    if (this.leadership === null) await this.recover('hub restarted before the serial ended (start-up recovery)');
    else await this.leadership.start();
    this.recovered = true;
  }

  private async recover(reason: string): Promise<void> {
    const correlationId = `recovery-${randomUUID()}`;
    const voided = await voidOpenSerials(this.store, reason, correlationId);
    this.voided += voided.length;
    if (voided.length > 0) this.logger.warn(`voided ${voided.length} serial(s) left open by an earlier run (${correlationId})`);
  }

  /** Draining: report not ready, so a load balancer stops sending commands before the store closes. */
  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // After the HTTP server and the other services drained: no more renewals, so a standby takes over
    // once the lease runs out; nothing more is appended by this hub.
    await this.leadership?.stop();
    await this.store.close();
    await this.client?.dispose();
    this.logger.log('ledger closed');
  }

  /** Open and recovered: ready (a leader for commands, a standby for reads). */
  get ready(): boolean {
    return this.recovered && !this.closing && !this.closed;
  }

  /** Serials voided by this run's recoveries (start-up, and every takeover on KurrentDB). */
  get voidedAtStartup(): number {
    return this.voided;
  }
}
