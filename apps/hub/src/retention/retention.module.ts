import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { RetentionController } from './retention.controller.js';
import { Shredding } from './shredding.service.js';

/** Retention sweeps and erasures by crypto-shredding (I10). */
@Module({ imports: [LinkageModule], controllers: [RetentionController], providers: [Shredding], exports: [Shredding] })
export class RetentionModule {}
