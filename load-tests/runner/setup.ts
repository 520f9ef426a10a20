import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateAnswerKeyPair, type AnswerKeyPair } from '#sealed-answer';

/** The seeds/001 exchange: the pension service asks Muroran City for local tax information. */
export const PENSION = 'jpn-pension-service';
export const MURORAN_CITY = 'muroran-city';
export const MURORAN_MUNICIPALITY = '012050';
export const PROCEDURE = 'pension-award-claim';
export const ITEMS = ['local-tax'] as const;

/**
 * What a load generator needs to drive POST /v1/queries (also written with --write-fixture for the k6
 * script; it holds only a test hub's token and agency codes, no individual number).
 */
export interface LinkageFixture {
  readonly hubUrl: string;
  readonly requesterToken: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  /** The requester's X25519 answer key (public half); absent when answers travel in plaintext. */
  readonly answerPublicKey?: string;
  /** The requester's own codes, one per person; the load rotates over them. */
  readonly codes: readonly string[];
  /**
   * With HUB_TLS=on: the hub's CA (what the load generator trusts) and the requester's client certificate
   * and key, as the hub answered its registration (mutual TLS: its token alone admits no query).
   */
  readonly tls?: AgencyTlsMaterial;
}

/** What the hub answers an agency's registration with under HUB_TLS=on (`certificate`), in PEM. */
export interface AgencyTlsMaterial {
  readonly caCertificatePem: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

export class SetupError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
}

/** `web`: the fetch to use (one trusting the hub's CA, presenting a client certificate, under HUB_TLS=on). */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}, web: typeof fetch = fetch): Promise<Reply> {
  const res = await web(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

function expectStatus(what: string, reply: Reply, ok: readonly number[]): Record<string, unknown> {
  if (!ok.includes(reply.status)) throw new SetupError('SETUP_REQUEST_FAILED', `${what}: HTTP ${reply.status} ${reply.text.slice(0, 500)}`);
  return reply.body as Record<string, unknown>;
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at a time. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

export function operatorToken(hubDataDir: string): string {
  return (JSON.parse(readFileSync(join(hubDataDir, 'keys', 'operator.token.json'), 'utf8')) as { token: string }).token;
}

export interface Registered {
  readonly pensionToken: string;
  readonly muroranToken: string;
  readonly pensionKeys: AnswerKeyPair;
  /** Under HUB_TLS=on, the certificates the registrations answered (shown once). */
  readonly pensionTls?: AgencyTlsMaterial;
  readonly muroranTls?: AgencyTlsMaterial;
}

function tlsMaterial(certificate: unknown): AgencyTlsMaterial | undefined {
  if (typeof certificate !== 'object' || certificate === null) return undefined;
  const { caCertificatePem, certificatePem, privateKeyPem } = certificate as Record<string, unknown>;
  if (typeof caCertificatePem !== 'string' || typeof certificatePem !== 'string' || typeof privateKeyPem !== 'string') return undefined;
  return { caCertificatePem, certificatePem, privateKeyPem };
}

/**
 * Registers the pension service (requester; its endpoint is never called) and Muroran City at its node's endpoint.
 * `web`: the operator's fetch (trusting the hub's CA under HUB_TLS=on).
 */
export async function registerAgencies(hubUrl: string, operator: string, muroranEndpoint: string, muroranPublicKey: string, web: typeof fetch = fetch): Promise<Registered> {
  const pensionKeys = await generateAnswerKeyPair();
  const auth = { authorization: `Bearer ${operator}` };
  const pension = expectStatus(
    'registering the pension service',
    await post(`${hubUrl}/v1/agencies`, { agencyId: PENSION, name: 'Japan Pension Service (load test)', kind: 'pension-service', endpoint: 'http://127.0.0.1:9', publicKey: pensionKeys.publicKey }, auth, web),
    [201],
  );
  const muroran = expectStatus(
    'registering Muroran City',
    await post(`${hubUrl}/v1/agencies`, { agencyId: MURORAN_CITY, name: 'Muroran City (load test)', kind: 'municipality', endpoint: muroranEndpoint, publicKey: muroranPublicKey }, auth, web),
    [201],
  );
  const pensionTls = tlsMaterial(pension['certificate']);
  const muroranTls = tlsMaterial(muroran['certificate']);
  return { pensionToken: String(pension['token']), muroranToken: String(muroran['token']), pensionKeys, ...(pensionTls === undefined ? {} : { pensionTls }), ...(muroranTls === undefined ? {} : { muroranTls }) };
}

/** Local ids of the agency node's copies: never 11 or 12 digits (the shape of a resident record code or a number). */
export function localIdOf(i: number): string {
  return `LT-${String(i).padStart(7, '0')}`;
}

/** The copies file for `load-copies`: one local-tax copy per person. */
export function copiesFor(people: number): unknown[] {
  return Array.from({ length: people }, (_, i) => ({
    localId: localIdOf(i),
    items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 2_000_000 + i * 1000, municipalTaxAmount: 120_000 + i * 60, prefecturalTaxAmount: 80_000 + i * 40, dependents: i % 3 } },
  }));
}

/** 11 digits, distinct per person and per run (resident record codes are the municipality's keys). */
function residentRecordCode(base: number, i: number): string {
  return String(base + i * 7919).padStart(11, '0');
}

/**
 * Issues `people` numbers in Muroran, acquires the pension service's code through the hub and Muroran's
 * through its node's staff endpoint (which stores the code on the person with local id localIdOf(i)).
 * Returns the pension service's codes in person order.
 */
export async function preparePeople(options: {
  hubUrl: string;
  nodeUrl: string;
  operatorToken: string;
  pensionToken: string;
  people: number;
  concurrency: number;
  onProgress?: (done: number) => void;
  /** Under HUB_TLS=on: the operator's and the node's staff calls (trusting the hub's CA), and the pension service's (with its client certificate). */
  operatorFetch?: typeof fetch;
  pensionFetch?: typeof fetch;
}): Promise<string[]> {
  const { hubUrl, nodeUrl, operatorToken, pensionToken, people, concurrency } = options;
  const operatorWeb = options.operatorFetch ?? fetch;
  const pensionWeb = options.pensionFetch ?? fetch;
  const base = 10_000_000_000 + Math.floor(Math.random() * 1_000_000) * 1000;
  const codes = new Array<string>(people);
  let done = 0;
  await pool(people, concurrency, async (i) => {
    const issued = expectStatus(
      `issuing person ${i}`,
      await post(`${hubUrl}/v1/individual-numbers`, { residentRecordCode: residentRecordCode(base, i), municipalityCode: MURORAN_MUNICIPALITY }, { authorization: `Bearer ${operatorToken}` }, operatorWeb),
      [201],
    );
    const individualNumber = String(issued['individualNumber']);
    const pension = expectStatus(
      `acquiring the pension service's code for person ${i}`,
      await post(`${hubUrl}/v1/agency-codes`, { individualNumber, acquisitionNumber: `JPS-LT-${i}` }, { authorization: `Bearer ${pensionToken}` }, pensionWeb),
      [200, 201],
    );
    expectStatus(`acquiring Muroran's code for person ${i} through its node`, await post(`${nodeUrl}/v1/agency-codes`, { localId: localIdOf(i), individualNumber, acquisitionNumber: `MRN-LT-${i}` }, {}, operatorWeb), [200]);
    codes[i] = String(pension['code']);
    options.onProgress?.(++done);
  });
  return codes;
}
