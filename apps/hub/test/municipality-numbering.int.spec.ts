import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAnswerKeyPair } from '#sealed-answer';
import { expectProblem } from './support/problem-assertions.js';
import { PENSION, bearer, operatorToken, registerAgency, startLinkageHub, type Agency } from './support/linkage-fixture.js';
import { MURORAN, SAPPORO, type TestHub, expectNothingButRefusals } from './support/test-hub.js';

let hub: TestHub;
let muroran: { agencyId: string; token: string };
let pension: Agency;
let resident = 41_000_000_000;
const nextResident = (): string => String(resident++);

async function register(agencyId: string, kind: string, municipalityCode?: string) {
  const { publicKey } = await generateAnswerKeyPair();
  return hub.post('/v1/agencies', { agencyId, name: agencyId, kind, endpoint: 'http://127.0.0.1:9', publicKey, ...(municipalityCode === undefined ? {} : { municipalityCode }) }, bearer(operatorToken(hub)));
}

beforeAll(async () => {
  hub = await startLinkageHub();
  const res = await register('muroran-city', 'municipality', MURORAN);
  expect(res.statusCode, res.body).toBe(201);
  muroran = { agencyId: 'muroran-city', token: res.json<{ token: string }>().token };
  pension = await registerAgency(hub, PENSION, 'pension-service', 'http://127.0.0.1:9');
});
afterAll(async () => {
  await hub?.dispose();
});

describe('a municipality numbers its own residents with its own agency token', () => {
  it('issues and changes the numbers of its residents; the municipality\'s agency is the actor', async () => {
    const residentRecordCode = nextResident();
    const issued = await hub.post('/v1/individual-numbers', { residentRecordCode, municipalityCode: MURORAN }, bearer(muroran.token));
    expect(issued.statusCode, issued.body).toBe(201);
    const [event] = await hub.store.readSerial(issued.json<{ serial: string }>().serial as never);
    expect(event).toMatchObject({ type: 'IndividualNumberIssued', metadata: { actor: 'agency:muroran-city' } });

    const changed = await hub.post('/v1/individual-numbers/changes', { residentRecordCode, municipalityCode: MURORAN, reason: 'leak' }, bearer(muroran.token));
    expect(changed.statusCode, changed.body).toBe(201);
    // The operator still numbers for any municipality (as J-LIS does on a municipality's request).
    expect((await hub.post('/v1/individual-numbers', { residentRecordCode: nextResident(), municipalityCode: SAPPORO }, hub.operator)).statusCode).toBe(201);
  });

  it('refuses another municipality\'s residents, and agencies without a municipality code, with 403 and nothing appended', async () => {
    const head = await hub.head();
    const other = expectProblem(await hub.post('/v1/individual-numbers', { residentRecordCode: nextResident(), municipalityCode: SAPPORO }, bearer(muroran.token)), 403, 'FORBIDDEN');
    expect(other['detail']).toBe(`agency muroran-city numbers the residents of municipality ${MURORAN} only, not ${SAPPORO}`);
    expectProblem(await hub.post('/v1/individual-numbers', { residentRecordCode: nextResident(), municipalityCode: MURORAN }, bearer(pension.token)), 403, 'FORBIDDEN');
    expectProblem(await hub.post('/v1/individual-numbers/changes', { residentRecordCode: nextResident(), municipalityCode: MURORAN, reason: 'leak' }, bearer(pension.token)), 403, 'FORBIDDEN');
    expectProblem(await hub.post('/v1/individual-numbers', { residentRecordCode: nextResident(), municipalityCode: MURORAN }, bearer('x'.repeat(43))), 401, 'UNAUTHENTICATED');
    await expectNothingButRefusals(hub, head);
  });

  it('registers one agency per municipality, municipalities only, from the list in force; nothing appended on refusal', async () => {
    const head = await hub.head();
    expectProblem(await register('muroran-city-2', 'municipality', MURORAN), 409, 'MUNICIPALITY_ALREADY_REGISTERED');
    expectProblem(await register('hello-work-x', 'hello-work', SAPPORO), 422, 'MUNICIPALITY_CODE_NOT_ALLOWED');
    expectProblem(await register('nowhere-city', 'municipality', '999997'), 422, 'UNKNOWN_MUNICIPALITY');
    expectProblem(await register('bad-city', 'municipality', '12345'), 400, 'VALIDATION_FAILED');
    await expectNothingButRefusals(hub, head);
    expect((await register('sapporo-city', 'municipality', SAPPORO)).statusCode).toBe(201);
  });
});
