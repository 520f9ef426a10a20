export {
  corporateNumberCheckDigit,
  corporateNumberFromBase,
  individualNumberCheckDigit,
  individualNumberFromRandomBase,
  individualNumberRemainder,
  localGovernmentCodeCheckDigit,
  validateCorporateNumber,
  validateLocalGovernmentCode,
  validateMyNumber,
  validateResidentRecordCode,
  valueOrThrow,
} from './check-digits.js';
export type {
  CorporateNumber,
  LocalGovernmentCode,
  MyNumber,
  ResidentRecordCode,
  Validation,
  ValidationFailure,
  ValidationFailureCode,
  ValidationSuccess,
} from './check-digits.js';
export { NumberingError } from './errors.js';
export type { NumberingErrorCode, NumberingErrorDetails } from './errors.js';
export type { Decider, Evolvable, NumberingCommand, NumberingEvent } from './decider.js';
export {
  CHANGE_REASONS,
  decidePersonNumbering,
  evolvePersonNumbering,
  individualNumberClaim,
  initialPersonNumberingState,
  personNumberingDecider,
  personNumberingStreamId,
} from './person-numbering.decider.js';
export type {
  ChangeIndividualNumber,
  ChangeIndividualNumberData,
  ChangeReason,
  IndividualNumberChanged,
  IndividualNumberChangedData,
  IndividualNumberIssued,
  IndividualNumberIssuedData,
  IssueIndividualNumber,
  IssueIndividualNumberData,
  NumberedPerson,
  PersonNumberingCommand,
  PersonNumberingEvent,
  PersonNumberingState,
  SealedIdentifiers,
  NumberingIdentifiers,
  UnnumberedPerson,
} from './person-numbering.decider.js';
export {
  CORPORATE_KIND_LABELS,
  CORPORATE_KINDS,
  CORPORATE_TEXT,
  MAX_CORPORATE_TEXT_LENGTH,
  corporateNumberDecider,
  corporateNumberStreamId,
  decideCorporateNumber,
  evolveCorporateNumber,
  initialCorporateNumberState,
} from './corporate-number.decider.js';
export type {
  CorporateKind,
  CorporateNumberCommand,
  CorporateNumberDesignated,
  CorporateNumberDesignatedData,
  CorporateNumberEvent,
  CorporateNumberState,
  DesignateCorporateNumber,
  DesignateCorporateNumberData,
  DesignatedCorporateNumber,
  UndesignatedCorporateNumber,
} from './corporate-number.decider.js';
export { PREFECTURES, indexMunicipalities, parseMunicipalityList } from './municipalities.js';
export type { Municipality, MunicipalityList, Prefecture } from './municipalities.js';
