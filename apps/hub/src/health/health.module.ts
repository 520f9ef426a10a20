import { Module } from '@nestjs/common';
import { GetReadinessHandler } from './get-readiness.handler.js';
import { HealthController } from './health.controller.js';

@Module({ controllers: [HealthController], providers: [GetReadinessHandler] })
export class HealthModule {}
