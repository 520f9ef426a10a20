import { readPerson } from './network.js';

/**
 * `npm run demo` (with `npm start` running): the worked example of seeds/001. The pension service's staff
 * ask their intermediate server for Aoyama-san's local tax information held by Muroran City; the query
 * goes through the hub (law check, code translation, encrypted relay); then Aoyama-san reads her
 * provision record with her own secret.
 */
async function main(): Promise<void> {
  // eslint-disable-next-line no-restricted-syntax -- the demo's one read of its environment
  const env = process.env;
  const dataDir = env['HUB_DATA_DIR'] || './data';
  const hubPort = Number(env['HUB_PORT'] || 8080);
  const hub = `http://127.0.0.1:${hubPort}`;
  const pensionNode = `http://127.0.0.1:${hubPort + 1}`;
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
  say(`   outcome: ${String(answer['outcome'])} (answer encrypted end to end; the hub kept only its digest and size)`);
  say(`   answer: ${JSON.stringify(answer['items'], null, 2).replaceAll('\n', '\n   ')}`);

  say('\n2. Aoyama-san reads her provision record (情報提供等記録) with her own secret');
  const records = await fetch(`${hub}/v1/citizens/me/provision-records`, { headers: { authorization: `Bearer ${aoyama.citizenSecret}` } });
  const body = (await records.json()) as { records?: { serial: string; date: string; time: string; requester: string; provider: string; procedure: string; items: string[]; outcome: string }[] };
  if (records.status !== 200 || body.records === undefined) throw new Error(`reading the provision record failed (${records.status}): ${JSON.stringify(body)}`);
  for (const r of body.records.slice(0, 10)) {
    say(`   ${r.date} ${r.time}  ${r.requester} ← ${r.provider}  ${r.procedure}  [${r.items.join(', ')}]  ${r.outcome}  (${r.serial})`);
  }
  say(`\n3. Anyone can check this exchange is in the signed log: GET ${hub}/v1/audit/proofs/inclusion?serial=${String(answer['serial'])}`);
  say('   (once the next checkpoint is signed; or: npm run auditor -- prove --db data/ledger.sqlite --serial <serial> --out proof.json)');
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
