import { Module } from '@nestjs/common';
import { EventsController } from './events.controller.js';
import { GetEventsHandler } from './get-events.handler.js';

@Module({ controllers: [EventsController], providers: [GetEventsHandler] })
export class EventsModule {}
