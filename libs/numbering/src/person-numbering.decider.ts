import { validateLocalGovernmentCode, validateMyNumber, type LocalGovernmentCode, type MyNumber } from './check-digits.js';
import type { Decider, Evolvable, NumberingCommand, NumberingEvent } from './decider.js';
import { NumberingError, unreachable } from './errors.js';

/**
 * Person numbering: one stream per resident, keyed by a digest of the resident record code.
 * The plaintext My Number and resident record code appear in an event only inside `identifiers`, which the
 * hub seals under the person's key before it appends (I4, I10: libs/sealing): the stored text holds a
 * commitment and a box, never the number. Every other field is checked not to hold the number. Events
 * carry the number's keyed digest for the uniqueness claim. Logs written before sealing (schemaVersion 1)
 * hold the identifiers in a `sealed` value of the hub's vault instead.
 */

/** Opaque envelope-encrypted identifiers of logs written before sealing (schemaVersion 1). */
export type SealedIdentifiers = Readonly<Record<string, string>>;

/** The identifiers a numbering event seals: the number, the resident record code, the citizen's secret. */
export interface NumberingIdentifiers {
  readonly individualNumber: string;
  readonly residentRecordCode: string;
  /** The citizen's secret issued with the number (kept sealed so that an idempotent retry can answer it again). */
  readonly citizenSecret?: string;
}

export const CHANGE_REASONS = ['leak', 'request', 'other'] as const;
/** Why a number is changed (番号変更): it leaked and may be misused, the person asked, or another lawful reason. */
export type ChangeReason = (typeof CHANGE_REASONS)[number];

/** The stream that holds one resident's numbering history. */
export function personNumberingStreamId(residentDigest: string): string {
  return `person-numbering-${residentDigest}`;
}

/** The ledger-wide uniqueness claim on an issued number: held forever, so a number is never issued twice. */
export function individualNumberClaim(numberDigest: string): string {
  return `individual-number:${numberDigest}`;
}

// ---- commands ----

export interface IssueIndividualNumberData {
  readonly subjectId: string;
  readonly municipalityCode: string;
  /** Looked up by the caller in the municipality list in force. */
  readonly municipalityKnown: boolean;
  /** The freshly generated plaintext, only to check it: it MUST NOT appear in any event. */
  readonly number: MyNumber;
  readonly numberDigest: string;
  readonly residentDigest: string;
  readonly identifiers: NumberingIdentifiers;
  /** SHA-256 (hex) of the citizen's secret issued with the number (their credential for the provision records). */
  readonly citizenCredentialDigest?: string;
  /** ISO-8601 UTC. */
  readonly issuedAt: string;
}
export type IssueIndividualNumber = NumberingCommand<'IssueIndividualNumber', IssueIndividualNumberData>;

export interface ChangeIndividualNumberData {
  readonly reason: ChangeReason;
  /** The new plaintext number, only to check it: it MUST NOT appear in any event. */
  readonly number: MyNumber;
  readonly numberDigest: string;
  readonly identifiers: NumberingIdentifiers;
  /** ISO-8601 UTC. */
  readonly changedAt: string;
}
export type ChangeIndividualNumber = NumberingCommand<'ChangeIndividualNumber', ChangeIndividualNumberData>;

export type PersonNumberingCommand = IssueIndividualNumber | ChangeIndividualNumber;

// ---- events ----

export interface IndividualNumberIssuedData {
  readonly subjectId: string;
  readonly municipalityCode: LocalGovernmentCode;
  readonly numberDigest: string;
  readonly residentDigest: string;
  /** Sealed when appended; absent in logs written before sealing. */
  readonly identifiers?: NumberingIdentifiers;
  /** Logs written before sealing: the identifiers sealed by the hub's vault. */
  readonly sealed?: SealedIdentifiers;
  readonly citizenCredentialDigest?: string;
  readonly issuedAt: string;
}
export type IndividualNumberIssued = NumberingEvent<'IndividualNumberIssued', IndividualNumberIssuedData>;

export interface IndividualNumberChangedData {
  readonly subjectId: string;
  readonly previousNumberDigest: string;
  readonly numberDigest: string;
  /** Sealed when appended; absent in logs written before sealing. */
  readonly identifiers?: NumberingIdentifiers;
  /** Logs written before sealing: the identifiers sealed by the hub's vault. */
  readonly sealed?: SealedIdentifiers;
  readonly reason: ChangeReason;
  readonly changedAt: string;
}
export type IndividualNumberChanged = NumberingEvent<'IndividualNumberChanged', IndividualNumberChangedData>;

