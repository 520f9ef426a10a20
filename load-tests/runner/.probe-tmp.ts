import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENCY_NODE_MAIN, HUB_MAIN, freePort, runToEnd, spawnBuilt, stop, waitReady } from './processes.js';
import { MURORAN_CITY, PROCEDURE, copiesFor, operatorToken, post, preparePeople, registerAgencies } from './setup.js';
const work = mkdtempSync(join(tmpdir(), 'probe-'));
const hub = spawnBuilt('hub', HUB_MAIN, [], { HUB_DATA_DIR: join(work, 'hub'), HUB_PORT: '0', HUB_REDIS_PREFIX: 'probe-x' + process.pid }, work);
const hubUrl = await waitReady(hub);
const port = await freePort();
const env = { AGENCY_ID: MURORAN_CITY, AGENCY_DATA_DIR: join(work, 'n'), AGENCY_HUB_URL: hubUrl, AGENCY_PORT: String(port) };
const { answerPublicKey } = (await runToEnd('k', AGENCY_NODE_MAIN, ['keys'], env, work)) as { answerPublicKey: string };
const reg = await registerAgencies(hubUrl, operatorToken(join(work, 'hub')), `http://127.0.0.1:${port}`, answerPublicKey);
writeFileSync(join(work, 'c.json'), JSON.stringify(copiesFor(50)));
await runToEnd('l', AGENCY_NODE_MAIN, ['load-copies', join(work, 'c.json')], env, work);
writeFileSync(join(work, 't'), reg.muroranToken);
const node = spawnBuilt('node', AGENCY_NODE_MAIN, ['serve'], { ...env, AGENCY_TOKEN_FILE: join(work, 't') }, work);
await waitReady(node);
const codes = await preparePeople({ hubUrl, nodeUrl: `http://127.0.0.1:${port}`, pensionToken: reg.pensionToken, people: 50, concurrency: 4 });
const times: number[] = [];
for (let i = 0; i < 200; i++) {
  const t = performance.now();
  const r = await post(`${hubUrl}/v1/queries`, { providerAgencyId: MURORAN_CITY, procedureCode: PROCEDURE, itemCodes: ['local-tax'], code: codes[i % 50], answerPublicKey: reg.pensionKeys.publicKey }, { authorization: `Bearer ${reg.pensionToken}` });
  times.push(performance.now() - t);
  if (r.status !== 200) console.log(r.text);
}
times.sort((a, b) => a - b);
console.log('sequential query ms p50', times[100]!.toFixed(2), 'p90', times[180]!.toFixed(2), 'max', times[199]!.toFixed(2));
const t2: number[] = [];
for (let i = 0; i < 100; i++) { const t = performance.now(); await fetch(`${hubUrl}/health/live`).then((r) => r.text()); t2.push(performance.now() - t); }
t2.sort((a, b) => a - b);
console.log('health/live ms p50', t2[50]!.toFixed(2));
await stop(node); await stop(hub);
