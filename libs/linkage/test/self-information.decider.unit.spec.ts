import { describe, expect, test } from 'vitest';
import {
  SELF_INFORMATION_PROCEDURE,
  compileSelfDisclosurePolicy,
  isSelfInformation,
  parseSelfDisclosureTable,
  selfInformationDecider,
  type QueryStreamEvent,
  type SelfDisclosurePolicy,
  type SelfInformationDenialReason,
  type SelfInformationDeniedData,
  type SelfInformationEvent,
  type SubmitSelfInformationRequest,
  type SubmitSelfInformationRequestData,
} from '#linkage';
import { readJson } from '../../../test/support/json-schema.js';
import { AOYAMA, CODE_B, HELLO_WORK, MURORAN, PENSION, T0, T1, facts, x25519Key } from './fixtures.js';
import { deciderSpec } from './given-when-then.js';

const spec = deciderSpec(selfInformationDecider);
const policy = (): SelfDisclosurePolicy => compileSelfDisclosurePolicy(parseSelfDisclosureTable(readJson('schemas/authorization/self-disclosure-table.v1.json')));
const KEY = x25519Key('aoyama-browser');

/** Aoyama-san asks Muroran City, through the hub, for her local tax information (自己情報表示). */
function request(overrides: Partial<SubmitSelfInformationRequestData> = {}): SubmitSelfInformationRequest {
  return {
    type: 'SubmitSelfInformationRequest',
    data: {
      queryId: 'q-self-1',
      subjectId: AOYAMA,
      providerAgencyId: MURORAN,
      provider: facts(MURORAN, 'municipality'),
      itemCode: 'local-tax',
      policy: policy(),
      providerCode: CODE_B,
      answerPublicKey: KEY,
      submittedAt: T0,
      ...overrides,
    },
  };
}

const base = { queryId: 'q-self-1', requesterKind: 'citizen', providerAgencyId: MURORAN, procedureCode: SELF_INFORMATION_PROCEDURE, itemCodes: ['local-tax'], subjectId: AOYAMA } as const;
const accepted: SelfInformationEvent = { type: 'QueryAccepted', schemaVersion: 3, data: { ...base, providerKind: 'municipality', tableVersion: 1, acceptedAt: T0 } };
const requested: SelfInformationEvent = {
  type: 'ProvisionRequested',
  schemaVersion: 3,
  data: { queryId: 'q-self-1', requesterKind: 'citizen', subjectId: AOYAMA, providerAgencyId: MURORAN, providerCode: CODE_B, procedureCode: SELF_INFORMATION_PROCEDURE, itemCodes: ['local-tax'], answerPublicKey: KEY, requestedAt: T0 },
};
const denied = (reason: SelfInformationDenialReason, extra: Partial<SelfInformationDeniedData> = {}): SelfInformationEvent[] => [
  { type: 'QueryDenied', schemaVersion: 3, data: { ...base, itemCodes: [...base.itemCodes], reason, deniedAt: T0, ...extra }, terminal: 'denied' },
];

