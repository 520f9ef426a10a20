import { displayTextProblem, type DisplayTextRule } from '#text';
import { validateCorporateNumber, type CorporateNumber } from './check-digits.js';
import type { Decider, Evolvable, NumberingCommand, NumberingEvent } from './decider.js';
import { NumberingError, unreachable } from './errors.js';

/**
 * Corporate numbers (法人番号): designation (指定), changes of name or location (商号・所在地の変更) and
 * closure (閉鎖), one stream per corporate number, each command a serial of its own. Corporate numbers,
 * names, locations and the reasons of changes are public, so the events carry them in the clear.
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

export interface ChangeCorporateNumberData {
  readonly corporateNumber: string;
  /** The new name (商号又は名称), if it changes. */
  readonly name?: string;
  /** The new location (本店又は主たる事務所の所在地), if it changes. */
  readonly location?: string;
  /** Why (変更事由), free text. */
  readonly reason: string;
  /** The day the change took effect (変更年月日), YYYY-MM-DD. */
  readonly effectiveOn: string;
  /** When the hub recorded it, ISO-8601 UTC. */
  readonly changedAt: string;
}
export type ChangeCorporateNumber = NumberingCommand<'ChangeCorporateNumber', ChangeCorporateNumberData>;

export interface CloseCorporateNumberData {
  readonly corporateNumber: string;
  /** Why (登記記録の閉鎖等の事由: 清算の結了, 合併による解散, …), free text. */
  readonly reason: string;
  /** The day of the closure (登記記録の閉鎖等年月日), YYYY-MM-DD. */
  readonly closedOn: string;
  /** When the hub recorded it, ISO-8601 UTC. */
  readonly closedAt: string;
}
export type CloseCorporateNumber = NumberingCommand<'CloseCorporateNumber', CloseCorporateNumberData>;

export type CorporateNumberCommand = DesignateCorporateNumber | ChangeCorporateNumber | CloseCorporateNumber;

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

/** One changed value: what it was and what it is from the change on. */
export interface CorporateValueChange {
  readonly previous: string;
  readonly current: string;
}

/** A change of name or location (商号・所在地の変更): one entry of the public change history. */
export interface CorporateChange {
  /** Present when the name changed. */
  readonly name?: CorporateValueChange;
  /** Present when the location changed. */
  readonly location?: CorporateValueChange;
  readonly reason: string;
  /** YYYY-MM-DD: the day it took effect. */
  readonly effectiveOn: string;
  /** ISO-8601 UTC: when the hub recorded it. */
  readonly changedAt: string;
}

export interface CorporateNumberChangedData extends CorporateChange {
  readonly corporateNumber: CorporateNumber;
}
export type CorporateNumberChanged = NumberingEvent<'CorporateNumberChanged', CorporateNumberChangedData>;

/** A closure (閉鎖): the corporation's registry record closed; its number stays designated and public, never reused. */
export interface CorporateClosure {
  readonly reason: string;
  /** YYYY-MM-DD: the day of the closure. */
  readonly closedOn: string;
  /** ISO-8601 UTC: when the hub recorded it. */
  readonly closedAt: string;
}

export interface CorporateNumberClosedData extends CorporateClosure {
  readonly corporateNumber: CorporateNumber;
}
export type CorporateNumberClosed = NumberingEvent<'CorporateNumberClosed', CorporateNumberClosedData>;

export type CorporateNumberEvent = CorporateNumberDesignated | CorporateNumberChanged | CorporateNumberClosed;

/** The change history as the registry shows it: the entry of one change event. */
export function corporateChangeEntry(data: CorporateNumberChangedData): CorporateChange {
  return {
    ...(data.name === undefined ? {} : { name: data.name }),
    ...(data.location === undefined ? {} : { location: data.location }),
    reason: data.reason,
    effectiveOn: data.effectiveOn,
    changedAt: data.changedAt,
  };
}

/** The closure as the registry shows it. */
export function corporateClosureEntry(data: CorporateNumberClosedData): CorporateClosure {
  return { reason: data.reason, closedOn: data.closedOn, closedAt: data.closedAt };
}

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
  /** The changes of name or location, oldest first. */
  readonly history: readonly CorporateChange[];
  /** Null while the corporation is active. */
  readonly closure: CorporateClosure | null;
}

export type CorporateNumberState = UndesignatedCorporateNumber | DesignatedCorporateNumber;

export function initialCorporateNumberState(): CorporateNumberState {
  return { status: 'undesignated' };
}

export function evolveCorporateNumber(state: CorporateNumberState, event: Evolvable<CorporateNumberEvent>): CorporateNumberState {
  switch (event.type) {
    case 'CorporateNumberDesignated': {
      const { corporateNumber, name, location, kind, designatedAt } = event.data;
      return { status: 'designated', corporateNumber, name, location, kind, designatedAt, history: [], closure: null };
    }
    case 'CorporateNumberChanged': {
      if (state.status !== 'designated') return state;
      const change = corporateChangeEntry(event.data);
      return {
        ...state,
        name: change.name?.current ?? state.name,
        location: change.location?.current ?? state.location,
        history: [...state.history, change],
      };
    }
    case 'CorporateNumberClosed':
      return state.status === 'designated' ? { ...state, closure: corporateClosureEntry(event.data) } : state;
    default:
      return unreachable(event, 'type');
  }
}

