import { AUTHORIZATION_TABLE_STREAM, SELF_DISCLOSURE_TABLE_STREAM, authorizationTablesDecider, decideAuthorizationTables, decideSelfDisclosureTables, selfDisclosureTablesDecider, type AuthorizationTableEvent, type AuthorizationTablesState, type Evolvable, type SelfDisclosureTablePublished, type SelfDisclosureTablesState } from '#linkage';
import type { TablePublication } from './table-publication.js';

/** The authorization table (who may ask whom for what, per procedure): HUB_AUTHORIZATION_TABLE_FILE. */
export const AUTHORIZATION_TABLE: TablePublication<AuthorizationTablesState, Evolvable<AuthorizationTableEvent>> = {
  name: 'authorization table',
  streamId: AUTHORIZATION_TABLE_STREAM,
  actor: 'system:authorization-table',
  fold: { initialState: authorizationTablesDecider.initialState, evolve: authorizationTablesDecider.evolve, types: new Set(['AuthorizationTablePublished', 'AuthorizationTableWithdrawn']) },
  decide: (table, digest, publishedAt, state) => decideAuthorizationTables({ type: 'PublishAuthorizationTable', data: { table, digest, publishedAt } }, state),
};

/** The self-disclosure table (what each kind of agency shows the person themself): HUB_SELF_DISCLOSURE_TABLE_FILE. */
export const SELF_DISCLOSURE_TABLE: TablePublication<SelfDisclosureTablesState, Evolvable<SelfDisclosureTablePublished>> = {
  name: 'self-disclosure table',
  streamId: SELF_DISCLOSURE_TABLE_STREAM,
  actor: 'system:self-disclosure-table',
  fold: { initialState: selfDisclosureTablesDecider.initialState, evolve: selfDisclosureTablesDecider.evolve, types: new Set(['SelfDisclosureTablePublished']) },
  decide: (table, digest, publishedAt, state) => decideSelfDisclosureTables({ type: 'PublishSelfDisclosureTable', data: { table, digest, publishedAt } }, state),
};
