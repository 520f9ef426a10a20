import { join } from 'node:path';
import type { RecordedEvent } from '#ledger';
import { CORPORATE_REGISTRY_FILE, NOTICE_INBOX_FILE, PROJECTIONS_FILE, SqliteCorporateRegistry, SqliteNoticeInbox, SqliteProvisionStore } from '#projections';
import type { EventSealer } from '#sealing';
import { NOTICE_BATCHES_FILE, SqliteNoticeBatches } from '../notices/notice-batch.store.js';
import { PUSHES_FILE, PushStore } from '../pushes/push-store.js';
import { SUBSCRIPTION_INDEX_FILE, SqliteSubscriptionIndex } from '../subscriptions/subscription-index.js';
import type { FollowedStore } from './followed-projection.js';

/**
 * The files of the projections the hub follows (FollowedProjection), each opened as the hub opens it: one
 * place for their paths and folds, shared by the hub's services and by a writer that appends a log in bulk
 * and keeps these files at its head as it goes (bench/support/population-log.ts), so that a hub started on
 * that log resumes each from its checkpoint instead of reading the log from its start.
 */

/** The event types the provision records fold reads opened (its only sealed field it needs: an erasure's subject). */
export const PROVISION_OPENED_TYPES: ReadonlySet<string> = new Set(['KeysShredded']);

/** How the provision records file a person: by the id of their key, never the subject id (the auditor's replay does the same). */
export function provisionPeople(sealer: EventSealer): { subjectRef: (subjectId: string) => string; personOf: (event: RecordedEvent) => string | null | 'shredded' } {
  return { subjectRef: (subjectId) => sealer.personRef(subjectId), personOf: (event) => sealer.referenceOf(event) };
}

/** How a person-keyed fold refers to people and opens what it must (notices, subscriptions). */
function personFold(sealer: EventSealer) {
  return { subjectRef: (s: string) => sealer.personRef(s), personOf: (e: RecordedEvent) => sealer.referenceOf(e), open: (e: RecordedEvent) => sealer.open(e).event };
}

export const openProvisionRecords = (dataDir: string, sealer: EventSealer) => new SqliteProvisionStore({ path: join(dataDir, PROJECTIONS_FILE), ...provisionPeople(sealer) });
export const openPushes = (dataDir: string, sealer: EventSealer) => new PushStore(join(dataDir, PUSHES_FILE), (event) => sealer.referenceOf(event));
export const openCorporateRegistry = (dataDir: string) => new SqliteCorporateRegistry({ path: join(dataDir, CORPORATE_REGISTRY_FILE) });
export const openNoticeInbox = (dataDir: string, sealer: EventSealer) => new SqliteNoticeInbox({ path: join(dataDir, NOTICE_INBOX_FILE), ...personFold(sealer) });
export const openNoticeBatches = (dataDir: string) => new SqliteNoticeBatches({ path: join(dataDir, NOTICE_BATCHES_FILE) });
export const openSubscriptionIndex = (dataDir: string, sealer: EventSealer) => new SqliteSubscriptionIndex({ path: join(dataDir, SUBSCRIPTION_INDEX_FILE), ...personFold(sealer) });

/** One followed projection's file, opened, with the event types it is given opened (the rest as stored). */
export interface OpenedFollowedStore {
  readonly name: string;
  readonly store: FollowedStore;
  readonly opens?: ReadonlySet<string>;
}

/** Every projection file the hub follows, opened on `dataDir` (the caller closes them). */
export function openFollowedStores(dataDir: string, sealer: EventSealer): OpenedFollowedStore[] {
  return [
    { name: 'ProvisionRecords', store: openProvisionRecords(dataDir, sealer), opens: PROVISION_OPENED_TYPES },
    { name: 'PushProjection', store: openPushes(dataDir, sealer) },
    { name: 'CorporateRegistry', store: openCorporateRegistry(dataDir) },
    { name: 'NoticeInbox', store: openNoticeInbox(dataDir, sealer) },
    { name: 'NoticeBatchProgress', store: openNoticeBatches(dataDir) },
    { name: 'SubscriptionDirectory', store: openSubscriptionIndex(dataDir, sealer) },
  ];
}
