import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { EventsController } from './events.controller.js';
import { GetEventsHandler } from './get-events.handler.js';

@Module({ imports: [LinkageModule], controllers: [EventsController], providers: [GetEventsHandler] })
export class EventsModule {}
