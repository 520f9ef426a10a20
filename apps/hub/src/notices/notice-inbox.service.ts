import { Inject, Injectable } from '@nestjs/common';
import type { EventStore } from '#ledger';
import { SqliteNoticeInbox } from '#projections';
import { EventSealer } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { EVENT_STORE } from '../ledger/tokens.js';
import { FollowedProjection } from '../projections/followed-projection.js';
import { openNoticeInbox } from '../projections/followed-stores.js';

/** The citizens' notice inboxes (お知らせ): NoticeSent events, text still sealed, filed by the id of the person's key, in `notices.sqlite`. */
@Injectable()
export class NoticeInbox extends FollowedProjection<SqliteNoticeInbox> {
  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    private readonly config: HubConfig,
    private readonly sealer: EventSealer,
  ) {
    super(events, 'NoticeInbox');
  }


  protected open(): SqliteNoticeInbox {
    return openNoticeInbox(this.config.dataDir, this.sealer);
  }
}
