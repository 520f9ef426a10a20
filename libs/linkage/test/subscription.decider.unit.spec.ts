import { describe, expect, test } from 'vitest';
import {
  SUBSCRIPTION_MAX_TERM_MS,
  SubscriptionError,
  compileAuthorizationPolicy,
  parseAuthorizationTable,
  subscriptionDecider,
  subscriptionStreamId,
  type AgencyCode,
  type AuthorizationPolicy,
  type CreateSubscriptionData,
  type Evolvable,
  type SubscriptionCommand,
  type SubscriptionEvent,
  type SubscriptionRefusalCode,
} from '#linkage';
import { inMemorySealer, sealSpecOf } from '#sealing';
import type { NewEvent } from '#ledger';
import { deciderSpec } from '../../../test/support/given-when-then.js';
import { readJson, schemaValidator } from '../../../test/support/json-schema.js';
import { AOYAMA, MURORAN, PENSION, SAPPORO, T0, T1, freshCode, policy as v1Policy } from './fixtures.js';

const spec = deciderSpec<ReturnType<typeof subscriptionDecider.initialState>, SubscriptionCommand, SubscriptionEvent, Evolvable<SubscriptionEvent>, SubscriptionRefusalCode>(subscriptionDecider, SubscriptionError);

const V2: AuthorizationPolicy = compileAuthorizationPolicy(parseAuthorizationTable(readJson('schemas/authorization/authorization-table.v2.json')));
const ID = '0193a1b2-0000-7000-8000-0000000000a1';
const CODE: AgencyCode = freshCode();
const DAY = 24 * 3600 * 1000;
const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();

const CREATE: CreateSubscriptionData = {
  subscriptionId: ID,
  requesterAgencyId: PENSION,
  requesterKind: 'pension-service',
  providerAgencyId: MURORAN,
  providerKind: 'municipality',
  subjectId: AOYAMA,
  requesterCode: CODE,
  procedureCode: 'pension-award-claim',
  itemCodes: ['local-tax', 'resident-record'],
  createdAt: T0,
  expiresAt: at(365 * DAY),
  policy: V2,
};
const create = (data: Partial<CreateSubscriptionData> = {}): SubscriptionCommand => ({ type: 'CreateSubscription', data: { ...CREATE, ...data } });
const { policy: _policy, ...createdFields } = CREATE;
const CREATED: SubscriptionEvent = {
  type: 'SubscriptionCreated',
  schemaVersion: 1,
  data: { ...createdFields, itemCodes: ['local-tax', 'resident-record'], tableVersion: 2 },
  terminal: 'completed',
};
const PARTIES = { subscriptionId: ID, requesterAgencyId: PENSION, providerAgencyId: MURORAN, subjectId: AOYAMA };

