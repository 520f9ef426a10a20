/**
 * Preparing people through the API, for k6's setup() when no fixture file is given: issues numbers in
 * Muroran and acquires both agencies' codes (Muroran's through its node's staff endpoint, so the node
 * stores each code on its person). The pension service and Muroran City must be registered already
 * (POST /v1/agencies with the operator token), Muroran's node serving with its token and holding
 * copies for local ids LT-0000000 … (load-copies).
 */
import http from 'k6/http';

export const PROCEDURE = 'pension-award-claim';
export const PROVIDER = 'muroran-city';
export const ITEMS = ['local-tax'];
const MURORAN_MUNICIPALITY = '012050';

/** The same shape as the Node runner's --write-fixture file. */
export interface LinkageFixture {
  readonly hubUrl: string;
  readonly requesterToken: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly answerPublicKey?: string;
  readonly codes: readonly string[];
  /** With --tls on: the hub's CA and the requester's client certificate and key (PEM). */
  readonly tls?: { readonly caCertificatePem: string; readonly certificatePem: string; readonly privateKeyPem: string };
}

function postJson(url: string, body: unknown, token?: string): { status: number; json: Record<string, unknown> } {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const res = http.post(url, JSON.stringify(body), { headers });
  let json: Record<string, unknown> = {};
  try {
    json = res.json() as Record<string, unknown>;
  } catch {
    // not JSON: reported with the status below
  }
  return { status: res.status, json };
}

function expect(what: string, reply: { status: number; json: Record<string, unknown> }, ok: readonly number[]): Record<string, unknown> {
  if (!ok.includes(reply.status)) throw new Error(`${what}: HTTP ${reply.status} ${JSON.stringify(reply.json).slice(0, 300)}`);
  return reply.json;
}

export function prepareThroughApi(env: { hubUrl: string; nodeUrl: string; operatorToken: string; pensionToken: string; people: number }): LinkageFixture {
  const { hubUrl, nodeUrl, operatorToken, pensionToken, people } = env;
  const base = 10_000_000_000 + Math.floor(Math.random() * 1_000_000) * 1000;
  const codes: string[] = [];
  for (let i = 0; i < people; i++) {
    const issued = expect(
      `issuing person ${i}`,
      postJson(`${hubUrl}/v1/individual-numbers`, { residentRecordCode: String(base + i * 7919).padStart(11, '0'), municipalityCode: MURORAN_MUNICIPALITY }, operatorToken),
      [201],
    );
    const individualNumber = String(issued['individualNumber']);
    const code = expect(`acquiring the pension service's code for person ${i}`, postJson(`${hubUrl}/v1/agency-codes`, { individualNumber, acquisitionNumber: `JPS-K6-${i}` }, pensionToken), [200, 201]);
    expect(`acquiring Muroran's code for person ${i}`, postJson(`${nodeUrl}/v1/agency-codes`, { localId: `LT-${String(i).padStart(7, '0')}`, individualNumber, acquisitionNumber: `MRN-K6-${i}` }), [200]);
    codes.push(String(code['code']));
  }
  return { hubUrl, requesterToken: pensionToken, providerAgencyId: PROVIDER, procedureCode: PROCEDURE, itemCodes: ITEMS, codes };
}
