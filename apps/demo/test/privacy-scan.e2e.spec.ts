import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#ledger';
import { DEFAULT_RELAY_TOPIC, RelayConsumer, type RelayedEvent } from '#relay';
import { verifyOpening, type Opening } from '#sealing';
import { readKey } from '../../hub/test/support/read-key.js';
import { startMockBroker, type MockBroker } from '../../../libs/relay/test/mock-broker.js';
import { AOYAMA, startNetwork, type Network } from '../src/network.js';
import { freePorts } from '../../../test/support/free-ports.js';

/**
 * I10, scanned over a running demo network: no agency code, My Number, resident record code or subject id
 * in any raw entry of the log, in the Kafka topic or in any of the hub's SQLite files, and no answer to a
 * party holds another party's field. The secrets searched for are learnt from the agencies' own stores and
 * from the log opened with the hub's keys, so the scan knows exactly what it must not find.
 */

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const QUERY = { providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] };
/** The figure of the updated copy: pushed as a fact, fetched sealed, so never in the hub's files or log (I5). */
const UPDATED_INCOME = 2987654;
const tokenOf = (dataDir: string, agency: string) => readFileSync(join(dataDir, 'nodes', agency, 'hub.token'), 'utf8').trim();
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

let dataDir: string;
let network: Network;
let broker: MockBroker;
const serials: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'privacy-scan-'));
  broker = await startMockBroker([`${DEFAULT_RELAY_TOPIC}:3`]);
  const [hubPort, pension, muroran] = await freePorts(3);
  network = await startNetwork({
    dataDir,
    hubPort: hubPort!,
    nodePorts: { 'jpn-pension-service': pension!, 'muroran-city': muroran! },
    log: () => {},
    hubEnv: { HUB_KAFKA_BROKERS: broker.brokers.join(','), HUB_CHECKPOINT_EVERY_EVENTS: '4', HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS: '200' },
  });
  const pensionNode = network.nodeUrl('jpn-pension-service');
  // The demo's exchanges: sealed and plain answers, a bulk query, a denial, a notice, a push, refusals of every kind.
  for (const body of [{ localId: 'P-4410-0000123', ...QUERY, encrypt: true }, { localId: 'P-4410-0000123', ...QUERY }, { localId: 'P-4410-0000123', ...QUERY, itemCodes: ['livelihood-protection'] }]) {
    const res = await post(`${pensionNode}/v1/queries`, body);
    serials.push(String(res.json['serial']));
  }
  await post(`${pensionNode}/v1/queries/bulk`, { localIds: ['P-4410-0000123', 'P-4410-0000456'], ...QUERY });
  expect((await post(`${network.nodeUrl('muroran-city')}/v1/notices`, { localId: 'M-000123', title: '児童手当のご案内', body: '申請の受付を完了しました。' })).status).toBe(201);
  // seeds/003: a subscription, Muroran City's update of a copy, the push and the fetch after it.
  expect((await post(`${pensionNode}/v1/subscriptions`, { localId: 'P-4410-0000123', ...QUERY })).status).toBe(201);
  const updated = await post(`${network.nodeUrl('muroran-city')}/v1/updates`, { changes: [{ localId: 'M-000123', items: { 'local-tax': { fiscalYear: 2026, taxableIncome: UPDATED_INCOME } } }] });
  expect(updated.json['results']).toEqual([expect.objectContaining({ outcome: 'reported', subscribers: 1 })]);
  await until('the fetch after the push', async () => {
    const pushes = ((await (await fetch(`${pensionNode}/v1/pushes`)).json()) as { pushes: { fetch: { outcome: string } | null }[] }).pushes;
    return pushes[0]?.fetch?.outcome === 'answered' ? true : undefined;
  });
  const pensionToken = tokenOf(dataDir, 'jpn-pension-service');
  const muroranCode = String((readCodes(dataDir, 'muroran-city')[0]));
  // A notice addressed with another agency's code, a query naming another agency, an unknown number, an unknown token.
  await post(`${network.hubUrl}/v1/notices`, { code: muroranCode, title: 'x', body: 'y' }, bearer(pensionToken));
  await post(`${network.hubUrl}/v1/queries`, { code: muroranCode, ...QUERY, requesterAgencyId: 'muroran-city' }, bearer(pensionToken));
  await post(`${network.hubUrl}/v1/agency-codes`, { individualNumber: network.aoyama.individualNumber.replace(/^(\d{4})/, '0000'), acquisitionNumber: 'X-1' }, bearer(pensionToken));
  await post(`${network.hubUrl}/v1/queries`, { code: muroranCode, ...QUERY }, bearer('an-unknown-token-of-nobody-000'));
  await new Promise((r) => setTimeout(r, 600)); // the unidentified refusal is flushed
}, 180_000);