export type PersonNumberingEvent = IndividualNumberIssued | IndividualNumberChanged;

// ---- state ----

export interface UnnumberedPerson {
  readonly status: 'unnumbered';
}

export interface NumberedPerson {
  readonly status: 'numbered';
  readonly subjectId: string;
  readonly municipalityCode: LocalGovernmentCode;
  readonly residentDigest: string;
  readonly currentNumberDigest: string;
  /** Every number this person held before the current one, oldest first: the link from old to new numbers. */
  readonly previousNumberDigests: readonly string[];
  readonly issuedAt: string;
  readonly lastChangedAt?: string;
}

export type PersonNumberingState = UnnumberedPerson | NumberedPerson;

export function initialPersonNumberingState(): PersonNumberingState {
  return { status: 'unnumbered' };
}

export function evolvePersonNumbering(state: PersonNumberingState, event: Evolvable<PersonNumberingEvent>): PersonNumberingState {
  switch (event.type) {
    case 'IndividualNumberIssued': {
      const d = event.data;
      return {
        status: 'numbered',
        subjectId: d.subjectId,
        municipalityCode: d.municipalityCode,
        residentDigest: d.residentDigest,
        currentNumberDigest: d.numberDigest,
        previousNumberDigests: [],
        issuedAt: d.issuedAt,
      };
    }
    case 'IndividualNumberChanged': {
      // A change without an issuance cannot be decided; a stream holding one is left as it was.
      if (state.status !== 'numbered') return state;
      const d = event.data;
      return {
        ...state,
        currentNumberDigest: d.numberDigest,
        previousNumberDigests: [...state.previousNumberDigests, d.previousNumberDigest],
        lastChangedAt: d.changedAt,
      };
    }
    default:
      return unreachable(event, 'type');
  }
}

export function decidePersonNumbering(command: PersonNumberingCommand, state: PersonNumberingState): readonly PersonNumberingEvent[] {
  switch (command.type) {
    case 'IssueIndividualNumber':
      return [issue(command.data, state)];
    case 'ChangeIndividualNumber':
      return [change(command.data, state)];
    default:
      return unreachable(command, 'type');
  }
}

export const personNumberingDecider: Decider<PersonNumberingState, PersonNumberingCommand, PersonNumberingEvent, Evolvable<PersonNumberingEvent>> = {
  initialState: initialPersonNumberingState,
  evolve: evolvePersonNumbering,
  decide: decidePersonNumbering,
};

function issue(c: IssueIndividualNumberData, state: PersonNumberingState): IndividualNumberIssued {
  switch (state.status) {
    case 'unnumbered':
      break;
    case 'numbered':
      throw new NumberingError(
        'RESIDENT_ALREADY_NUMBERED',
        `this resident already holds an individual number (issued ${state.issuedAt}); use ChangeIndividualNumber to replace it`,
      );
    default:
      return unreachable(state, 'status');
  }
  const municipality = validateLocalGovernmentCode(c.municipalityCode);
  if (!municipality.ok) {
    throw new NumberingError('UNKNOWN_MUNICIPALITY', `unknown municipality: ${municipality.message}`, {
      expected: municipality.expected,
      actual: municipality.actual,
    });
  }
  if (!c.municipalityKnown) {
    throw new NumberingError(
      'UNKNOWN_MUNICIPALITY',
      `municipality ${c.municipalityCode} is not in the municipality list in force; check the code or update the list`,
    );
  }
  requireGeneratedNumber(c.number);
  requireText('numberDigest', c.numberDigest);
  requireText('residentDigest', c.residentDigest);
  requireText('subjectId', c.subjectId);
  const data: IndividualNumberIssuedData = {
    subjectId: c.subjectId,
    municipalityCode: municipality.value,
    numberDigest: c.numberDigest,
    residentDigest: c.residentDigest,
    identifiers: requireIdentifiers(c.identifiers, c.number),
    ...(c.citizenCredentialDigest === undefined ? {} : { citizenCredentialDigest: requireSha256(c.citizenCredentialDigest) }),
    issuedAt: c.issuedAt,
  };
  requireNoPlaintext('IndividualNumberIssued', c.number, data);
  return {
    type: 'IndividualNumberIssued',
    schemaVersion: 1,
    data,
    terminal: 'completed',
    claims: [individualNumberClaim(c.numberDigest)],
  };
}

