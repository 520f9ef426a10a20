import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tlsFetch } from '../../agency-node/src/hub/tls-fetch.js';
import { personFile, querySerialFile, readPerson } from './network.js';

/** The demo's fetch: unless HUB_TLS=off one that trusts the hub's CA (the hub and the intermediate servers serve its certificates). */
let web: typeof fetch = (input, init) => fetch(input, init);

/**
 * `npm run demo` (with `npm start` running): the worked example of seeds/001. The pension service's staff
 * ask their intermediate server for Aoyama-san's local tax information held by Muroran City; the query
 * goes through the hub (law check, code translation, encrypted relay); then Aoyama-san reads her
 * provision record (with her one-time secret until she enrols a passkey in the portal; then in the
 * portal), and a notice Muroran City sends her.
 */
async function main(): Promise<void> {
  // eslint-disable-next-line no-restricted-syntax -- the demo's one read of its environment
  const env = process.env;
  const dataDir = env['HUB_DATA_DIR'] || './data';
  const hubPort = Number(env['HUB_PORT'] || 8080);
  // As npm start: over TLS unless HUB_TLS=off.
  const scheme = env['HUB_TLS'] === 'off' ? 'http' : 'https';
  if (scheme === 'https') {
    const caFile = join(dataDir, 'keys', 'tls-ca.cert.pem');
    if (!existsSync(caFile)) throw new Error(`${caFile} is missing: start the network first (npm start), or, if it runs with HUB_TLS=off, run HUB_TLS=off npm run demo`);
    const trusting = tlsFetch({ caCertificatePem: readFileSync(caFile, 'utf8') });
    // A network started with HUB_TLS=off answers no TLS handshake: say so rather than only "socket hang up".
    web = (input, init) => trusting(input, init).catch((error: unknown) => Promise.reject(new Error(`${error instanceof Error ? error.message : String(error)} (over https: if npm start runs with HUB_TLS=off, run HUB_TLS=off npm run demo)`)));
  }
  const hub = `${scheme}://127.0.0.1:${hubPort}`;
  const pensionNode = `${scheme}://127.0.0.1:${hubPort + 1}`;
  const portal = `http://localhost:${Number(env['PORTAL_PORT'] || 3300)}`;
  const aoyama = readPerson(dataDir);
  const say = (text: string) => process.stdout.write(`${text}\n`);

  say('1. 日本年金機構 → 室蘭市: local tax information (地方税関係情報) of Aoyama-san for a pension award claim');
  const query = await web(`${pensionNode}/v1/queries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], encrypt: true }),
  });
  const answer = (await query.json()) as Record<string, unknown>;
  if (query.status !== 200) throw new Error(`the query failed (${query.status}): ${JSON.stringify(answer)}`);
  say(`   processing serial (処理通番): ${String(answer['serial'])}`);
  // The auditor commands of the READMEs read it from here.
  writeFileSync(querySerialFile(dataDir), `${String(answer['serial'])}\n`);
  say(`   outcome: ${String(answer['outcome'])} (answer encrypted end to end; the hub kept only its digest and size)`);
  say(`   answer: ${JSON.stringify(answer['items'], null, 2).replaceAll('\n', '\n   ')}`);

  say('\n2. Aoyama-san reads her provision record (情報提供等記録)');
  const records = await web(`${hub}/v1/citizens/me/provision-records`, { headers: { authorization: `Bearer ${aoyama.citizenSecret}` } });
  const body = (await records.json()) as { code?: string; records?: { serial: string; date: string; time: string; requester: { name: string } | null; provider: { name: string }; procedure: { name: string }; items: { name: string }[]; outcome: string }[] };
  // Her one-time secret admits her until she enrols a passkey in the portal; then only the passkey does.
  const enrolled = records.status === 401 && body.code === 'CREDENTIAL_RETIRED';
  if (enrolled) say(`   she has enrolled a passkey, so her one-time secret is retired: she reads it in the portal (${portal}), signed in with her passkey`);
  else {
    if (records.status !== 200 || body.records === undefined) throw new Error(`reading the provision record failed (${records.status}): ${JSON.stringify(body)}`);
    say('   with her one-time secret (until she enrols a passkey in the portal)');
    for (const r of body.records.slice(0, 10)) {
      say(`   ${r.date} ${r.time}  ${r.requester?.name ?? '本人'} ← ${r.provider.name}  ${r.procedure.name}  [${r.items.map((i) => i.name).join(', ')}]  ${r.outcome}  (${r.serial})`);
    }
  }
  say('\n3. 室蘭市 sends Aoyama-san a notice (お知らせ) through its intermediate server; she reads her inbox');
  const muroranNode = `${scheme}://127.0.0.1:${hubPort + 2}`;
  const notice = await web(`${muroranNode}/v1/notices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ localId: 'M-000123', title: '住民税 課税証明書のご案内', body: '年金の請求に必要な地方税関係情報は、マイナンバーによる情報連携で日本年金機構へ提供されました。\n課税証明書の提出は不要です。' }),
  });
  const sent = (await notice.json()) as Record<string, unknown>;
  if (notice.status !== 201) throw new Error(`sending the notice failed (${notice.status}): ${JSON.stringify(sent)}`);
  say(`   sent under serial ${String(sent['serial'])} (the hub keeps the text sealed)`);
  if (enrolled) say(`   she reads it in the portal's お知らせ (${portal})`);
  else {
    const inbox = await web(`${hub}/v1/citizens/me/notices?limit=3`, { headers: { authorization: `Bearer ${aoyama.citizenSecret}` } });
    const notices = (await inbox.json()) as { notices?: { from: { name: string }; title: string; body: string; sentAt: string }[] };
    if (inbox.status !== 200 || notices.notices === undefined) throw new Error(`reading the notices failed (${inbox.status}): ${JSON.stringify(notices)}`);
    for (const n of notices.notices) say(`   ${n.sentAt}  from ${n.from.name}: ${n.title}\n     ${n.body.replaceAll('\n', '\n     ')}`);
  }

  await meshScene({ hub, pensionNode, muroranNode, citizenSecret: enrolled ? undefined : aoyama.citizenSecret, portal, say });

  say(`\n5. Anyone can check the exchange is in the signed log: GET ${hub}/v1/audit/proofs/inclusion?serial=${String(answer['serial'])}`);
  say(`   (once the next checkpoint is signed, within 10 s; offline: npm run auditor -- prove --db ${dataDir}/ledger.sqlite --serial "$(cat ${querySerialFile(dataDir)})" --out proof.json)`);
  say(`\n6. Aoyama-san checks it herself in the portal: ${portal} → 情報提供等記録 → 検証する (her browser checks the proof and the signed checkpoint)`);
  if (!enrolled) say(`   first time: はじめての登録 with the citizenSecret of ${personFile(dataDir)}, then a passkey`);
}

/** "YYYY-MM-DD HH:MM:SS" in Japan time (UTC+9), as the provision record shows its times. */
function japanTime(iso: string): string {
  return new Date(Date.parse(iso) + 9 * 3_600_000).toISOString().slice(0, 19).replace('T', ' ');
}

interface PushLine {
  readonly pushId: string;
  readonly serial: string;
  readonly subscriptionId: string;
  readonly updatedAt: string;
  readonly fetchWanted: boolean;
  readonly fetch: { serial: string | null; outcome: string; reason: string | null; items: Record<string, unknown> | null } | null;
}

async function json(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await web(url, { ...init, headers: { ...(init?.body === undefined ? {} : { 'content-type': 'application/json' }), ...(init?.headers as Record<string, string> | undefined) } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * seeds/003 (公共サービスメッシュ): the pension service subscribes to Muroran City's local-tax information
 * for Aoyama-san; Muroran City updates her figure (副本更新) and reports it, without the data; the hub
 * pushes to the pension service's intermediate server, which fetches the new value by an ordinary lawful
 * query; her records show the push and the fetch.
 */
async function meshScene(o: { hub: string; pensionNode: string; muroranNode: string; citizenSecret: string | undefined; portal: string; say: (text: string) => void }): Promise<void> {
  const { say } = o;
  say('\n4. 公共サービスメッシュ: 室蘭市 updates Aoyama-san\'s local tax figure; 日本年金機構, subscribed, is pushed and fetches it');
  // One subscription, reused by later runs of the demo: the hub refuses a second active subscription of the
  // pension service to her local tax at Muroran (SUBSCRIPTION_EXISTS), whatever its procedure, so any active one is it.
  type Subscription = { subscriptionId: string; localId: string | null; providerAgencyId: string; procedureCode: string; itemCodes: string[]; status: string; expiresAt: string };
  let subscription: Subscription | undefined;
  for (let after: string | undefined, pages = 0; subscription === undefined && pages < 1000; pages++) {
    const listed = await json(`${o.pensionNode}/v1/subscriptions?limit=100${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`);
    if (listed.status !== 200) throw new Error(`listing the subscriptions failed (${listed.status}): ${JSON.stringify(listed.body)}`);
    const subscriptions = listed.body['subscriptions'] as Subscription[];
    subscription = subscriptions.find((s) => s.status === 'active' && s.localId === 'P-4410-0000123' && s.providerAgencyId === 'muroran-city' && s.itemCodes.includes('local-tax'));
    after = typeof listed.body['next'] === 'string' ? listed.body['next'] : undefined;
    if (after === undefined) break;
  }
  if (subscription === undefined) {
    const created = await json(`${o.pensionNode}/v1/subscriptions`, {
      method: 'POST',
      body: JSON.stringify({ localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }),
    });
    if (created.status !== 201) throw new Error(`subscribing failed (${created.status}): ${JSON.stringify(created.body)}`);
    subscription = created.body as unknown as Subscription;
    say(`   日本年金機構 subscribes (購読) to 室蘭市's 地方税関係情報 for her: subscription ${subscription.subscriptionId}, serial ${String(created.body['serial'])}`);
  } else say(`   日本年金機構 is subscribed (購読) to 室蘭市's 地方税関係情報 for her: subscription ${subscription.subscriptionId}, until ${subscription.expiresAt}`);

  // A corrected assessment (更正): a new figure each run, so every run is a real change.
  const updatedAt = new Date().toISOString();
  const newTax = { fiscalYear: 2026, taxableIncome: 2980000, municipalTaxAmount: 178800, prefecturalTaxAmount: 119200, dependents: 1, correctedAt: updatedAt };
  const updated = await json(`${o.muroranNode}/v1/updates`, { method: 'POST', body: JSON.stringify({ updatedAt, changes: [{ localId: 'M-000123', items: { 'local-tax': newTax } }] }) });
  const [result] = (updated.body['results'] ?? []) as { outcome: string; serial?: string; subscribers?: number; reason?: string }[];
  if (updated.status !== 200 || result?.outcome !== 'reported') throw new Error(`the update failed (${updated.status}): ${JSON.stringify(updated.body)}`);
  say(`   室蘭市's intermediate server stores the new copy and reports the update (by its own code, no data): serial ${String(result.serial)}, ${String(result.subscribers)} subscriber(s) pushed`);

  const pushesOf = async () => ((await json(`${o.pensionNode}/v1/pushes?limit=20`)).body['pushes'] ?? []) as PushLine[];
  const subscriptionId = subscription.subscriptionId;
  const push = await poll('the push at the pension service', async () => (await pushesOf()).find((p) => Date.parse(p.updatedAt) === Date.parse(updatedAt) && p.subscriptionId === subscriptionId));
  say(`   the hub pushes to 日本年金機構's intermediate server (signed by the hub, no data): push serial ${push.serial}`);
  let fetched: { serial: string | null; outcome: string; items: Record<string, unknown> | null };
  if (push.fetchWanted) {
    const line = await poll('the fetch after the push', async () => (await pushesOf()).find((p) => p.pushId === push.pushId && p.fetch !== null));
    fetched = line.fetch!;
  } else {
    // A node with AGENCY_PUSH_FETCH=off: its staff fetch it the ordinary way.
    const q = await json(`${o.pensionNode}/v1/queries`, { method: 'POST', body: JSON.stringify({ localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }) });
    fetched = { serial: String(q.body['serial']), outcome: String(q.body['outcome']), items: (q.body['items'] as Record<string, unknown> | undefined) ?? null };
  }
  if (fetched.outcome !== 'answered') throw new Error(`the fetch after the push was not answered: ${JSON.stringify(fetched)}`);
  say(`   it fetches the new value by an ordinary lawful query: serial ${String(fetched.serial)}, outcome ${fetched.outcome}`);
  say(`   new value: ${JSON.stringify(fetched.items, null, 2).replaceAll('\n', '\n   ')}`);

  if (o.citizenSecret === undefined) {
    say(`   Aoyama-san sees the push and the fetch in the portal (${o.portal}), signed in with her passkey`);
    return;
  }
  const auth = { authorization: `Bearer ${o.citizenSecret}` };
  const pushRecords = await poll('the push in her record', async () => {
    const r = await json(`${o.hub}/v1/citizens/me/push-records?limit=5`, { headers: auth });
    const lines = (r.body['pushes'] ?? []) as { serial: string; subscriber: { name: string | null }; provider: { name: string | null }; procedureCode: string; itemCode: string; status: string; issuedAt: string }[];
    return lines.some((p) => p.serial === push.serial && p.status === 'delivered') ? lines : undefined;
  });
  say('   Aoyama-san\'s record of pushes (プッシュ型の情報提供):');
  for (const p of pushRecords.slice(0, 3)) say(`   ${japanTime(p.issuedAt)}  ${p.provider.name ?? '?'} → ${p.subscriber.name ?? '?'}  ${p.procedureCode}  [${p.itemCode}]  ${p.status}  (${p.serial})`);
  const records = await json(`${o.hub}/v1/citizens/me/provision-records?limit=20`, { headers: auth });
  const fetchLine = ((records.body['records'] ?? []) as { serial: string; date: string; time: string; requester: { name: string } | null; provider: { name: string }; items: { name: string }[]; outcome: string }[]).find((r) => r.serial === fetched.serial);
  if (fetchLine !== undefined) say(`   and the fetch in her provision record: ${fetchLine.date} ${fetchLine.time}  ${fetchLine.requester?.name ?? '本人'} ← ${fetchLine.provider.name}  [${fetchLine.items.map((i) => i.name).join(', ')}]  ${fetchLine.outcome}  (${fetchLine.serial})`);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
