/** Who receives pushes: what the fan-out needs of the subscription directory (apps/hub/src/subscriptions). */
export interface PushSubscriber {
  readonly subscriptionId: string;
  readonly requesterAgencyId: string;
  readonly procedureCode: string;
}

export interface PushSubscribers {
  activeSubscribers(providerAgencyId: string, subjectId: string, itemCode: string): Promise<readonly PushSubscriber[]>;
}

/** Injection token of the fan-out's subscriber source (the SubscriptionDirectory; a test may bind another). */
export const PUSH_SUBSCRIBERS = Symbol('PUSH_SUBSCRIBERS');
