import type { AgencyFacts } from './agency-registry.decider.js';
import type { Decider, Evolvable, LinkageCommand, LinkageEvent } from './decider.js';
import { LinkageError, unreachable } from './errors.js';
import {
  looksLikePersonalIdentifier,
  requireAgencyCode,
  requireAgencyId,
  requireInstant,
  requireSubjectId,
  type AgencyCode,
  type AgencyId,
  type AgencyKind,
  type SubjectId,
} from './identifiers.js';

/**
 * Agency codes (機関別符号, I7): one stream per (subject, agency), `agency-code-<stream key>`, where the
 * caller makes the stream key a keyed digest of the pair (I10: the stream id links to nothing else of the
 * person). Logs written before that named the stream `agency-code-<subjectId>-<agencyId>`
 * (`legacyAgencyCodeStreamId`); their streams are continued, not duplicated.
 *
 * An agency presents a person's My Number once, with its own acquisition number (取得番号). The caller
 * resolves the subject from the number's digest BEFORE deciding, so no command or event here ever holds a
 * My Number or resident record code (I4). The first acquisition issues a code: random (drawn by the
 * caller, see agencyCodeFromRandomBytes), unique ledger-wide through a claim, unrelated to every other
 * agency's code for the person.
 *
 * Acquiring again returns the same code. Decision: every acquisition is a use of the My Number, so each
 * one with a new acquisition number is recorded (`AgencyCodeReacquired`, its own serial, no code in it);
 * a retry with an acquisition number already recorded decides nothing (`[]`) and the caller answers with
 * `issuedCode(state)` and the serial of the event that recorded that acquisition number.
 */

/** The stream of one (person, agency) pair; `streamKey` is the caller's keyed digest of the pair. */
export function agencyCodeStreamId(streamKey: string): string {
  return `agency-code-${streamKey}`;
}

/** The stream name of logs written before the stream key existed (it named the subject in clear). */
export function legacyAgencyCodeStreamId(subjectId: SubjectId, agencyId: AgencyId): string {
  return `agency-code-${subjectId}-${agencyId}`;
}

/**
 * Held forever by the issuing event: the ledger refuses a second event claiming the same code, so a drawn
 * duplicate is retried. `codeDigest` is the caller's keyed digest of the code (the code itself is sealed).
 */
export function agencyCodeClaim(codeDigest: string): string {
  return `agency-code:${codeDigest}`;
}

const ACQUISITION_NUMBER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

// ---- commands ----

export interface AcquireAgencyCodeData {
  /** Resolved by the caller from the My Number's digest; the number itself stays out of the command. */
  readonly subjectId: string;
  readonly agencyId: string;
  /** The acquiring agency as the registry has it (looked up by the caller); undefined when unknown. */
  readonly agency: AgencyFacts | undefined;
  /** The agency's own reference for this acquisition (取得番号): 1–64 letters, digits, '.', '_', '-'. */
  readonly acquisitionNumber: string;
  /** A fresh random code from the caller; used only when no code exists yet. */
  readonly candidateCode: string;
  /** The caller's keyed digest of `candidateCode`: the uniqueness claim holds this, never the code. */
  readonly candidateCodeDigest: string;
  readonly acquiredAt: string;
}
export type AcquireAgencyCode = LinkageCommand<'AcquireAgencyCode', AcquireAgencyCodeData>;
export type AgencyCodeCommand = AcquireAgencyCode;

// ---- events ----

export interface AgencyCodeIssuedData {
  readonly subjectId: SubjectId;
  readonly agencyId: AgencyId;
  readonly agencyKind: AgencyKind;
  readonly code: AgencyCode;
  readonly acquisitionNumber: string;
  readonly issuedAt: string;
}
export type AgencyCodeIssued = LinkageEvent<'AgencyCodeIssued', AgencyCodeIssuedData>;

export interface AgencyCodeReacquiredData {
  readonly subjectId: SubjectId;
  readonly agencyId: AgencyId;
  readonly acquisitionNumber: string;
  readonly reacquiredAt: string;
}
export type AgencyCodeReacquired = LinkageEvent<'AgencyCodeReacquired', AgencyCodeReacquiredData>;

export type AgencyCodeEvent = AgencyCodeIssued | AgencyCodeReacquired;

// ---- state ----

export interface NoAgencyCode {
  readonly status: 'none';
}
export interface IssuedAgencyCode {
  readonly status: 'issued';
  readonly subjectId: SubjectId;
  readonly agencyId: AgencyId;
  readonly code: AgencyCode;
  /** Every acquisition number recorded for this code, oldest first. */
  readonly acquisitionNumbers: readonly string[];
  readonly issuedAt: string;
}
export type AgencyCodeState = NoAgencyCode | IssuedAgencyCode;

