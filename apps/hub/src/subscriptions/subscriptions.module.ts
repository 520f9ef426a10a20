import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { SubscriptionDirectory } from './subscription-directory.js';

/**
 * Subscriptions (プッシュ型の情報提供, issue 14): agencies subscribe to items a provider holds for a person,
 * where the authorization table in force allows push; the directory of active subscribers (a persisted
 * index, I11) is what the fan-out of an update reads.
 */
@Module({
  imports: [LinkageModule],
  providers: [SubscriptionDirectory],
  exports: [SubscriptionDirectory],
})
export class SubscriptionsModule {}
