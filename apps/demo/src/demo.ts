import { writeFileSync } from 'node:fs';
import { personFile, querySerialFile, readPerson } from './network.js';

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
  const hub = `http://127.0.0.1:${hubPort}`;
  const pensionNode = `http://127.0.0.1:${hubPort + 1}`;
  const portal = `http://localhost:${Number(env['PORTAL_PORT'] || 3300)}`;
  const aoyama = readPerson(dataDir);
  const say = (text: string) => process.stdout.write(`${text}\n`);

  say('1. 日本年金機構 → 室蘭市: local tax information (地方税関係情報) of Aoyama-san for a pension award claim');
  const query = await fetch(`${pensionNode}/v1/queries`, {
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
  const records = await fetch(`${hub}/v1/citizens/me/provision-records`, { headers: { authorization: `Bearer ${aoyama.citizenSecret}` } });
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
  const muroranNode = `http://127.0.0.1:${hubPort + 2}`;
  const notice = await fetch(`${muroranNode}/v1/notices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ localId: 'M-000123', title: '住民税 課税証明書のご案内', body: '年金の請求に必要な地方税関係情報は、マイナンバーによる情報連携で日本年金機構へ提供されました。\n課税証明書の提出は不要です。' }),
  });
  const sent = (await notice.json()) as Record<string, unknown>;
  if (notice.status !== 201) throw new Error(`sending the notice failed (${notice.status}): ${JSON.stringify(sent)}`);
  say(`   sent under serial ${String(sent['serial'])} (the hub keeps the text sealed)`);
  if (enrolled) say(`   she reads it in the portal's お知らせ (${portal})`);
  else {
    const inbox = await fetch(`${hub}/v1/citizens/me/notices?limit=3`, { headers: { authorization: `Bearer ${aoyama.citizenSecret}` } });
    const notices = (await inbox.json()) as { notices?: { from: { name: string }; title: string; body: string; sentAt: string }[] };
    if (inbox.status !== 200 || notices.notices === undefined) throw new Error(`reading the notices failed (${inbox.status}): ${JSON.stringify(notices)}`);
    for (const n of notices.notices) say(`   ${n.sentAt}  from ${n.from.name}: ${n.title}\n     ${n.body.replaceAll('\n', '\n     ')}`);
  }

  say(`\n4. Anyone can check the exchange is in the signed log: GET ${hub}/v1/audit/proofs/inclusion?serial=${String(answer['serial'])}`);
  say(`   (once the next checkpoint is signed, within 10 s; offline: npm run auditor -- prove --db ${dataDir}/ledger.sqlite --serial "$(cat ${querySerialFile(dataDir)})" --out proof.json)`);
  say(`\n5. Aoyama-san checks it herself in the portal: ${portal} → 情報提供等記録 → 検証する (her browser checks the proof and the signed checkpoint)`);
  if (!enrolled) say(`   first time: はじめての登録 with the citizenSecret of ${personFile(dataDir)}, then a passkey`);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
