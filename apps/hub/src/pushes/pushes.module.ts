import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { SubscriptionDirectory } from '../subscriptions/subscription-directory.js';
import { SubscriptionsModule } from '../subscriptions/subscriptions.module.js';
import { PushDelivery } from './push-delivery.js';
import { PushFanOut } from './push-fan-out.js';
import { PushProjection } from './push-projection.js';
import { PushRecords } from './push-records.js';
import { PushSender } from './push-sender.js';
import { PushesController } from './pushes.controller.js';
import { PUSH_SUBSCRIBERS } from './subscribers.js';

/**
 * Copy updates and pushes (issue 14): a provider reports a changed copy, the hub fans out one push per
 * active subscriber and delivers each at least once to the subscriber's intermediate server, signed with
 * the hub's provision key (LinkageModule's signer: the same key as provision requests, rotations included).
 */
@Module({
  imports: [LinkageModule, SubscriptionsModule],
  controllers: [PushesController],
  providers: [
    { provide: PUSH_SUBSCRIBERS, useExisting: SubscriptionDirectory },
    PushProjection,
    PushFanOut,
    PushSender,
    PushDelivery,
    PushRecords,
  ],
  exports: [PushProjection, PushRecords, PushFanOut, PushDelivery],
})
export class PushesModule {}