function change(c: ChangeIndividualNumberData, state: PersonNumberingState): IndividualNumberChanged {
  switch (state.status) {
    case 'numbered':
      break;
    case 'unnumbered':
      throw new NumberingError('RESIDENT_NOT_NUMBERED', 'this resident holds no individual number yet; issue one before changing it');
    default:
      return unreachable(state, 'status');
  }
  if (!(CHANGE_REASONS as readonly string[]).includes(c.reason)) {
    throw new NumberingError('MALFORMED', `change reason must be one of ${CHANGE_REASONS.join(', ')}`);
  }
  requireGeneratedNumber(c.number);
  requireText('numberDigest', c.numberDigest);
  if (c.numberDigest === state.currentNumberDigest || state.previousNumberDigests.includes(c.numberDigest)) {
    throw new NumberingError(
      'NUMBER_UNCHANGED',
      `the new number was already held by this resident; a number is never issued again: generate a fresh one`,
    );
  }
  const data: IndividualNumberChangedData = {
    subjectId: state.subjectId,
    previousNumberDigest: state.currentNumberDigest,
    numberDigest: c.numberDigest,
    identifiers: requireIdentifiers(c.identifiers, c.number),
    reason: c.reason,
    changedAt: c.changedAt,
  };
  requireNoPlaintext('IndividualNumberChanged', c.number, data);
  return {
    type: 'IndividualNumberChanged',
    schemaVersion: 1,
    data,
    terminal: 'completed',
    claims: [individualNumberClaim(c.numberDigest)],
  };
}

/** Defensive: the caller generated the number, so a failure here means its generator is broken. The message never echoes the number. */
function requireGeneratedNumber(number: MyNumber): void {
  const v = validateMyNumber(number);
  if (v.ok) return;
  if (v.code === 'MALFORMED') {
    throw new NumberingError('MALFORMED', `the generated individual number is malformed (${v.message.replace(/^individual number /, '')}); check the number generator`);
  }
  throw new NumberingError(
    'CHECK_DIGIT_MISMATCH',
    `the generated individual number fails its check digit: check digit is ${v.actual}, expected ${v.expected}; check the number generator`,
    { expected: v.expected, actual: v.actual },
  );
}

function requireSha256(value: string): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw new NumberingError('MALFORMED', 'citizenCredentialDigest must be a lowercase hex SHA-256 digest');
  return value;
}

function requireText(field: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new NumberingError('MALFORMED', `${field} must be a non-empty string`);
  }
}

/** The identifiers to seal: exactly the number being issued, a resident record code, and an optional secret. */
function requireIdentifiers(identifiers: NumberingIdentifiers, number: MyNumber): NumberingIdentifiers {
  if (typeof identifiers !== 'object' || identifiers === null || identifiers.individualNumber !== number) {
    throw new NumberingError('MALFORMED', 'identifiers.individualNumber must be the number being issued');
  }
  if (typeof identifiers.residentRecordCode !== 'string' || !/^\d{11}$/.test(identifiers.residentRecordCode)) {
    throw new NumberingError('MALFORMED', 'identifiers.residentRecordCode must be the resident\'s 11-digit resident record code');
  }
  if (identifiers.citizenSecret !== undefined && typeof identifiers.citizenSecret !== 'string') throw new NumberingError('MALFORMED', 'identifiers.citizenSecret must be a string');
  return {
    individualNumber: identifiers.individualNumber,
    residentRecordCode: identifiers.residentRecordCode,
    ...(identifiers.citizenSecret === undefined ? {} : { citizenSecret: identifiers.citizenSecret }),
  };
}

/**
 * I4 guard: refuses to emit an event whose data holds the plaintext number anywhere but in `identifiers`
 * (the one field the hub seals); e.g. a "digest" that is not one.
 */
function requireNoPlaintext(eventType: string, number: MyNumber, data: { readonly identifiers?: unknown }): void {
  const { identifiers, ...rest } = data;
  void identifiers;
  if (JSON.stringify(rest).includes(number)) {
    throw new NumberingError(
      'PLAINTEXT_NUMBER_IN_EVENT',
      `refusing to emit ${eventType}: a field of its data other than identifiers contains the plaintext individual number; pass its digest instead`,
    );
  }
}
