import { Global, Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { SelfCheckController } from './self-check.controller.js';
import { SelfCheckService } from './self-check.service.js';

/**
 * The hub's check of its own log (self-check.service.ts) and the operator's endpoints. Global: the
 * checkpoint signer asks it before signing and readiness reports it.
 */
@Global()
@Module({ imports: [LinkageModule], controllers: [SelfCheckController], providers: [SelfCheckService], exports: [SelfCheckService] })
export class SelfCheckModule {}
