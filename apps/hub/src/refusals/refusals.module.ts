import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { LinkageModule } from '../linkage/linkage.module.js';
import { RefusalGuard } from './refusal.guard.js';
import { Refusals } from './refusals.service.js';
import { RateLimits } from '../rate-limits/rate-limits.service.js';

/** Every refusal an event (I6): the recorder, the rate limits, and the guard before routes (the problem filter records). */
@Global()
@Module({ imports: [LinkageModule], providers: [Refusals, RateLimits, { provide: APP_GUARD, useClass: RefusalGuard }], exports: [Refusals, RateLimits] })
export class RefusalsModule {}
