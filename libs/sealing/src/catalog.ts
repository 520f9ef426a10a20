/**
 * What in each event is personal (I10), as data: the sealer seals exactly these fields, the opener puts
 * them back, and an opening is given to the parties each field names. An event type missing here is
 * refused by the sealer: nothing reaches the log unsealed by accident.
 */

/**
 * Who a sealed field is about, so who may receive its opening:
 * `citizen` the person the event concerns; `requester` / `provider` the two agencies of a query (named in
 * clear in the query's events); `agency` the agency an agency-code or notice event names; `hub` nobody but
 * the hub (and a supervisory auditor holding the read key).
 */
export type FieldOwner = 'citizen' | 'requester' | 'provider' | 'agency' | 'hub';

export interface SealedFieldSpec {
  readonly name: string;
  readonly owners: readonly FieldOwner[];
}

/**
 * `identity`: fields kept as long as the person is (numbers, agency codes, credentials), sealed under the
 * person's key. `record`: fields of exchanges kept seven years (queries, notices, refusals), sealed under
 * the person's key AND the key of the event's year, so a retention sweep shreds a whole year at once and
 * an erasure shreds one person across every year.
 */
export type KeyClass = 'identity' | 'record';

export interface SealSpec {
  /** The schema version the stored (sealed) form carries. */
  readonly storedVersion: number;
  /**
   * Later shapes of the type, sealed the same way: an event decided in one of these versions is stored
   * in it (e.g. 3, a citizen's own self-information request); any other is stored as `storedVersion`.
   */
  readonly laterVersions?: readonly number[];
  readonly keyClass: KeyClass;
  /** The plain field naming the person whose key seals the event; absent or undefined: the hub's own key. */
  readonly subjectField?: string;
  /** The plain field holding the event's business time (its year picks the period key of `record` events). */
  readonly timeField: string;
  readonly fields: readonly SealedFieldSpec[];
}

const citizen = (name: string): SealedFieldSpec => ({ name, owners: ['citizen'] });
const hub = (name: string): SealedFieldSpec => ({ name, owners: ['hub'] });
const own = (name: string, ...owners: FieldOwner[]): SealedFieldSpec => ({ name, owners });

/** Event types whose every field is public (bodies, tables, times, outcomes): stored as decided. */
export const CLEAR_EVENT_TYPES: readonly string[] = [
  'AgencyUpdated',
  'AgencyRevoked',
  'AgencyCertificateIssued',
  'AgencyCertificateRevoked',
  'AuthorizationTablePublished',
  'AuthorizationTableWithdrawn',
  'CheckpointKeyRotated',
  // Rotations of the hub's other keys and credentials (docs/key-rotation.md): key ids, fingerprints, counts and times only.
  'KeyEncryptionKeyRotated',
  'ProvisionSigningKeyRotated',
  'CodeKeyRotated',
  'PrincipalCredentialRotated',
  'TlsCaKeyRotated',
  'SelfDisclosureTablePublished',
  'CorporateNumberDesignated',
  'CorporateNumberChanged',
  'CorporateNumberClosed',
  'ProvisionRefused',
  'QueryCompleted',
  'QueryFailed',
  'CheckpointSigned',
  'SerialVoided',
  // A batch recipient that got no notice (its id a keyed hash, the reason a code) and a batch's end (counts).
  'NoticeUndelivered',
  'NoticeBatchCompleted',
  // A push's end (delivered, or abandoned after its deadline): ids, agencies, counts and times only.
  'PushDelivered',
  'PushAbandoned',
];