describe('subscription decider: subscribe', () => {
  test('given no subscription, when the table in force allows push of every item, then SubscriptionCreated ends its serial', () => {
    spec.given([]).when(create()).then([CREATED]);
  });

  test('an explicit expiry up to five years ahead is kept', () => {
    const expiresAt = at(SUBSCRIPTION_MAX_TERM_MS);
    const [event] = spec.given([]).when(create({ expiresAt })).thenEvents();
    expect(event!.data).toMatchObject({ expiresAt });
  });

  test('a retry of the same subscription id decides nothing', () => {
    spec.given([CREATED]).when(create()).then([]);
  });

  test.each([
    ['an item the row allows to query but not to push', { procedureCode: 'national-pension-premium-exemption', itemCodes: ['local-tax'] }, 'PUSH_NOT_AUTHORIZED'],
    ['a format-1 table (no push at all)', { policy: v1Policy() }, 'PUSH_NOT_AUTHORIZED'],
    ['an item the row does not allow at all', { itemCodes: ['local-tax', 'livelihood-protection'] }, 'ITEM_NOT_ALLOWED'],
    ['a procedure not in the table', { procedureCode: 'no-such-procedure' }, 'UNKNOWN_PROCEDURE'],
    ['a requester kind the procedure is not for', { requesterKind: 'municipality' as const, requesterAgencyId: SAPPORO }, 'REQUESTER_KIND_NOT_ALLOWED'],
    ['a provider kind the procedure has no row for', { providerKind: 'prefecture' as const }, 'PROVIDER_KIND_NOT_ALLOWED'],
    ['no table in force', { policy: undefined }, 'TABLE_VERSION_NOT_IN_FORCE'],
    ['a table version named that is not in force', { requestedTableVersion: 1 }, 'TABLE_VERSION_NOT_IN_FORCE'],
    ['an expiry not after now', { expiresAt: T0 }, 'INVALID_EXPIRY'],
    ['an expiry more than five years ahead', { expiresAt: at(SUBSCRIPTION_MAX_TERM_MS + 1) }, 'INVALID_EXPIRY'],
    ['a subscription to oneself', { providerAgencyId: PENSION }, 'PROVIDER_IS_REQUESTER'],
    ['no items', { itemCodes: [] }, 'MALFORMED'],
    ['an item listed twice', { itemCodes: ['local-tax', 'local-tax'] }, 'MALFORMED'],
    ['a malformed code', { requesterCode: 'x' as AgencyCode }, 'MALFORMED'],
    ['a malformed expiry', { expiresAt: 'tomorrow' }, 'MALFORMED'],
  ] as const)('given no subscription, when %s, then it is refused (%s… code %s)', (_what, data, code) => {
    spec.given([]).when(create(data as Partial<CreateSubscriptionData>)).thenFails(code as SubscriptionRefusalCode);
  });

  test('PUSH_NOT_AUTHORIZED names the items refused and those open to push', () => {
    const refusal = (data: Partial<CreateSubscriptionData>) => {
      try {
        subscriptionDecider.decide(create(data), subscriptionDecider.initialState());
        return undefined;
      } catch (e) {
        return e as SubscriptionError;
      }
    };
    expect(refusal({ procedureCode: 'national-pension-premium-exemption' })).toMatchObject({ code: 'PUSH_NOT_AUTHORIZED', details: { notPushableItems: ['local-tax', 'resident-record'], pushableItems: [], tableVersion: 2 } });
    expect(refusal({ procedureCode: 'pre-twenty-disability-pension-income-check', itemCodes: ['local-tax'] })).toBeUndefined();
  });

  test('an active subscription of the same agency to an item of the same provider for the person: SUBSCRIPTION_EXISTS naming it and the shared items', () => {
    const OTHER = '0f0e0d0c-0b0a-4908-8706-050403020100';
    spec.given([]).when(create({ overlapping: { subscriptionId: OTHER, itemCodes: ['resident-record'] } })).thenFails('SUBSCRIPTION_EXISTS');
    let error: SubscriptionError | undefined;
    try {
      subscriptionDecider.decide(create({ overlapping: { subscriptionId: OTHER, itemCodes: ['resident-record', 'livelihood-protection'] } }), subscriptionDecider.initialState());
    } catch (e) {
      error = e as SubscriptionError;
    }
    expect(error).toMatchObject({ code: 'SUBSCRIPTION_EXISTS', details: { subscriptionId: OTHER, itemCodes: ['resident-record'] } });
    expect(error?.message).toContain(OTHER);
    // The table's refusal comes first: an unlawful subscription is refused as such.
    spec.given([]).when(create({ procedureCode: 'no-such-procedure', overlapping: { subscriptionId: OTHER, itemCodes: ['local-tax'] } })).thenFails('UNKNOWN_PROCEDURE');
  });
});

