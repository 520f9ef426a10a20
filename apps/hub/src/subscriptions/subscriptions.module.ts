import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { CitizenSubscriptionsController } from './citizen-subscriptions.controller.js';
import { SubscriptionDirectory } from './subscription-directory.js';
import { SubscriptionSweeper } from './subscription-sweeper.service.js';
import { SubscriptionsController } from './subscriptions.controller.js';
import { SubscriptionsService } from './subscriptions.service.js';

/**
 * Subscriptions (プッシュ型の情報提供, issue 14): agencies subscribe to items a provider holds for a person,
 * where the authorization table in force allows push; the directory of active subscribers (a persisted
 * index, I11) is what the fan-out of an update reads; the leader's sweeper records expiries and the ends
 * a table version withdrawing push brings.
 */
@Module({
  imports: [LinkageModule],
  controllers: [SubscriptionsController, CitizenSubscriptionsController],
  providers: [SubscriptionDirectory, SubscriptionsService, SubscriptionSweeper],
  exports: [SubscriptionDirectory, SubscriptionsService],
})
export class SubscriptionsModule {}
