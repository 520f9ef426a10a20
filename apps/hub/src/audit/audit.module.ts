import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { RecordsModule } from '../records/records.module.js';
import { AuditController } from './audit.controller.js';
import { CheckpointSigner } from './checkpoint-signer.service.js';
import { Openings } from './openings.js';
import { TreeFollower } from './tree-follower.service.js';

/** The audit core at the hub: the tree projection, signed checkpoints and the audit endpoints (I3). */
@Module({ imports: [LinkageModule, RecordsModule], controllers: [AuditController], providers: [TreeFollower, CheckpointSigner, Openings], exports: [TreeFollower, CheckpointSigner] })
export class AuditModule {}
