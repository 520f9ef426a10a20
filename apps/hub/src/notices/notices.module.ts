import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { NoticeInbox } from './notice-inbox.service.js';
import { NoticeBatchProgress, NoticeBatchRunner } from './notice-batch-runner.service.js';
import { NoticeBatchesController } from './notice-batches.controller.js';
import { sharedRecipientListsProvider } from './notice-batch-shared-lists.js';
import { NoticesController } from './notices.controller.js';
import { ReadNoticeHandler } from './read-notice.handler.js';
import { SendNoticeHandler } from './send-notice.handler.js';
import { StartNoticeBatchHandler } from './start-notice-batch.handler.js';

/** Notices (お知らせ) from agencies to the people they serve, addressed by agency code, sealed in the log; nationwide batches fanned out by the leader. */
@Module({
  imports: [LinkageModule],
  controllers: [NoticesController, NoticeBatchesController],
  providers: [NoticeInbox, SendNoticeHandler, ReadNoticeHandler, NoticeBatchProgress, sharedRecipientListsProvider, NoticeBatchRunner, StartNoticeBatchHandler],
  exports: [NoticeBatchProgress],
})
export class NoticesModule {}