export const SEAL_CATALOG: Readonly<Record<string, SealSpec>> = {
  IndividualNumberIssued: {
    storedVersion: 2,
    keyClass: 'identity',
    subjectField: 'subjectId',
    timeField: 'issuedAt',
    fields: [citizen('subjectId'), hub('residentDigest'), hub('identifiers'), hub('citizenCredentialDigest')],
  },
  IndividualNumberChanged: {
    storedVersion: 2,
    keyClass: 'identity',
    subjectField: 'subjectId',
    timeField: 'changedAt',
    fields: [citizen('subjectId'), hub('identifiers')],
  },
  AgencyCodeIssued: {
    storedVersion: 2,
    keyClass: 'identity',
    subjectField: 'subjectId',
    timeField: 'issuedAt',
    fields: [citizen('subjectId'), own('code', 'agency'), own('acquisitionNumber', 'agency')],
  },
  AgencyCodeReacquired: {
    storedVersion: 2,
    keyClass: 'identity',
    subjectField: 'subjectId',
    timeField: 'reacquiredAt',
    fields: [citizen('subjectId'), own('acquisitionNumber', 'agency')],
  },
  AgencyRegistered: { storedVersion: 2, keyClass: 'identity', timeField: 'registeredAt', fields: [hub('credentialDigest')] },
  AgencyCredentialRotated: { storedVersion: 2, keyClass: 'identity', timeField: 'rotatedAt', fields: [hub('credentialDigest')] },
  QueryAccepted: {
    storedVersion: 2,
    laterVersions: [3],
    keyClass: 'record',
    subjectField: 'subjectId',
    timeField: 'acceptedAt',
    fields: [citizen('subjectId'), own('requesterCode', 'requester')],
  },
  ProvisionRequested: {
    storedVersion: 2,
    laterVersions: [3],
    keyClass: 'record',
    subjectField: 'subjectId',
    timeField: 'requestedAt',
    fields: [citizen('subjectId'), own('providerCode', 'provider'), own('answerPublicKey', 'requester')],
  },
  QueryDenied: {
    storedVersion: 2,
    laterVersions: [3],
    keyClass: 'record',
    subjectField: 'subjectId',
    timeField: 'deniedAt',
    fields: [citizen('subjectId'), own('requesterCode', 'requester')],
  },
  ProvisionAnswered: {
    storedVersion: 2,
    keyClass: 'record',
    subjectField: 'subjectId',
    timeField: 'answeredAt',
    fields: [citizen('subjectId'), own('answerDigest', 'requester', 'provider')],
  },
  NoticeSent: {
    storedVersion: 2,
    // 3: a notice of a nationwide batch (its batchId in clear), sealed as a single notice is.
    laterVersions: [3],
    keyClass: 'record',
    subjectField: 'subjectId',
    timeField: 'sentAt',
    fields: [citizen('subjectId'), own('title', 'citizen', 'agency'), own('body', 'citizen', 'agency')],
  },
  // A nationwide notice batch (一斉お知らせ): its text sealed under the hub's key, opened to the sending agency.
  NoticeBatchStarted: { storedVersion: 1, keyClass: 'record', timeField: 'startedAt', fields: [own('title', 'agency'), own('body', 'agency')] },
  // The person read their notice (on the notice's stream, a serial of its own): the reader sealed like the notice's subject.
  NoticeRead: { storedVersion: 1, keyClass: 'record', subjectField: 'subjectId', timeField: 'readAt', fields: [citizen('subjectId')] },
  // Subscriptions (issue 14): the person and the subscriber's own code sealed; agencies, procedure, items, version and times clear.
  SubscriptionCreated: {
    storedVersion: 1,
    keyClass: 'record',
    subjectField: 'subjectId',
    timeField: 'createdAt',
    fields: [citizen('subjectId'), own('requesterCode', 'requester')],
  },
  SubscriptionCancelled: { storedVersion: 1, keyClass: 'record', subjectField: 'subjectId', timeField: 'cancelledAt', fields: [citizen('subjectId')] },
  SubscriptionExpired: { storedVersion: 1, keyClass: 'record', subjectField: 'subjectId', timeField: 'expiredAt', fields: [citizen('subjectId')] },
  SubscriptionEnded: { storedVersion: 1, keyClass: 'record', subjectField: 'subjectId', timeField: 'endedAt', fields: [citizen('subjectId')] },
  RequestRefused: {
    storedVersion: 1,
    keyClass: 'record',
    subjectField: 'subjectId',
    timeField: 'refusedAt',
    fields: [citizen('subjectId'), hub('presented')],
  },
  UnauthenticatedRequestsRecorded: { storedVersion: 1, keyClass: 'record', timeField: 'intervalEnd', fields: [hub('source')] },
  RateLimitedRequestsRecorded: { storedVersion: 1, keyClass: 'record', timeField: 'intervalEnd', fields: [hub('sources')] },
  KeysShredded: { storedVersion: 1, keyClass: 'identity', timeField: 'shreddedAt', fields: [hub('subject')] },
  // A citizen's sign-in credentials (passkeys, enrolment secrets issued again): identity fields, kept as long as the person.
  CitizenPasskeyEnrolled: {
    storedVersion: 1,
    keyClass: 'identity',
    subjectField: 'subjectId',
    timeField: 'enrolledAt',
    fields: [citizen('subjectId'), citizen('passkeyId'), hub('credential'), citizen('label')],
  },
  CitizenPasskeyRemoved: { storedVersion: 1, keyClass: 'identity', subjectField: 'subjectId', timeField: 'removedAt', fields: [citizen('subjectId'), citizen('passkeyId')] },
  // A provider's report that its copy of items about a person changed (no data): the person sealed.
  CopyUpdated: { storedVersion: 1, keyClass: 'record', subjectField: 'subjectId', timeField: 'reportedAt', fields: [citizen('subjectId')] },
  // One push of a fan-out: the person, the subscriber's own code and its subscription sealed (the subscriber is the requester).
  PushIssued: {
    storedVersion: 1,
    keyClass: 'record',
    subjectField: 'subjectId',
    timeField: 'issuedAt',
    fields: [citizen('subjectId'), own('code', 'requester'), own('subscriptionId', 'requester', 'citizen')],
  },
  CitizenEnrolmentSecretIssued: {
    storedVersion: 1,
    keyClass: 'identity',
    subjectField: 'subjectId',
    timeField: 'issuedAt',
    fields: [citizen('subjectId'), hub('credentialDigest'), hub('reason')],
  },
};

/** The spec of an event type; undefined for clear types. Throws nothing: the sealer decides what unknown means. */
export function sealSpecOf(type: string): SealSpec | undefined {
  return SEAL_CATALOG[type];
}

export function isClearEventType(type: string): boolean {
  return CLEAR_EVENT_TYPES.includes(type);
}
