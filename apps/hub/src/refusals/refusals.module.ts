import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { LinkageModule } from '../linkage/linkage.module.js';
import { RefusalGuard } from './refusal.guard.js';
import { Refusals } from './refusals.service.js';

/** Every refusal an event (I6): the recorder and the guard before command routes (the problem filter records). */
@Global()
@Module({ imports: [LinkageModule], providers: [Refusals, { provide: APP_GUARD, useClass: RefusalGuard }], exports: [Refusals] })
export class RefusalsModule {}
