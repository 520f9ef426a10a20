import { displayTextProblem, type DisplayTextRule } from '#text';
import { validateCorporateNumber, type CorporateNumber } from './check-digits.js';
import type { Decider, Evolvable, NumberingCommand, NumberingEvent } from './decider.js';
import { NumberingError, unreachable } from './errors.js';

/**
 * Corporate number designation (法人番号の指定): one stream per corporate number. Corporate numbers,
 * names and locations are public, so the event carries them in the clear.
 */

export const CORPORATE_KINDS = [
  'stock-company',
  'limited-company',
  'general-partnership',
  'limited-partnership',
  'llc',
  'national-agency',
  'local-government',
  'other',
] as const;
export type CorporateKind = (typeof CORPORATE_KINDS)[number];

/** The Japanese name of each kind, as shown in the public corporate number lookup. */
export const CORPORATE_KIND_LABELS: Readonly<Record<CorporateKind, string>> = {
  'stock-company': '株式会社',
  'limited-company': '有限会社',
  'general-partnership': '合名会社',
  'limited-partnership': '合資会社',
  llc: '合同会社',
  'national-agency': '国の機関',
  'local-government': '地方公共団体',
  other: 'その他',
};

/** Longest name or location accepted, in Unicode code points (a rare kanji outside the BMP counts as one). */
export const MAX_CORPORATE_TEXT_LENGTH = 200;

/** The stream that holds one corporate number's designation. */
export function corporateNumberStreamId(corporateNumber: CorporateNumber): string {
  return `corporate-number-${corporateNumber}`;
}

export interface DesignateCorporateNumberData {
  readonly corporateNumber: string;
  readonly name: string;
  readonly location: string;
  readonly kind: CorporateKind;
  /** ISO-8601 UTC. */
  readonly designatedAt: string;
}
export type DesignateCorporateNumber = NumberingCommand<'DesignateCorporateNumber', DesignateCorporateNumberData>;
export type CorporateNumberCommand = DesignateCorporateNumber;

export interface CorporateNumberDesignatedData {
  readonly corporateNumber: CorporateNumber;
  /** Trimmed of surrounding white space (including U+3000). */
  readonly name: string;
  /** Trimmed of surrounding white space (including U+3000). */
  readonly location: string;
  readonly kind: CorporateKind;
  readonly designatedAt: string;
}
export type CorporateNumberDesignated = NumberingEvent<'CorporateNumberDesignated', CorporateNumberDesignatedData>;
export type CorporateNumberEvent = CorporateNumberDesignated;

export interface UndesignatedCorporateNumber {
  readonly status: 'undesignated';
}

export interface DesignatedCorporateNumber {
  readonly status: 'designated';
  readonly corporateNumber: CorporateNumber;
  readonly name: string;
  readonly location: string;
  readonly kind: CorporateKind;
  readonly designatedAt: string;
}

export type CorporateNumberState = UndesignatedCorporateNumber | DesignatedCorporateNumber;

export function initialCorporateNumberState(): CorporateNumberState {
  return { status: 'undesignated' };
}

export function evolveCorporateNumber(_state: CorporateNumberState, event: Evolvable<CorporateNumberEvent>): CorporateNumberState {
  switch (event.type) {
    case 'CorporateNumberDesignated':
      return { status: 'designated', ...event.data };
    default:
      return unreachable(event.type, 'type');
  }
}

export function decideCorporateNumber(command: CorporateNumberCommand, state: CorporateNumberState): readonly CorporateNumberEvent[] {
  switch (command.type) {
    case 'DesignateCorporateNumber':
      return [designate(command.data, state)];
    default:
      return unreachable(command.type, 'type');
  }
}

export const corporateNumberDecider: Decider<CorporateNumberState, CorporateNumberCommand, CorporateNumberEvent, Evolvable<CorporateNumberEvent>> = {
  initialState: initialCorporateNumberState,
  evolve: evolveCorporateNumber,
  decide: decideCorporateNumber,
};

function designate(c: DesignateCorporateNumberData, state: CorporateNumberState): CorporateNumberDesignated {
  switch (state.status) {
    case 'undesignated':
      break;
    case 'designated':
      throw new NumberingError(
        'CORPORATE_NUMBER_ALREADY_DESIGNATED',
        `corporate number ${state.corporateNumber} was already designated on ${state.designatedAt} to ${state.name}`,
      );
    default:
      return unreachable(state, 'status');
  }
  const v = validateCorporateNumber(c.corporateNumber);
  if (!v.ok) throw new NumberingError(v.code, v.message, { expected: v.expected, actual: v.actual });
  const name = publicText('INVALID_NAME', 'name', c.name);
  const location = publicText('INVALID_LOCATION', 'location', c.location);
  if (!(CORPORATE_KINDS as readonly string[]).includes(c.kind)) {
    throw new NumberingError('INVALID_KIND', `kind must be one of ${CORPORATE_KINDS.join(', ')}`);
  }
  return {
    type: 'CorporateNumberDesignated',
    schemaVersion: 1,
    data: { corporateNumber: v.value, name, location, kind: c.kind, designatedAt: c.designatedAt },
    terminal: 'completed',
  };
}

/** The shared text rule: something visible, no control character or line break (they would break the CSV download). */
export const CORPORATE_TEXT: DisplayTextRule = { max: MAX_CORPORATE_TEXT_LENGTH, surroundingSpace: 'trim' };

function publicText(code: 'INVALID_NAME' | 'INVALID_LOCATION', field: string, raw: string): string {
  const problem = displayTextProblem(raw, CORPORATE_TEXT);
  if (problem !== undefined) throw new NumberingError(code, `${field} ${problem.message}`);
  // Stored trimmed, otherwise as given: the registry shows what the corporation is called, not its NFKC form.
  return raw.trim();
}
