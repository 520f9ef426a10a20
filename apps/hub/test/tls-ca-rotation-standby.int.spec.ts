import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CA_BUNDLE_FILE } from '../src/tls/hub-ca.js';
import { HubTls } from '../src/tls/hub-tls.js';
import { KURRENTDB_URL, announceServer, eventually } from './kurrentdb-hub.support.js';
import { expectProblem } from './support/problem-assertions.js';
import { useStandbyPair } from './support/standby-pair.js';

// A leader and a standby on one KurrentDB log (the wire-level stand-in, or the server at KURRENTDB_URL),
// sharing keys/, both with HUB_TLS=on: only the leader rotates the TLS CA; the standby uses the newest CA
// the log announces once it takes over, and rotates on from it.
announceServer();

const ENV = { HUB_AUTHORIZATION_TABLE_FILE: '', HUB_SELF_DISCLOSURE_TABLE_FILE: '', HUB_TLS: 'on' };
const pair = useStandbyPair(ENV);
const { log } = pair;

describe('TLS CA rotation on KurrentDB, with a standby', () => {
  it('the standby refuses (503 NOT_LEADER, nothing recorded, no key made); the leader rotates; once the standby takes over it issues with the new CA and rotates on from it', async () => {
    const { a, b } = pair;
    expect((await b.get('/health/ready')).json()).toMatchObject({ role: 'standby' });
    const keysDir = a.config.keysDir;
    const files = readdirSync(keysDir).sort();
    const head = (await log.texts()).length;
    const first = b.app.get(HubTls).ca!.caFingerprint;
    expect(a.app.get(HubTls).ca!.caFingerprint).toBe(first);
    expectProblem(await b.post('/v1/key-rotations/tls-ca', {}, b.operator), 503, 'NOT_LEADER');
    expect((await log.texts()).length).toBe(head);
    expect(readdirSync(keysDir).sort()).toEqual(files);

    const rotated = await a.post('/v1/key-rotations/tls-ca', { overlapDays: 7 }, a.operator);
    expect(rotated.statusCode, rotated.body).toBe(201);
    const { caFingerprint, previousCaFingerprint } = rotated.json<{ caFingerprint: string; previousCaFingerprint: string }>();
    expect(previousCaFingerprint).toBe(first);
    expect(a.app.get(HubTls).ca!.caFingerprint).toBe(caFingerprint);
    // The standby keeps the CA it started with until it takes over.
    expect(b.app.get(HubTls).ca!.caFingerprint).toBe(first);

    await a.close();
    await eventually('the standby takes over', async () => b.leadership.acceptsCommands, 20_000);
    await eventually('the new leader uses the new CA', async () => b.app.get(HubTls).ca!.caFingerprint === caFingerprint);
    const tls = b.app.get(HubTls).ca!;
    expect(tls.trustBundlePem).toBe(readFileSync(join(keysDir, CA_BUNDLE_FILE), 'utf8'));
    expect(tls.trustBundlePem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const again = await b.post('/v1/key-rotations/tls-ca', {}, b.operator);
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json()).toMatchObject({ previousCaFingerprint: caFingerprint });
  }, KURRENTDB_URL ? 60_000 : 40_000);
});
