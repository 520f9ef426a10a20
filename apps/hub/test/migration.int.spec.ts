import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore, type NewEvent } from '#ledger';
import { agencyCodeFromRandomBytes, queryStreamId } from '#linkage';
import { individualNumberFromRandomBase } from '#numbering';
import { generateAnswerKeyPair } from '#sealed-answer';
import { replayProvisionRecords } from '../../auditor/src/replay/replay-provision-records.js';
import { verifyLog } from '../../auditor/src/verify/verify-log.js';
import { IdentifierVault } from '../src/vault/identifier-vault.js';
import { loadOrCreateVaultKeys } from '../src/vault/vault-keys.js';
import { FakeProvider, MURORAN_CITY, PENSION, bearer, startLinkageHub } from './support/linkage-fixture.js';
import { readKey } from './support/read-key.js';
import { MURORAN, nextResidentRecordCode, type TestHub } from './support/test-hub.js';

/**
 * A log written before personal fields were sealed (schemaVersion 1 events: subject ids and codes in
 * clear, numbers in the vault's own sealed value) still verifies and replays, and a hub started on it
 * reads both forms: people, codes, records and notices of before carry on, and what it appends now is sealed.
 */
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const T0 = '2026-04-01T00:00:00.000Z';
/**
 * The hubs of this test publish authorization table version 1, the version the old log's query was accepted
 * under: the default table (version 2, in force from 2026-04-01T00:00+09:00) would precede T0 and make that
 * query unlawful to the verifier, which is not what a log of the previous release looks like.
 */
const TABLE_V1 = { HUB_AUTHORIZATION_TABLE_FILE: join(import.meta.dirname, '../../../schemas/authorization/authorization-table.v1.json') };

let dataDir: string;
let hub: TestHub;
const muroranNode = new FakeProvider();
const pensionToken = randomBytes(32).toString('base64url');
const muroranToken = randomBytes(32).toString('base64url');
const citizenSecret = randomBytes(32).toString('base64url');
const individualNumber = individualNumberFromRandomBase('27182818284');
const residentRecordCode = nextResidentRecordCode();
const subjectId = randomUUID();
const pensionCode = agencyCodeFromRandomBytes(randomBytes(16));
const muroranCode = agencyCodeFromRandomBytes(randomBytes(16));
let oldSerial: string;

/** Appends the events of one serial as the previous release did: decided data as stored, no sealing. */
async function write(store: SqliteEventStore, streamId: string, events: readonly NewEvent[], actor: string, continues?: string): Promise<string> {
  const r = await store.append({ streamId, expectedRevision: 'any', events, serial: continues === undefined ? { allocate: true } : { continue: continues as never }, metadata: { actor, correlationId: randomUUID() } });
  return r.serial;
}

beforeAll(async () => {
  // A first start makes the keys; the old log is then written beside them, as that hub wrote it.
  const first = await startLinkageHub({ env: TABLE_V1 });
  dataDir = first.dataDir;
  const prefix = first.config.linkage.redisPrefix!;
  await first.close();
  const vault = new IdentifierVault(loadOrCreateVaultKeys(join(dataDir, 'keys')));
  const store = new SqliteEventStore({ path: join(dataDir, 'ledger.sqlite'), nodeId: 1, tree: true });
  const answerKey = (await generateAnswerKeyPair()).publicKey;
  for (const [agencyId, kind, token] of [[PENSION, 'pension-service', pensionToken], [MURORAN_CITY, 'municipality', muroranToken]] as const) {
    const digest = sha256(token);
    await write(store, `agency-${agencyId}`, [{ type: 'AgencyRegistered', schemaVersion: 1, data: { agencyId, name: `${agencyId} (v1)`, kind, endpoint: 'http://127.0.0.1:9', publicKey: answerKey, credentialDigest: digest, registeredAt: T0 }, terminal: 'completed', claims: [`agency-credential:${digest}`] }], 'operator:hub');
  }
  const numberDigest = vault.digest('individual-number', individualNumber);
  const residentDigest = vault.digest('resident-record-code', residentRecordCode);
  const numbering = `person-numbering-${residentDigest}`;
  await write(store, numbering, [{
    type: 'IndividualNumberIssued', schemaVersion: 1, terminal: 'completed', claims: [`individual-number:${numberDigest}`],
    data: { subjectId, municipalityCode: MURORAN, numberDigest, residentDigest, sealed: vault.seal({ individualNumber, residentRecordCode, citizenSecret }, numbering), citizenCredentialDigest: sha256(citizenSecret), issuedAt: T0 },
  }], 'operator:hub');
  for (const [agencyId, kind, code] of [[PENSION, 'pension-service', pensionCode], [MURORAN_CITY, 'municipality', muroranCode]] as const) {
    await write(store, `agency-code-${subjectId}-${agencyId}`, [{ type: 'AgencyCodeIssued', schemaVersion: 1, terminal: 'completed', claims: [`agency-code:${code}`], data: { subjectId, agencyId, agencyKind: kind, code, acquisitionNumber: `V1-${agencyId}`, issuedAt: T0 } }], `agency:${agencyId}`);
  }
  const queryId = randomUUID();
  const facts = { queryId, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] };
  oldSerial = await write(store, queryStreamId(queryId), [
    { type: 'QueryAccepted', schemaVersion: 1, data: { ...facts, requesterAgencyId: PENSION, requesterKind: 'pension-service', providerAgencyId: MURORAN_CITY, providerKind: 'municipality', tableVersion: 1, subjectId, requesterCodeDigest: sha256(pensionCode), acceptedAt: T0 } },
    { type: 'ProvisionRequested', schemaVersion: 1, data: { ...facts, providerAgencyId: MURORAN_CITY, providerCode: muroranCode, requestedAt: T0 } },
  ], `agency:${PENSION}`);
  await write(store, queryStreamId(queryId), [
    { type: 'ProvisionAnswered', schemaVersion: 1, data: { queryId, providerAgencyId: MURORAN_CITY, answerDigest: sha256('answer'), answerSize: 6, encrypted: false, answeredAt: T0 } },
    { type: 'QueryCompleted', schemaVersion: 1, data: { queryId, outcome: 'answered', completedAt: T0 }, terminal: 'completed' },
  ], `agency:${PENSION}`, oldSerial);
  const noticeId = randomUUID();
  await write(store, `notice-${noticeId}`, [{ type: 'NoticeSent', schemaVersion: 1, terminal: 'completed', data: { noticeId, subjectId, agencyId: MURORAN_CITY, sealed: vault.sealNotice({ title: '旧いお知らせ', body: '封緘前のお知らせ' }, `notice-${noticeId}`), sentAt: T0 } }], `agency:${MURORAN_CITY}`);
  await store.close();

  hub = await startLinkageHub({ dataDir, env: { ...TABLE_V1, HUB_REDIS_PREFIX: prefix, HUB_CHECKPOINT_EVERY_EVENTS: '3' } });
  await muroranNode.start(hub);
  const operator = bearer((JSON.parse((await import('node:fs')).readFileSync(join(dataDir, 'keys', 'operator.token.json'), 'utf8')) as { token: string }).token);
  expect((await hub.inject({ method: 'PATCH', url: `/v1/agencies/${MURORAN_CITY}`, headers: { 'content-type': 'application/json', ...operator }, payload: JSON.stringify({ endpoint: muroranNode.endpoint }) })).statusCode).toBe(200);
  muroranNode.behaviours.set(muroranCode, { answer: { 'local-tax': { taxableIncome: 1 } } });
});
afterAll(async () => {
  await hub?.dispose();
  await muroranNode.stop();
});