describe('subscription decider: cancel, expire, end', () => {
  const cancel = (requesterAgencyId = PENSION): SubscriptionCommand => ({ type: 'CancelSubscription', data: { subscriptionId: ID, requesterAgencyId, cancelledAt: T1 } });
  const CANCELLED: SubscriptionEvent = { type: 'SubscriptionCancelled', schemaVersion: 1, data: { ...PARTIES, cancelledAt: T1 }, terminal: 'completed' };

  test('given an active subscription, when its subscriber cancels, then SubscriptionCancelled', () => {
    spec.given([CREATED]).when(cancel()).then([CANCELLED]);
  });

  test('another agency cannot cancel it, nor learn it exists: SUBSCRIPTION_NOT_FOUND, as for none at all', () => {
    spec.given([CREATED]).when(cancel(MURORAN)).thenFails('SUBSCRIPTION_NOT_FOUND');
    spec.given([]).when(cancel()).thenFails('SUBSCRIPTION_NOT_FOUND');
  });

  test('a subscription no longer active is SUBSCRIPTION_NOT_ACTIVE', () => {
    spec.given([CREATED, CANCELLED]).when(cancel()).thenFails('SUBSCRIPTION_NOT_ACTIVE');
  });

  const expire = (expiredAt: string): SubscriptionCommand => ({ type: 'ExpireSubscription', data: { subscriptionId: ID, expiredAt } });
  test('expiry: recorded once due, nothing before, nothing once not active', () => {
    const due = at(365 * DAY);
    spec.given([CREATED]).when(expire(at(365 * DAY - 1))).then([]);
    spec.given([CREATED]).when(expire(due)).then([{ type: 'SubscriptionExpired', schemaVersion: 1, data: { ...PARTIES, expiresAt: due, expiredAt: due }, terminal: 'completed' }]);
    spec.given([CREATED, CANCELLED]).when(expire(due)).then([]);
  });

  const end = (withdrawnItems: readonly string[]): SubscriptionCommand => ({ type: 'EndSubscription', data: { subscriptionId: ID, reason: 'TABLE_WITHDREW_PUSH', tableVersion: 3, withdrawnItems, endedAt: T1 } });
  test('a withdrawn push ends it, naming only its own items withdrawn; nothing when none of its items is withdrawn or it is not active', () => {
    spec.given([CREATED]).when(end(['resident-record', 'livelihood-protection'])).then([
      { type: 'SubscriptionEnded', schemaVersion: 1, data: { ...PARTIES, reason: 'TABLE_WITHDREW_PUSH', tableVersion: 3, withdrawnItems: ['resident-record'], endedAt: T1 }, terminal: 'completed' },
    ]);
    spec.given([CREATED]).when(end(['livelihood-protection'])).then([]);
    spec.given([CREATED, CANCELLED]).when(end(['local-tax'])).then([]);
  });

  test('the state after each end says how and when', () => {
    const s = spec.given([CREATED, CANCELLED]).state;
    expect(s).toMatchObject({ status: 'cancelled', endedAt: T1 });
    expect(subscriptionStreamId(ID)).toBe(`subscription-${ID}`);
  });
});

describe('subscription events as stored (I10) conform to schemas/events/subscription-*.v1.json', () => {
  const sealer = inMemorySealer();
  const sealed = ['schemas/events/sealed-section.v1.json'];
  const files: Record<string, string> = { SubscriptionCreated: 'subscription-created', SubscriptionCancelled: 'subscription-cancelled', SubscriptionExpired: 'subscription-expired', SubscriptionEnded: 'subscription-ended' };
  const events: SubscriptionEvent[] = [
    CREATED,
    ...spec.given([CREATED]).when({ type: 'CancelSubscription', data: { subscriptionId: ID, requesterAgencyId: PENSION, cancelledAt: T1 } }).thenEvents(),
    ...spec.given([CREATED]).when({ type: 'ExpireSubscription', data: { subscriptionId: ID, expiredAt: at(400 * DAY) } }).thenEvents(),
    ...spec.given([CREATED]).when({ type: 'EndSubscription', data: { subscriptionId: ID, reason: 'TABLE_WITHDREW_PUSH', tableVersion: 3, withdrawnItems: ['local-tax'], endedAt: T1 } }).thenEvents(),
  ];
  test.each(events.map((e) => [e.type, e] as const))('%s: sealed the person (and the code), the rest clear, valid against its schema', (type, event) => {
    const stored = sealer.seal(subscriptionStreamId(ID), event as NewEvent);
    expect(sealSpecOf(type)?.storedVersion).toBe(1);
    const validate = schemaValidator(`schemas/events/${files[type]!}.v1.json`, sealed);
    expect(validate(stored.data).errors, type).toBe('No errors');
    const text = JSON.stringify(stored);
    for (const secret of [AOYAMA, CODE]) expect(text.includes(secret), `${type} holds ${secret}`).toBe(false);
    expect(text).toContain(PENSION);
    expect(text).toContain(MURORAN);
    // The schema refuses the decided (unsealed) form: a subject id in the clear is not a valid stored event.
    expect(validate(event.data).valid).toBe(false);
  });
});