export function initialAgencyCodeState(): AgencyCodeState {
  return { status: 'none' };
}

/** The code the caller answers with after deciding (whether or not the decision appended anything). */
export function issuedCode(state: AgencyCodeState): AgencyCode | undefined {
  return state.status === 'issued' ? state.code : undefined;
}

export function evolveAgencyCode(state: AgencyCodeState, event: Evolvable<AgencyCodeEvent>): AgencyCodeState {
  switch (event.type) {
    case 'AgencyCodeIssued': {
      const d = event.data;
      return { status: 'issued', subjectId: d.subjectId, agencyId: d.agencyId, code: d.code, acquisitionNumbers: [d.acquisitionNumber], issuedAt: d.issuedAt };
    }
    case 'AgencyCodeReacquired':
      if (state.status !== 'issued') return state;
      return { ...state, acquisitionNumbers: [...state.acquisitionNumbers, event.data.acquisitionNumber] };
    default:
      return unreachable(event, 'type');
  }
}

export function decideAgencyCode(command: AgencyCodeCommand, state: AgencyCodeState): readonly AgencyCodeEvent[] {
  switch (command.type) {
    case 'AcquireAgencyCode':
      return acquire(command.data, state);
    default:
      return unreachable(command.type, 'type');
  }
}

export const agencyCodeDecider: Decider<AgencyCodeState, AgencyCodeCommand, AgencyCodeEvent, Evolvable<AgencyCodeEvent>> = {
  initialState: initialAgencyCodeState,
  evolve: evolveAgencyCode,
  decide: decideAgencyCode,
};

function acquire(c: AcquireAgencyCodeData, state: AgencyCodeState): readonly AgencyCodeEvent[] {
  const subjectId = requireSubjectId(c.subjectId);
  const agencyId = requireAgencyId(c.agencyId);
  const acquiredAt = requireInstant(c.acquiredAt, 'acquiredAt');
  const acquisitionNumber = requireAcquisitionNumber(c.acquisitionNumber);
  const agency = c.agency;
  if (agency === undefined || agency.agencyId !== agencyId) {
    throw new LinkageError('AGENCY_NOT_REGISTERED', `agency ${agencyId} is not registered; only a registered agency can acquire codes`, { agencyId });
  }
  if (agency.status === 'revoked') {
    throw new LinkageError('AGENCY_REVOKED', `agency ${agencyId} is revoked and can no longer acquire codes`, { agencyId });
  }
  switch (state.status) {
    case 'none': {
      const code = requireAgencyCode(c.candidateCode, 'candidateCode');
      return [
        {
          type: 'AgencyCodeIssued',
          schemaVersion: 1,
          data: { subjectId, agencyId, agencyKind: agency.kind, code, acquisitionNumber, issuedAt: acquiredAt },
          terminal: 'completed',
          claims: [agencyCodeClaim(requireClaimDigest(c.candidateCodeDigest))],
        },
      ];
    }
    case 'issued':
      if (state.subjectId !== subjectId || state.agencyId !== agencyId) {
        throw new LinkageError('STREAM_MISMATCH', 'the command names another subject or agency than the stream it was decided on; load agencyCodeStreamId(subjectId, agencyId)');
      }
      if (state.acquisitionNumbers.includes(acquisitionNumber)) return [];
      return [
        {
          type: 'AgencyCodeReacquired',
          schemaVersion: 1,
          data: { subjectId, agencyId, acquisitionNumber, reacquiredAt: acquiredAt },
          terminal: 'completed',
        },
      ];
    default:
      return unreachable(state, 'status');
  }
}

function requireClaimDigest(value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{32,64}$/.test(value)) {
    throw new LinkageError('INVALID_DIGEST', 'candidateCodeDigest must be the caller\'s keyed digest of the candidate code (32–64 lowercase hex)');
  }
  return value;
}

function requireAcquisitionNumber(value: unknown): string {
  if (typeof value !== 'string' || !ACQUISITION_NUMBER.test(value)) {
    throw new LinkageError('INVALID_ACQUISITION_NUMBER', 'acquisitionNumber (取得番号) must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  if (looksLikePersonalIdentifier(value)) {
    throw new LinkageError(
      'PERSONAL_IDENTIFIER_IN_EVENT',
      'acquisitionNumber has the shape of a My Number (12 digits) or resident record code (11 digits) and would be kept in the log; use the agency\'s own reference number instead',
    );
  }
  return value;
}
