import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { NoticeInbox } from './notice-inbox.service.js';
import { NoticesController } from './notices.controller.js';
import { ReadNoticeHandler } from './read-notice.handler.js';
import { SendNoticeHandler } from './send-notice.handler.js';

/** Notices (お知らせ) from agencies to the people they serve, addressed by agency code, sealed in the log. */
@Module({
  imports: [LinkageModule],
  controllers: [NoticesController],
  providers: [NoticeInbox, SendNoticeHandler, ReadNoticeHandler],
})
export class NoticesModule {}
