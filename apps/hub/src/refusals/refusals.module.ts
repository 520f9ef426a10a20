import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { LinkageModule } from '../linkage/linkage.module.js';
import { RefusalInterceptor } from './refusal.interceptor.js';
import { Refusals } from './refusals.service.js';

/** Every refusal an event (I6): the recorder and the interceptor around command routes. */
@Global()
@Module({ imports: [LinkageModule], providers: [Refusals, { provide: APP_INTERCEPTOR, useClass: RefusalInterceptor }], exports: [Refusals] })
export class RefusalsModule {}