export function decideCorporateNumber(command: CorporateNumberCommand, state: CorporateNumberState): readonly CorporateNumberEvent[] {
  switch (command.type) {
    case 'DesignateCorporateNumber':
      return [designate(command.data, state)];
    case 'ChangeCorporateNumber':
      return [change(command.data, state)];
    case 'CloseCorporateNumber':
      return [close(command.data, state)];
    default:
      return unreachable(command, 'type');
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

/** The corporation a change or closure is about: designated and not closed. */
function activeCorporation(corporateNumber: string, state: CorporateNumberState): DesignatedCorporateNumber {
  const v = validateCorporateNumber(corporateNumber);
  if (!v.ok) throw new NumberingError(v.code, v.message, { expected: v.expected, actual: v.actual });
  switch (state.status) {
    case 'undesignated':
      throw new NumberingError('CORPORATE_NUMBER_NOT_FOUND', `no corporate number ${v.value} has been designated`);
    case 'designated':
      break;
    default:
      return unreachable(state, 'status');
  }
  if (state.closure !== null) {
    throw new NumberingError('CORPORATE_NUMBER_CLOSED', `corporate number ${state.corporateNumber} was closed on ${state.closure.closedOn}; a closed record takes no change or closure`);
  }
  return state;
}

function change(c: ChangeCorporateNumberData, state: CorporateNumberState): CorporateNumberChanged {
  const current = activeCorporation(c.corporateNumber, state);
  const name = c.name === undefined ? undefined : publicText('INVALID_NAME', 'name', c.name);
  const location = c.location === undefined ? undefined : publicText('INVALID_LOCATION', 'location', c.location);
  const reason = publicText('INVALID_REASON', 'reason', c.reason);
  if (name === undefined && location === undefined) throw new NumberingError('NOTHING_TO_UPDATE', 'give the new name, the new location, or both');
  const nameChange = name !== undefined && name !== current.name ? { previous: current.name, current: name } : undefined;
  const locationChange = location !== undefined && location !== current.location ? { previous: current.location, current: location } : undefined;
  if (nameChange === undefined && locationChange === undefined) {
    throw new NumberingError('NOTHING_TO_UPDATE', `the name and location given are those corporate number ${current.corporateNumber} already has`);
  }
  const effectiveOn = dayOfEffect('effectiveOn', c.effectiveOn, current, c.changedAt);
  return {
    type: 'CorporateNumberChanged',
    schemaVersion: 1,
    data: {
      corporateNumber: current.corporateNumber,
      ...(nameChange === undefined ? {} : { name: nameChange }),
      ...(locationChange === undefined ? {} : { location: locationChange }),
      reason,
      effectiveOn,
      changedAt: c.changedAt,
    },
    terminal: 'completed',
  };
}

function close(c: CloseCorporateNumberData, state: CorporateNumberState): CorporateNumberClosed {
  const current = activeCorporation(c.corporateNumber, state);
  const reason = publicText('INVALID_REASON', 'reason', c.reason);
  const closedOn = dayOfEffect('closedOn', c.closedOn, current, c.closedAt);
  return {
    type: 'CorporateNumberClosed',
    schemaVersion: 1,
    data: { corporateNumber: current.corporateNumber, reason, closedOn, closedAt: c.closedAt },
    terminal: 'completed',
  };
}

const DAY_MS = 86_400_000;

/** The civil date (proleptic Gregorian, YYYY-MM-DD) of a day number since 1970-01-01 (H. Hinnant's algorithm). */
function civilDay(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** The Japan-time calendar day (YYYY-MM-DD) of an ISO-8601 instant. */
export function japanDay(instant: string): string {
  return civilDay(Math.floor((Date.parse(instant) + 9 * 3_600_000) / DAY_MS));
}

/** A real calendar day YYYY-MM-DD (no 2026-02-30). */
export function isCalendarDay(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const t = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(t) && civilDay(Math.floor(t / DAY_MS)) === text;
}

/**
 * The day a change or closure took effect: a calendar day, not before the designation (Japan time) nor
 * before the latest change (the history stays in order), and not after the day it is recorded (Japan time).
 */
function dayOfEffect(field: 'effectiveOn' | 'closedOn', day: string, current: DesignatedCorporateNumber, recordedAt: string): string {
  if (!isCalendarDay(day)) throw new NumberingError('INVALID_EFFECTIVE_DATE', `${field} must be a calendar day YYYY-MM-DD`);
  const designated = japanDay(current.designatedAt);
  if (day < designated) throw new NumberingError('INVALID_EFFECTIVE_DATE', `${field} ${day} is before the designation on ${designated}`);
  const latest = current.history.at(-1)?.effectiveOn;
  if (latest !== undefined && day < latest) throw new NumberingError('INVALID_EFFECTIVE_DATE', `${field} ${day} is before the latest change, effective on ${latest}`);
  const today = japanDay(recordedAt);
  if (day > today) throw new NumberingError('INVALID_EFFECTIVE_DATE', `${field} ${day} is after today (${today}, Japan time); record a change once it took effect`);
  return day;
}

/** The shared text rule: something visible, no control character or line break (they would break the CSV download). */
export const CORPORATE_TEXT: DisplayTextRule = { max: MAX_CORPORATE_TEXT_LENGTH, surroundingSpace: 'trim' };

function publicText(code: 'INVALID_NAME' | 'INVALID_LOCATION' | 'INVALID_REASON', field: string, raw: string): string {
  const problem = displayTextProblem(raw, CORPORATE_TEXT);
  if (problem !== undefined) throw new NumberingError(code, `${field} ${problem.message}`);
  // Stored trimmed, otherwise as given: the registry shows what the corporation is called, not its NFKC form.
  return raw.trim();
}
