import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { PushesModule } from '../pushes/pushes.module.js';
import { ProvisionRecords } from './provision-records.service.js';
import { RecordsController } from './records.controller.js';

/** Provision records (情報提供等記録) for citizens and agencies, and the pushes about them. */
@Module({ imports: [LinkageModule, PushesModule], controllers: [RecordsController], providers: [ProvisionRecords], exports: [ProvisionRecords] })
export class RecordsModule {}