describe('self-information request (自己情報表示)', () => {
  test('given nothing, when Aoyama-san asks Muroran for her local tax information, then QueryAccepted and ProvisionRequested in their citizen form (v3): no requesting agency, the self-disclosure table version, Muroran\'s own code and her browser\'s key', () => {
    spec.given([]).when(request()).then([accepted, requested]);
    expect(isSelfInformation(accepted.data)).toBe(true);
    expect(accepted.data).not.toHaveProperty('requesterAgencyId');
  });

  test('given an accepted request, when the provider answers, then ProvisionAnswered and QueryCompleted: the query lifecycle, encrypted to her key', () => {
    const events = spec
      .given([accepted, requested] as QueryStreamEvent[])
      .when({ type: 'RecordProvisionAnswer', data: { queryId: 'q-self-1', providerAgencyId: MURORAN, answerDigest: 'a'.repeat(64), answerSize: 120, encrypted: true, answeredAt: T1 } })
      .thenEvents();
    expect(events.map((e) => [e.type, e.terminal])).toEqual([['ProvisionAnswered', undefined], ['QueryCompleted', 'completed']]);
    expect(events[0]!.data).toMatchObject({ subjectId: AOYAMA, providerAgencyId: MURORAN });
  });

  test('given an accepted request, when the provider answers in plaintext, then it is refused: the answer must be sealed to her browser\'s key', () => {
    spec
      .given([accepted, requested] as QueryStreamEvent[])
      .when({ type: 'RecordProvisionAnswer', data: { queryId: 'q-self-1', providerAgencyId: MURORAN, answerDigest: 'a'.repeat(64), answerSize: 120, encrypted: false, answeredAt: T1 } })
      .thenFails('MALFORMED', /must encrypt/);
  });

  test('given an accepted request, when the provider refuses or fails, then the serial ends as any query\'s', () => {
    const refused = spec.given([accepted, requested] as QueryStreamEvent[]).when({ type: 'RecordProvisionRefusal', data: { queryId: 'q-self-1', providerAgencyId: MURORAN, reason: 'NO_RECORD', refusedAt: T1 } }).thenEvents();
    expect(refused.map((e) => e.type)).toEqual(['ProvisionRefused', 'QueryCompleted']);
    const failed = spec.given([accepted, requested] as QueryStreamEvent[]).when({ type: 'FailQuery', data: { queryId: 'q-self-1', reason: 'PROVIDER_TIMEOUT', failedAt: T1 } }).thenEvents();
    expect(failed).toEqual([{ type: 'QueryFailed', schemaVersion: 1, data: { queryId: 'q-self-1', providerAgencyId: MURORAN, reason: 'PROVIDER_TIMEOUT', failedAt: T1 }, terminal: 'failed' }]);
  });

  test('when the provider\'s kind does not disclose the item, then QueryDenied SELF_DISCLOSURE_NOT_ALLOWED with the items it does disclose', () => {
    spec.given([]).when(request({ itemCode: 'pension-benefit' })).then(denied('SELF_DISCLOSURE_NOT_ALLOWED', { itemCodes: ['pension-benefit'], tableVersion: 1, allowedItems: ['local-tax', 'resident-record', 'livelihood-protection', 'child-rearing-allowance'] }));
    // An item code the table does not know is not disclosed either.
    spec.given([]).when(request({ itemCode: 'favourite-colour' })).then(denied('SELF_DISCLOSURE_NOT_ALLOWED', { itemCodes: ['favourite-colour'], tableVersion: 1, allowedItems: ['local-tax', 'resident-record', 'livelihood-protection', 'child-rearing-allowance'] }));
  });

  test('when the provider\'s kind discloses nothing at all, then SELF_DISCLOSURE_NOT_ALLOWED with no allowed items', () => {
    const jasso = 'jasso' as typeof MURORAN;
    const [event] = spec.given([]).when(request({ providerAgencyId: jasso, provider: facts(jasso, 'jasso') })).thenEvents();
    expect(event).toMatchObject({ type: 'QueryDenied', data: { reason: 'SELF_DISCLOSURE_NOT_ALLOWED', allowedItems: [], tableVersion: 1 } });
  });

  test('when no self-disclosure table is in force (none published, or not yet effective), then SELF_DISCLOSURE_TABLE_NOT_IN_FORCE', () => {
    spec.given([]).when(request({ policy: undefined })).then(denied('SELF_DISCLOSURE_TABLE_NOT_IN_FORCE'));
    spec.given([]).when(request({ submittedAt: '2019-06-30T00:00:00.000Z' })).then(denied('SELF_DISCLOSURE_TABLE_NOT_IN_FORCE', { tableVersion: 1, deniedAt: '2019-06-30T00:00:00.000Z' }));
  });

  test('when the provider holds no code for her, then NO_AGENCY_CODE (after the table allowed it)', () => {
    spec.given([]).when(request({ providerCode: null })).then(denied('NO_AGENCY_CODE', { tableVersion: 1 }));
  });

  test('when the provider is unknown or revoked, then UNKNOWN_PROVIDER / PROVIDER_REVOKED, before the table', () => {
    spec.given([]).when(request({ provider: undefined })).then(denied('UNKNOWN_PROVIDER'));
    spec.given([]).when(request({ provider: facts(MURORAN, 'municipality', 'revoked') })).then(denied('PROVIDER_REVOKED'));
  });

  test('a pension service discloses pension items, a Hello Work employment insurance: the table\'s rows', () => {
    const [pension] = spec.given([]).when(request({ providerAgencyId: PENSION, provider: facts(PENSION, 'pension-service'), itemCode: 'pension-benefit' })).thenEvents();
    expect(pension).toMatchObject({ type: 'QueryAccepted', data: { providerKind: 'pension-service', itemCodes: ['pension-benefit'] } });
    const [work] = spec.given([]).when(request({ providerAgencyId: HELLO_WORK, provider: facts(HELLO_WORK, 'hello-work'), itemCode: 'employment-insurance' })).thenEvents();
    expect(work).toMatchObject({ type: 'QueryAccepted', data: { providerKind: 'hello-work' } });
  });

  test('changes nothing for a request that cannot be judged: no key, a bad item code, a subject that is not the hub\'s id, an allowed request not looked up, a second submission', () => {
    spec.given([]).when(request({ answerPublicKey: 'short' })).thenFails('INVALID_PUBLIC_KEY');
    spec.given([]).when(request({ itemCode: 'Local Tax' })).thenFails('MALFORMED');
    spec.given([]).when(request({ provider: undefined, itemCode: 'Local Tax' })).thenFails('MALFORMED');
    spec.given([]).when(request({ subjectId: '123456789012' })).thenFails('INVALID_SUBJECT_ID');
    spec.given([]).when(request({ providerCode: undefined })).thenFails('MALFORMED', /look up the provider's code/);
    spec.given([]).when(request({ providerCode: 'not-a-code' })).thenFails('INVALID_AGENCY_CODE');
    spec.given([]).when(request({ provider: facts(PENSION, 'pension-service') })).thenFails('MALFORMED', /describe agency/);
    spec.given([accepted, requested] as QueryStreamEvent[]).when(request()).thenFails('QUERY_ALREADY_SUBMITTED');
  });

  test('an agency\'s query is not a self-information request', () => {
    expect(isSelfInformation({ requesterKind: 'citizen', procedureCode: SELF_INFORMATION_PROCEDURE })).toBe(true);
    expect(isSelfInformation({ requesterKind: 'citizen', procedureCode: SELF_INFORMATION_PROCEDURE, requesterAgencyId: PENSION })).toBe(false);
    expect(isSelfInformation({ requesterKind: 'pension-service', procedureCode: 'pension-award-claim', requesterAgencyId: PENSION })).toBe(false);
  });
});
