/**
 * The only event types a refused request may append: its refusal recorded (I6: attempts are events).
 * RequestRefused and UnauthenticatedRequestsRecorded are not appended by any endpoint yet; QueryDenied
 * is a query judged and refused by the authorization rules.
 */
export const REFUSAL_EVENT_TYPES: readonly string[] = ['RequestRefused', 'UnauthenticatedRequestsRecorded', 'QueryDenied'];
