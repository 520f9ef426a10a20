import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { CA_CERT_FILE } from '../src/tls/hub-ca.js';
import { PRINCIPAL_CREDENTIAL_ROTATED, PRINCIPAL_CREDENTIAL_STREAM, credentialFingerprint } from '../src/keys/credential-rotation.js';
import { schemaValidator } from '../../../test/support/json-schema.js';
import { expectProblem } from './support/problem-assertions.js';
import { PENSION, acquire, bearer, issuePerson, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { startTestHub, type TestHub } from './support/test-hub.js';
import { httpsPost } from './support/https-post.js';

const OPERATOR_ROTATION = '/v1/key-rotations/operator-credential';
const AUDITOR_ROTATION = '/v1/key-rotations/auditor-credential';
const validate = schemaValidator('schemas/events/principal-credential-rotated.v1.json');

let hub: TestHub | undefined;
afterEach(async () => {
  await hub?.dispose();
  hub = undefined;
});

const tokenIn = (h: TestHub, file: string): string => (JSON.parse(readFileSync(join(h.config.keysDir, file), 'utf8')) as { token: string }).token;
const tokenOf = (headers: Record<string, string>): string => headers['authorization']!.slice('Bearer '.length);
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

type Rotation = { principal: string; fingerprint: string; previousFingerprint: string; rotatedBy: string; serial: string; position: number; tokenFile: string; token?: string };

/**
 * Agency traffic (code acquisitions) and the auditor's raw reads, continuing until `stop()`; answers
 * every status each saw. The auditor's token is read from its file at each call (as a client that
 * re-reads it after its own rotation would).
 */
function load(h: TestHub, agency: Agency, numbers: readonly string[], auditorToken: () => string) {
  // Each loop runs until stop() and then a few requests more (bounded: a failed test leaves no loop behind).
  let until: { agency: number; auditor: number } | undefined;
  const agencyStatuses: number[] = [];
  const auditorStatuses: { status: number; code?: string }[] = [];
  const agencyLoop = (async () => {
    for (let i = 0; i < 400 && (until === undefined || agencyStatuses.length < until.agency); i++) {
      const res = await h.post('/v1/agency-codes', { individualNumber: numbers[i % numbers.length], acquisitionNumber: `load-${i}` }, bearer(agency.token));
      agencyStatuses.push(res.statusCode);
    }
  })();
  const auditorLoop = (async () => {
    for (let i = 0; i < 400 && (until === undefined || auditorStatuses.length < until.auditor); i++) {
      const res = await h.get(`/v1/audit/entries?from=${i % 5}&limit=5`, bearer(auditorToken()));
      auditorStatuses.push(res.statusCode === 200 ? { status: 200 } : { status: res.statusCode, code: res.json<{ code: string }>().code });
    }
  })();
  return {
    agencyStatuses,
    auditorStatuses,
    /** Resolves once both loops have sent `n` requests. */
    started: async (n = 3) => {
      for (let i = 0; i < 2000 && (agencyStatuses.length < n || auditorStatuses.length < n); i++) await new Promise((r) => setTimeout(r, 10));
    },
    stop: async (more = 3) => {
      until = { agency: agencyStatuses.length + more, auditor: auditorStatuses.length + more };
      await Promise.all([agencyLoop, auditorLoop]);
    },
  };
}

async function refusals(h: TestHub, from: number): Promise<{ command: string; reason: string; callerKind: string }[]> {
  return (await h.ledger.readAll({ fromPosition: from })).filter((e) => e.type === 'RequestRefused').map((e) => e.data as { command: string; reason: string; callerKind: string });
}

describe('rotation of the operator\'s and the auditor\'s credentials', () => {
  it('rotates the operator\'s token under agency traffic and auditor reads: the old token refused (CREDENTIAL_ROTATED, recorded), the new one admitted, the event public', async () => {
    hub = await startLinkageHub({ env: { HUB_REDIS_URL: 'off' } });
    const h = hub;
    const oldToken = tokenOf(h.operator);
    const pension = await registerAgency(h, PENSION, 'pension-service', 'http://127.0.0.1:9');
    const numbers = [(await issuePerson(h)).individualNumber, (await issuePerson(h)).individualNumber];
    const traffic = load(h, pension, numbers, () => tokenOf(h.auditor));
    await traffic.started();

    const res = await h.post(OPERATOR_ROTATION, {}, h.operator);
    expect(res.statusCode, res.body).toBe(201);
    const rotation = res.json<Rotation>();
    await traffic.stop();

    // The answer: the new token once, its fingerprint and the old one's.
    expect(rotation).toMatchObject({ principal: 'operator', rotatedBy: 'operator', tokenFile: 'operator.token.json', previousFingerprint: credentialFingerprint(oldToken) });
    const newToken = rotation.token!;
    expect(newToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotation.fingerprint).toBe(credentialFingerprint(newToken));
    // The file holds the new token only (0600), replaced whole: no leftover beside it.
    expect(tokenIn(h, 'operator.token.json')).toBe(newToken);
    expect(readFileSync(join(h.config.keysDir, 'operator.token.json'), 'utf8')).not.toContain(oldToken);
    expect(statSync(join(h.config.keysDir, 'operator.token.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(h.config.keysDir).filter((f) => f.startsWith('operator.'))).toEqual(['operator.token.json']);

    // Agency traffic and the auditor's reads went on unaffected, before, during and after.
    expect(traffic.agencyStatuses.length).toBeGreaterThan(2);
    expect(traffic.agencyStatuses.every((s) => s === 200 || s === 201), JSON.stringify(traffic.agencyStatuses)).toBe(true);
    expect(traffic.auditorStatuses.length).toBeGreaterThan(2);
    expect(traffic.auditorStatuses.every((s) => s.status === 200), JSON.stringify(traffic.auditorStatuses)).toBe(true);

    // The old token: refused with its own code, and the refusal recorded as the operator's (I6).
    const head = await h.head();
    expectProblem(await h.post('/v1/individual-numbers', { residentRecordCode: '12345678901', municipalityCode: '012050' }, bearer(oldToken)), 401, 'CREDENTIAL_ROTATED');
    expectProblem(await h.post(OPERATOR_ROTATION, {}, bearer(oldToken)), 401, 'CREDENTIAL_ROTATED');
    expect(await refusals(h, head)).toEqual([
      expect.objectContaining({ command: 'IssueIndividualNumber', reason: 'CREDENTIAL_ROTATED', callerKind: 'operator' }),
      expect.objectContaining({ command: 'RotateOperatorCredential', reason: 'CREDENTIAL_ROTATED', callerKind: 'operator' }),
    ]);
    // The new one does what the operator does.
    const after = await h.post('/v1/individual-numbers', { residentRecordCode: '12345678902', municipalityCode: '012050' }, bearer(newToken));
    expect(after.statusCode, after.body).toBe(201);
    expect((await acquire(h, pension, numbers[0]!)).length).toBeGreaterThan(0);

    // The event: its own serial, public, no token and no digest the hub compares.
    const events = await h.store.readStream(PRINCIPAL_CREDENTIAL_STREAM);
    expect(events.map((e) => [e.type, e.position, e.serial, e.terminal])).toEqual([[PRINCIPAL_CREDENTIAL_ROTATED, rotation.position, rotation.serial, 'completed']]);
    expect(validate(events[0]!.data).errors).toBe('No errors');
    expect(events[0]!.data).toEqual({ principal: 'operator', fingerprint: rotation.fingerprint, previousFingerprint: rotation.previousFingerprint, rotatedAt: expect.any(String), rotatedBy: 'operator' });
    const text = JSON.stringify(events[0]);
    for (const secret of [oldToken, newToken, sha256(oldToken), sha256(newToken)]) expect(text).not.toContain(secret);
    expect(events[0]!.metadata).toMatchObject({ actor: 'operator:hub' });
  });

  it('the auditor rotates its own token under its reads; the operator may rotate it too (the token then only in the file); no one else', async () => {
    hub = await startLinkageHub({ env: { HUB_REDIS_URL: 'off' } });
    const h = hub;
    const pension = await registerAgency(h, PENSION, 'pension-service', 'http://127.0.0.1:9');
    const numbers = [(await issuePerson(h)).individualNumber];
    const first = tokenOf(h.auditor);
    // The reading client re-reads the auditor's file: its reads go on across the rotation.
    const traffic = load(h, pension, numbers, () => tokenIn(h, 'auditor.token.json'));
    await traffic.started();
    const res = await h.post(AUDITOR_ROTATION, {}, h.auditor);
    expect(res.statusCode, res.body).toBe(201);
    const own = res.json<Rotation>();
    await traffic.stop();
    expect(own).toMatchObject({ principal: 'auditor', rotatedBy: 'auditor', previousFingerprint: credentialFingerprint(first), tokenFile: 'auditor.token.json' });
    expect(tokenIn(h, 'auditor.token.json')).toBe(own.token);
    expect(traffic.agencyStatuses.every((s) => s === 200 || s === 201)).toBe(true);
    // A read in flight with the file's old content may meet the rotation; none is refused for anything else.
    expect(traffic.auditorStatuses.filter((s) => s.status !== 200).every((s) => s.code === 'CREDENTIAL_ROTATED'), JSON.stringify(traffic.auditorStatuses)).toBe(true);
    expect(traffic.auditorStatuses.filter((s) => s.status === 200).length).toBeGreaterThan(2);

    const head = await h.head();
    expectProblem(await h.get('/v1/audit/entries?from=0&limit=1', bearer(first)), 401, 'CREDENTIAL_ROTATED');
    expect((await h.get('/v1/audit/entries?from=0&limit=1', bearer(own.token!))).statusCode).toBe(200);
    expectProblem(await h.post(AUDITOR_ROTATION, {}, bearer(first)), 401, 'CREDENTIAL_ROTATED');
    // Someone else: the auditor does not rotate the operator's, an agency neither, an unknown token is not authenticated.
    expectProblem(await h.post(OPERATOR_ROTATION, {}, bearer(own.token!)), 403, 'FORBIDDEN');
    expectProblem(await h.post(AUDITOR_ROTATION, {}, bearer(pension.token)), 403, 'FORBIDDEN');
    expectProblem(await h.post(AUDITOR_ROTATION, {}, bearer('nobody-holds-this-token-0123456789')), 401, 'UNAUTHENTICATED');
    expect((await refusals(h, head)).map((r) => [r.command, r.reason, r.callerKind])).toEqual([
      ['RotateAuditorCredential', 'CREDENTIAL_ROTATED', 'auditor'],
      ['RotateOperatorCredential', 'FORBIDDEN', 'auditor'],
      ['RotateAuditorCredential', 'FORBIDDEN', 'agency'],
    ]);

    // The operator cuts off the auditor's token: the new one is not in the answer, only in the file.
    const byOperator = await h.post(AUDITOR_ROTATION, {}, h.operator);
    expect(byOperator.statusCode, byOperator.body).toBe(201);
    const cut = byOperator.json<Rotation>();
    expect(cut).toMatchObject({ principal: 'auditor', rotatedBy: 'operator', previousFingerprint: own.fingerprint });
    expect(cut.token).toBeUndefined();
    const third = tokenIn(h, 'auditor.token.json');
    expect(credentialFingerprint(third)).toBe(cut.fingerprint);
    expectProblem(await h.get('/v1/audit/entries?from=0&limit=1', bearer(own.token!)), 401, 'CREDENTIAL_ROTATED');
    expect((await h.get('/v1/audit/entries?from=0&limit=1', bearer(third))).statusCode).toBe(200);
    const events = await h.store.readStream(PRINCIPAL_CREDENTIAL_STREAM);
    expect(events.map((e) => [(e.data as { rotatedBy: string }).rotatedBy, e.metadata.actor])).toEqual([
      ['auditor', 'auditor:hub'],
      ['operator', 'operator:hub'],
    ]);
    for (const e of events) expect(validate(e.data).errors).toBe('No errors');
  });

  it('a restart keeps the rotated tokens and refuses the old ones; a rotation a crash cut between its event and the file is finished at start', async () => {
    hub = await startTestHub();
    const dataDir = hub.dataDir;
    const oldOperator = tokenOf(hub.operator);
    const oldAuditor = tokenOf(hub.auditor);
    const operator = (await hub.post(OPERATOR_ROTATION, {}, hub.operator)).json<Rotation>();
    const auditor = (await hub.post(AUDITOR_ROTATION, {}, hub.auditor)).json<Rotation>();
    // A rotation cut by a crash: the new token is beside the file and announced, the file not yet replaced.
    const crashed = 'a-token-written-before-a-crash-0123456789abc';
    writeFileSync(join(hub.config.keysDir, 'auditor.token.json.next'), JSON.stringify({ purpose: 'auditor-token', token: crashed }), { mode: 0o600 });
    await hub.store.append({
      streamId: PRINCIPAL_CREDENTIAL_STREAM,
      expectedRevision: 'any',
      serial: { allocate: true },
      events: [{ type: PRINCIPAL_CREDENTIAL_ROTATED, data: { principal: 'auditor', fingerprint: credentialFingerprint(crashed), previousFingerprint: auditor.fingerprint, rotatedAt: new Date().toISOString(), rotatedBy: 'auditor' }, terminal: 'completed' }],
      metadata: { actor: 'auditor:hub', correlationId: 'crash' },
    });
    await hub.close();

    hub = await startTestHub({ dataDir });
    const h = hub;
    expect(tokenOf(h.operator)).toBe(operator.token);
    expect((await h.post('/v1/corporate-numbers', { name: '株式会社鍵', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, h.operator)).statusCode).toBe(201);
    expectProblem(await h.post('/v1/corporate-numbers', { name: '株式会社鍵', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, bearer(oldOperator)), 401, 'CREDENTIAL_ROTATED');
    // The interrupted rotation finished: the file holds the announced token, which alone admits the auditor.
    expect(tokenIn(h, 'auditor.token.json')).toBe(crashed);
    expect(existsSync(join(h.config.keysDir, 'auditor.token.json.next'))).toBe(false);
    expect((await h.get('/v1/audit/entries?from=0&limit=1', bearer(crashed))).statusCode).toBe(200);
    for (const old of [oldAuditor, auditor.token!]) expectProblem(await h.get('/v1/audit/entries?from=0&limit=1', bearer(old)), 401, 'CREDENTIAL_ROTATED');
  });

  it('a restored copy of a rotated token file admits no one', async () => {
    hub = await startTestHub();
    const dataDir = hub.dataDir;
    const path = join(hub.config.keysDir, 'operator.token.json');
    const backup = readFileSync(path, 'utf8');
    const oldToken = tokenOf(hub.operator);
    expect((await hub.post(OPERATOR_ROTATION, {}, hub.operator)).statusCode).toBe(201);
    await hub.close();
    writeFileSync(path, backup, { mode: 0o600 });
    hub = await startTestHub({ dataDir });
    expectProblem(await hub.post('/v1/corporate-numbers', { name: '株式会社鍵', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, bearer(oldToken)), 401, 'CREDENTIAL_ROTATED');
    expect(hub.logger.lines.some((l) => l.level === 'error' && /holds a token of the operator that a rotation retired/.test(l.message))).toBe(true);
  });
});

describe('an agency\'s credential rotation', () => {
  it('without mutual TLS: the old token is refused at once (401 UNAUTHENTICATED), the new one admitted', async () => {
    hub = await startLinkageHub({ env: { HUB_REDIS_URL: 'off' } });
    const h = hub;
    const pension = await registerAgency(h, PENSION, 'pension-service', 'http://127.0.0.1:9');
    const { individualNumber } = await issuePerson(h);
    expect((await acquire(h, pension, individualNumber, 'before')).length).toBeGreaterThan(0);
    const rotated = await h.post(`/v1/agencies/${PENSION}/credential-rotations`, {}, h.operator);
    expect(rotated.statusCode, rotated.body).toBe(201);
    const token = rotated.json<{ token: string }>().token;
    expect(token).not.toBe(pension.token);
    expectProblem(await h.post('/v1/agency-codes', { individualNumber, acquisitionNumber: 'old' }, bearer(pension.token)), 401, 'UNAUTHENTICATED');
    expect((await acquire(h, { ...pension, token }, individualNumber, 'new')).length).toBeGreaterThan(0);
  });

  it('with mutual TLS: the old token with the agency\'s own certificate is refused (401 UNAUTHENTICATED), the new token with it admitted', async () => {
    hub = await startTestHub({ env: { HUB_TLS: 'on' } });
    const h = hub;
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (h.app.getHttpServer().address() as { port: number }).port;
    const ca = readFileSync(join(h.config.keysDir, CA_CERT_FILE), 'utf8');
    const operator = tokenOf(h.operator);
    const keys = await generateAnswerKeyPair();
    const registered = await httpsPost(port, ca, '/v1/agencies', { agencyId: PENSION, name: 'pension (test)', kind: 'pension-service', endpoint: 'https://localhost:1', publicKey: keys.publicKey }, { token: operator });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    const { token: oldToken, certificate } = registered.body as { token: string; certificate: { certificatePem: string; privateKeyPem: string } };
    const client = { cert: certificate.certificatePem, key: certificate.privateKeyPem };
    const { individualNumber } = await issuePerson(h);
    expect((await httpsPost(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: 'before' }, { token: oldToken, ...client })).status).toBe(201);
    const rotated = await httpsPost(port, ca, `/v1/agencies/${PENSION}/credential-rotations`, {}, { token: operator });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    const newToken = rotated.body['token'] as string;
    const old = await httpsPost(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: 'old' }, { token: oldToken, ...client });
    expect([old.status, old.body['code']]).toEqual([401, 'UNAUTHENTICATED']);
    expect([200, 201]).toContain((await httpsPost(port, ca, '/v1/agency-codes', { individualNumber, acquisitionNumber: 'new' }, { token: newToken, ...client })).status);
  });
});