afterAll(async () => {
  await network?.stop();
  await broker?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The codes an agency's intermediate server holds for its people (what it got from the hub). */
function readCodes(dir: string, agency: string): string[] {
  const db = new Database(join(dir, 'nodes', agency, 'agency.sqlite'), { readonly: true });
  try {
    return (db.prepare('SELECT agency_code FROM persons WHERE agency_code IS NOT NULL').pluck().all() as string[]).filter((c) => c.length > 0);
  } finally {
    db.close();
  }
}

/** Every secret that must not be found: numbers, resident record codes, both agencies' codes, every subject id. */
async function secrets(): Promise<{ name: string; value: string }[]> {
  const out: { name: string; value: string }[] = [
    { name: 'My Number', value: network.aoyama.individualNumber },
    { name: 'resident record code', value: AOYAMA.residentRecordCode },
    { name: 'citizen secret', value: network.aoyama.citizenSecret },
    { name: 'the updated copy\'s value', value: String(UPDATED_INCOME) },
  ];
  for (const agency of ['jpn-pension-service', 'muroran-city']) {
    for (const code of readCodes(dataDir, agency)) out.push({ name: `${agency} code`, value: code });
    // Credentials, and the digests the hub compares them by.
    const token = tokenOf(dataDir, agency);
    out.push({ name: `${agency} token`, value: token }, { name: `${agency} token digest`, value: createHash('sha256').update(token).digest('hex') });
  }
  out.push({ name: 'citizen secret digest', value: createHash('sha256').update(network.aoyama.citizenSecret).digest('hex') });
  const { sealer, close } = readKey(dataDir);
  try {
    const db = new Database(join(dataDir, 'ledger.sqlite'), { readonly: true });
    const texts = db.prepare('SELECT envelope FROM events ORDER BY position').pluck().all() as string[];
    db.close();
    const subjects = new Set<string>();
    for (const t of texts) {
      const opened = sealer.open(JSON.parse(t) as RecordedEvent).event.data as { subjectId?: unknown };
      if (typeof opened.subjectId === 'string') subjects.add(opened.subjectId);
    }
    for (const s of subjects) out.push({ name: 'subject id', value: s });
  } finally {
    close();
  }
  return out;
}

function expectNone(where: string, haystack: Buffer | string, found: readonly { name: string; value: string }[]): void {
  const bytes = typeof haystack === 'string' ? Buffer.from(haystack, 'utf8') : haystack;
  for (const s of found) expect(bytes.includes(Buffer.from(s.value, 'utf8')), `${s.name} in ${where}`).toBe(false);
}

describe('a privacy scan of the running demo network (I10)', () => {
  it('knows what it looks for: codes of both agencies, the number, subject ids', async () => {
    const found = await secrets();
    expect(found.filter((s) => s.name.endsWith('code') && s.name !== 'resident record code').length).toBeGreaterThanOrEqual(2);
    expect(found.filter((s) => s.name === 'subject id').length).toBeGreaterThanOrEqual(1);
  });

  it('finds none in any raw entry of the log', async () => {
    const auditor = (JSON.parse(readFileSync(join(dataDir, 'keys', 'auditor.token.json'), 'utf8')) as { token: string }).token;
    const entries: string[] = [];
    for (let from = 0; ; ) {
      const page = (await (await fetch(`${network.hubUrl}/v1/audit/entries?from=${from}&limit=1000`, { headers: bearer(auditor) })).json()) as { entries: string[]; head: number };
      entries.push(...page.entries);
      from += page.entries.length;
      if (page.entries.length === 0 || from >= page.head) break;
    }
    expect(entries.length).toBeGreaterThan(30);
    const types = new Set(entries.map((t) => (JSON.parse(t) as { type: string }).type));
    for (const t of ['QueryAccepted', 'ProvisionRequested', 'ProvisionAnswered', 'QueryDenied', 'AgencyCodeIssued', 'IndividualNumberIssued', 'NoticeSent', 'RequestRefused', 'UnauthenticatedRequestsRecorded', 'SubscriptionCreated', 'CopyUpdated', 'PushIssued', 'PushDelivered']) expect(types, t).toContain(t);
    expectNone('the raw entries', entries.join('\n'), await secrets());
  });

  it('finds none in the Kafka topic', async () => {
    const head = ((await (await fetch(`${network.hubUrl}/health/ready`)).json()) as { head: number }).head;
    const got: RelayedEvent[] = [];
    const consumer = new RelayConsumer({ brokers: broker.brokers, groupId: 'privacy-scan', handler: (r) => void got.push(r) });
    try {
      await consumer.start();
      await until(`${head} messages`, async () => (got.length >= head ? true : undefined), 60_000);
    } finally {
      await consumer.stop();
    }
    expectNone('the Kafka topic', got.map((r) => `${r.event.streamId}\n${r.text}`).join('\n'), await secrets());
  });

  it('finds none in any file of the hub\'s data dir (ledger, projections, look-ups, key ring, relay; WAL included)', async () => {
    const files = readdirSync(dataDir).map((f) => join(dataDir, f)).filter((f) => statSync(f).isFile());
    expect(files.map((f) => f.split('/').pop())).toEqual(expect.arrayContaining(['ledger.sqlite', 'projections.sqlite', 'keyring.sqlite', 'notices.sqlite', 'lookups.db']));
    const found = await secrets();
    for (const f of files) expectNone(f, readFileSync(f), found);
    // The byte search finds what is there: each agency's own store holds its codes (its side of the linkage).
    for (const agency of ['jpn-pension-service', 'muroran-city']) {
      const own = Buffer.concat(readdirSync(join(dataDir, 'nodes', agency)).filter((f) => f.includes('.sqlite')).map((f) => readFileSync(join(dataDir, 'nodes', agency, f))));
      for (const code of readCodes(dataDir, agency)) expect(own.includes(Buffer.from(code)), `${agency} holds ${code}`).toBe(true);
      // And the updated value: Muroran's copy, and the pension service's fetch after the push.
      expect(own.includes(Buffer.from(String(UPDATED_INCOME))), `${agency} holds the updated value`).toBe(true);
    }
  });

  it('gives each party the openings of its own fields, never another party\'s', async () => {
    const [serial] = serials;
    const pension = tokenOf(dataDir, 'jpn-pension-service');
    const muroran = tokenOf(dataDir, 'muroran-city');
    const proofOf = async (token: string) => {
      const size = ((await (await fetch(`${network.hubUrl}/health/ready`)).json()) as { head: number }).head;
      return until('the proof', async () => {
        const res = await fetch(`${network.hubUrl}/v1/audit/proofs/inclusion?serial=${serial}&size=${size}`, { headers: bearer(token) });
        return res.status === 200 ? ((await res.json()) as { proofs: { envelope: string; openings: Opening[] }[] }).proofs : undefined;
      });
    };
    const pensionCodes = readCodes(dataDir, 'jpn-pension-service');
    const muroranCodes = readCodes(dataDir, 'muroran-city');
    const subjects = (await secrets()).filter((s) => s.name === 'subject id');
    const forPension = await proofOf(pension);
    const forMuroran = await proofOf(muroran);
    const forAoyama = await proofOf(network.aoyama.citizenSecret);
    const values = (ps: { openings: Opening[] }[]) => ps.flatMap((p) => p.openings.map((o) => String(o.value)));
    expect(values(forPension)).toEqual(expect.arrayContaining([expect.toBeOneOf(pensionCodes)]));
    expect(values(forMuroran)).toEqual(expect.arrayContaining([expect.toBeOneOf(muroranCodes)]));
    expectNone('the pension service\'s proof', JSON.stringify(forPension), [...muroranCodes.map((value) => ({ name: 'muroran code', value })), ...subjects]);
    expectNone('Muroran City\'s proof', JSON.stringify(forMuroran), [...pensionCodes.map((value) => ({ name: 'pension code', value })), ...subjects]);
    expectNone('Aoyama-san\'s proof', JSON.stringify(forAoyama), [...pensionCodes, ...muroranCodes].map((value) => ({ name: 'code', value })));
    for (const ps of [forPension, forMuroran, forAoyama]) for (const p of ps) for (const o of p.openings) verifyOpening(JSON.parse(p.envelope) as RecordedEvent, o);
  });
});
