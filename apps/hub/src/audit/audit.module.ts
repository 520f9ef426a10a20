import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { RecordsModule } from '../records/records.module.js';
import { AuditController } from './audit.controller.js';
import { CheckpointSigner } from './checkpoint-signer.service.js';
import { SelfCheckController } from './self-check.controller.js';
import { SelfCheckService } from './self-check.service.js';
import { TreeFollower } from './tree-follower.service.js';

/** The audit core at the hub: the tree projection, signed checkpoints, the self-check and the audit endpoints (I3). */
@Module({
  imports: [LinkageModule, RecordsModule],
  controllers: [AuditController, SelfCheckController],
  providers: [TreeFollower, CheckpointSigner, SelfCheckService],
  exports: [TreeFollower, CheckpointSigner, SelfCheckService],
})
export class AuditModule {}
