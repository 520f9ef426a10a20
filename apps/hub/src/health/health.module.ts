import { Module } from '@nestjs/common';
import { GetReadinessHandler } from './get-readiness.handler.js';
import { HealthController } from './health.controller.js';
import { LinkageModule } from '../linkage/linkage.module.js';

@Module({ imports: [LinkageModule], controllers: [HealthController], providers: [GetReadinessHandler] })
export class HealthModule {}
