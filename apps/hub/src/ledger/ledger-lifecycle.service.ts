import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { voidOpenSerials, type EventStore } from '#ledger';
import { EVENT_STORE } from './tokens.js';

/**
 * Start-up recovery and shutdown of the ledger. Recovery runs in onModuleInit, i.e. inside
 * `app.init()`, which `listen()` awaits: no command is accepted before every serial left open by a
 * crash is voided (I2). The store closes after the HTTP server stopped taking requests.
 */
@Injectable()
export class LedgerLifecycle implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Ledger');
  private recovered = false;
  private closing = false;
  private closed = false;
  private voided = 0;

  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  async onModuleInit(): Promise<void> {
    const correlationId = `recovery-${randomUUID()}`;
    const voided = await voidOpenSerials(this.store, 'hub restarted before the serial ended (start-up recovery)', correlationId);
    this.voided = voided.length;
    if (voided.length > 0) this.logger.warn(`voided ${voided.length} serial(s) left open by an earlier run (${correlationId})`);
    this.recovered = true;
  }

  /** Draining: report not ready, so a load balancer stops sending commands before the store closes. */
  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.store.close();
    this.logger.log('ledger closed');
  }

  /** Open and recovered: ready to take commands. */
  get ready(): boolean {
    return this.recovered && !this.closing && !this.closed;
  }

  /** Serials voided by this run's start-up recovery. */
  get voidedAtStartup(): number {
    return this.voided;
  }
}