describe('a log of before sealing (schemaVersion 1)', () => {
  it('serves its people, codes, records and notices: the citizen\'s secret, the old query, the old notice', async () => {
    const records = (await hub.get('/v1/citizens/me/provision-records', bearer(citizenSecret))).json<{ records: { serial: string; outcome: string }[] }>().records;
    expect(records).toEqual([expect.objectContaining({ serial: oldSerial, outcome: 'answered' })]);
    const notices = (await hub.get('/v1/citizens/me/notices', bearer(citizenSecret))).json<{ notices: { title: string; body: string }[] }>().notices;
    expect(notices).toEqual([expect.objectContaining({ title: '旧いお知らせ', body: '封緘前のお知らせ' })]);
  });

  it('continues an agency code stream of before (the same code), and the old codes translate: what it appends now is sealed', async () => {
    const again = await hub.post('/v1/agency-codes', { individualNumber, acquisitionNumber: 'V2-again' }, bearer(pensionToken));
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toMatchObject({ code: pensionCode, reacquired: true });
    const [reacquired] = await hub.store.readSerial(again.json<{ serial: string }>().serial as never);
    expect(reacquired).toMatchObject({ type: 'AgencyCodeReacquired', schemaVersion: 2, streamId: `agency-code-${subjectId}-${PENSION}` });
    const res = await hub.post('/v1/queries', { code: pensionCode, providerAgencyId: MURORAN_CITY, procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }, bearer(pensionToken));
    expect(res.statusCode, res.body).toBe(200);
    const serial = res.json<{ serial: string }>().serial;
    const stored = await hub.store.readSerial(serial as never);
    expect(stored.map((e) => e.schemaVersion)).toEqual([2, 2, 2, 1]);
    for (const secret of [pensionCode, muroranCode, subjectId]) expect(JSON.stringify(stored)).not.toContain(secret);
    const records = (await hub.get('/v1/citizens/me/provision-records', bearer(citizenSecret))).json<{ records: { serial: string }[] }>().records.map((r) => r.serial);
    expect(records).toEqual(expect.arrayContaining([oldSerial, serial]));
  });

  it('still verifies, and replays with the read key to the live projection', async () => {
    const verifierKey = (await hub.get('/v1/audit/verifier-key')).body;
    const report = await verifyLog({ source: { kind: 'db', path: hub.config.ledgerPath }, verifierKey, threads: 1 });
    expect(report.firstFailure).toBeNull();
    expect(report.ok).toBe(true);
    const { sealer, close } = readKey(dataDir);
    try {
      const diff = await replayProvisionRecords(hub.config.ledgerPath, join(dataDir, 'projections.sqlite'), true, sealer);
      expect(diff).toMatchObject({ ok: true, liveRecords: 2, rebuiltRecords: 2 });
    } finally {
      close();
    }
  });
});
