import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialFingerprint } from '../src/keys/credential-rotation.js';
import { expectProblem } from './support/problem-assertions.js';
import { bearer } from './support/linkage-fixture.js';
import { SharedLog, announceServer, eventually, startKurrentHub, type KurrentTestHub } from './kurrentdb-hub.support.js';

// Two hubs on one KurrentDB log sharing the keys dir: a rotation at the leader counts at the standby at once.
announceServer();

const log = new SharedLog();
let a: KurrentTestHub;
let b: KurrentTestHub;

const tokenIn = (h: KurrentTestHub, file: string): string => (JSON.parse(readFileSync(join(h.config.keysDir, file), 'utf8')) as { token: string }).token;
const company = { name: '株式会社鍵', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' };
const entries = (h: KurrentTestHub, token: string) => h.get('/v1/audit/entries?from=0&limit=2', bearer(token));

beforeAll(async () => {
  a = await startKurrentHub(log, { instanceId: 'cr-a' });
  await eventually('a leads', async () => a.leadership.role === 'leader');
  b = await startKurrentHub(log, { instanceId: 'cr-b' });
  expect((await b.get('/health/ready')).json()).toMatchObject({ role: 'standby' });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await log.dispose();
});

describe('credential rotation with a standby sharing the keys dir (KurrentDB)', () => {
  it('a standby refuses to rotate, and writes nothing', async () => {
    const before = tokenIn(b, 'operator.token.json');
    expectProblem(await b.post('/v1/key-rotations/operator-credential', {}, b.operator), 503, 'NOT_LEADER');
    expectProblem(await b.post('/v1/key-rotations/auditor-credential', {}, b.auditor), 503, 'NOT_LEADER');
    expect(tokenIn(b, 'operator.token.json')).toBe(before);
  });

  it('the leader rotates both tokens: at once the standby refuses the old ones (CREDENTIAL_ROTATED) and admits the new ones', async () => {
    const oldOperator = tokenIn(a, 'operator.token.json');
    const oldAuditor = tokenIn(a, 'auditor.token.json');
    // The standby admits the old ones before.
    expect((await entries(b, oldAuditor)).statusCode).toBe(200);
    expectProblem(await b.post('/v1/corporate-numbers', company, bearer(oldOperator)), 503, 'NOT_LEADER');

    const operator = await a.post('/v1/key-rotations/operator-credential', {}, bearer(oldOperator));
    expect(operator.statusCode, operator.body).toBe(201);
    const auditor = await a.post('/v1/key-rotations/auditor-credential', {}, bearer(oldAuditor));
    expect(auditor.statusCode, auditor.body).toBe(201);
    const newOperator = operator.json<{ token: string }>().token;
    const newAuditor = auditor.json<{ token: string; fingerprint: string }>().token;
    expect(credentialFingerprint(newAuditor)).toBe(auditor.json<{ fingerprint: string }>().fingerprint);

    // No waiting: the standby reads the rotations before it admits an operator's or auditor's token.
    expectProblem(await entries(b, oldAuditor), 401, 'CREDENTIAL_ROTATED');
    expectProblem(await b.post('/v1/corporate-numbers', company, bearer(oldOperator)), 401, 'CREDENTIAL_ROTATED');
    expect((await entries(b, newAuditor)).statusCode).toBe(200);
    // The new operator token passes the standby's check; the command itself is the leader's.
    expectProblem(await b.post('/v1/corporate-numbers', company, bearer(newOperator)), 503, 'NOT_LEADER');
    // And at the leader.
    expect((await a.post('/v1/corporate-numbers', company, bearer(newOperator))).statusCode).toBe(201);
    expectProblem(await a.post('/v1/corporate-numbers', company, bearer(oldOperator)), 401, 'CREDENTIAL_ROTATED');
    expectProblem(await entries(a, oldAuditor), 401, 'CREDENTIAL_ROTATED');
  });

  it('the standby takes over after a rotation: the new tokens admit, the old ones do not', async () => {
    const newOperator = tokenIn(a, 'operator.token.json');
    a.leadership.halt();
    await eventually('the standby leads', async () => (await b.get('/health/ready')).json<{ role: string }>().role === 'leader', 15_000);
    const res = await eventually('b designates with the new token', async () => {
      const r = await b.post('/v1/corporate-numbers', company, bearer(newOperator));
      return r.statusCode === 201 ? r : undefined;
    });
    expect(res.statusCode).toBe(201);
    // The new leader rotates the operator's token again; the one before is refused.
    const again = await b.post('/v1/key-rotations/operator-credential', {}, bearer(newOperator));
    expect(again.statusCode, again.body).toBe(201);
    expectProblem(await b.post('/v1/corporate-numbers', company, bearer(newOperator)), 401, 'CREDENTIAL_ROTATED');
    expect((await b.post('/v1/corporate-numbers', company, bearer(again.json<{ token: string }>().token))).statusCode).toBe(201);
  });
});
