import { Module } from '@nestjs/common';
import { EventRelay } from './event-relay.service.js';

/** The Kafka relay of committed events; idle unless HUB_KAFKA_BROKERS is set. */
@Module({ providers: [EventRelay], exports: [EventRelay] })
export class RelayModule {}
