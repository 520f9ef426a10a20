export { ProjectionError } from './errors.js';
export type { ProjectionErrorCode } from './errors.js';
export {
  PROVISION_KINDS,
  PROVISION_STATUSES,
  SELF_INFORMATION_NAME,
  SELF_INFORMATION_PROCEDURE,
  ProvisionFoldState,
  isSelfInformation,
  bySerial,
  foldProvisionRecords,
  pickTableInForce,
  provisionChange,
  tableEntry,
  utcInstant,
} from './provision-record.js';
export type { AgencyEntry, AgencyRef, NamedCode, ProvisionChange, ProvisionFoldLookup, ProvisionKind, ProvisionRecord, ProvisionStatus, TableEntry } from './provision-record.js';
export type { Projection, ProvisionRecordStore } from './provision-store.port.js';
export { InMemoryProvisionStore } from './in-memory-provision-store.js';
export { PROJECTIONS_FILE, PROVISION_DDL, PROVISION_LAYOUT_VERSION, SqliteProvisionStore } from './sqlite-provision-store.js';
export type { SqliteProvisionStoreOptions } from './sqlite-provision-store.js';
export { RecordDigest } from './digest.js';
export { DEFAULT_AGENCY_LIMIT, DEFAULT_CITIZEN_LIMIT, MAX_AGENCY_LIMIT, MAX_CITIZEN_LIMIT, RETENTION_YEARS, citizenRecord, monthJst, monthRangeMs, retentionStartMs } from './views.js';
export type {
  AgencyRecord,
  AgencyRecordsOptions,
  AgencyRecordsPage,
  AgencyRole,
  CitizenAgency,
  CitizenMonth,
  CitizenMonthsOptions,
  CitizenRecord,
  CitizenRecordsOptions,
  CitizenRecordsPage,
  MonthlyCount,
  MonthlyCountsOptions,
} from './views.js';
export { catchUp, follow, rebuild } from './projection-runner.js';
export type { CatchUpOptions, FollowOptions } from './projection-runner.js';
export {
  CORPORATE_CSV_HEADER,
  CORPORATE_REGISTRY_FILE,
  CORPORATE_REGISTRY_LAYOUT_VERSION,
  CORPORATE_STATUSES,
  DEFAULT_CORPORATE_LIMIT,
  MAX_CORPORATE_LIMIT,
  SqliteCorporateRegistry,
  corporateCsvLine,
  foldForSearch,
} from './corporate-registry.js';
export type { CorporatePage, CorporateSearch, CorporateStatus, Corporation } from './corporate-registry.js';
export { DEFAULT_NOTICE_LIMIT, MAX_NOTICE_LIMIT, NOTICE_INBOX_FILE, NOTICE_INBOX_LAYOUT_VERSION, SqliteNoticeInbox } from './notice-inbox.js';
export type { NoticeInboxOptions, NoticePage, StoredNotice } from './notice-inbox.js';
export { SqliteFold } from './sqlite-fold.js';
export type { FoldRow, SqliteFoldOptions, SqliteFoldShape } from './sqlite-fold.js';
export { CITIZEN_CSV_COLUMNS, CITIZEN_CSV_HEADER, CSV_BOM, KIND_LABELS, OUTCOME_LABELS, SELF_REQUESTER_LABEL, citizenCsvLine } from './citizen-csv.js';
