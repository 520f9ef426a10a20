import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import axe from 'axe-core';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointSigner } from '../../hub/src/audit/checkpoint-signer.service.js';
import { TreeFollower } from '../../hub/src/audit/tree-follower.service.js';
import { FakeProvider, MURORAN_CITY, PENSION, acquire, issuePerson, queryLocalTax, registerAgency, startLinkageHub } from '../../hub/test/support/linkage-fixture.js';
import type { TestHub } from '../../hub/test/support/test-hub.js';
import { ROOT } from '../../demo/src/network.js';
import { loadPortalConfig } from '../src/config/portal-config.js';
import { createPortalApp } from '../src/portal-app.js';
import { freePorts } from './support/portal-process.js';

// The browser's check across a checkpoint key rotation, in Chromium (headless) over a hub and the portal
// run here: the frontend is built from its sources, a citizen enrols a passkey (a CDP virtual
// authenticator) and verifies a record; the operator rotates the checkpoint key, so that the latest
// checkpoint carries the new key's signature only; the page's check still passes (the served key set is
// rebuilt as a chain from the key the browser pinned) and a tampered key set fails, saying why; another
// first key than the one pinned at first use is VERIFIER_KEY_CHANGED.

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-results', 'portal');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--lang=ja-JP'];

let dir: string;
let hub: TestHub;
let provider: FakeProvider;
let portal: NestFastifyApplication;
let portalUrl: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let serial: string;
let citizenSecret: string;
const consoleErrors: string[] = [];

interface ServedKey {
  verifierKey: string;
  keyId: string;
  fromSize: number;
  announcedAt?: number;
  announcedBy?: string;
  handoverSize?: number;
  handoverNote?: string;
}

const quiet = new Writable({ write: (_c, _e, done) => done() });

/** The hub signs a checkpoint now, over everything appended so far. */
async function signNow(): Promise<void> {
  const follower = hub.app.get(TreeFollower);
  const signer = hub.app.get(CheckpointSigner);
  await follower.catchUp();
  const target = (await signer.signIfDue(true))?.size ?? signer.lastSigned?.size ?? 0;
  // The hub serves a checkpoint as the latest once its tree has followed the log past the event that recorded it.
  for (const deadline = Date.now() + 15_000; ; ) {
    await follower.catchUp();
    const latest = await hub.get('/v1/audit/checkpoint?format=json');
    if (latest.statusCode === 200 && latest.json<{ size: number }>().size >= target) return;
    if (Date.now() > deadline) throw new Error(`the checkpoint of size ${target} is not served as the latest`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'portal-key-chain-'));
  const [portalPort] = await freePorts(1);
  portalUrl = `http://localhost:${portalPort}`;
  // The frontend, built from its sources into a directory of this test.
  await build({ configFile: join(ROOT, 'apps/portal/web/vite.config.ts'), logLevel: 'warn', build: { outDir: join(dir, 'web'), emptyOutDir: true, sourcemap: false } });

  hub = await startLinkageHub({ env: { HUB_PORTAL_ORIGINS: portalUrl, HUB_WEBAUTHN_RP_ID: 'localhost', HUB_CHECKPOINT_EVERY_MS: '3600000', HUB_CHECKPOINT_EVERY_EVENTS: '1' } });
  provider = new FakeProvider();
  await provider.start(hub);
  const muroran = await registerAgency(hub, MURORAN_CITY, 'municipality', provider.endpoint);
  const pension = await registerAgency(hub, PENSION, 'pension-service', provider.endpoint);
  const person = await issuePerson(hub);
  citizenSecret = person.citizenSecret;
  const pensionCode = await acquire(hub, pension, person.individualNumber);
  const muroranCode = await acquire(hub, muroran, person.individualNumber);
  provider.behaviours.set(muroranCode, { answer: { 'local-tax': { fiscalYear: 2026, taxableIncome: 2980000 } } });
  const q = await queryLocalTax(hub, pension, pensionCode);
  expect(q.statusCode, q.body).toBe(200);
  serial = q.json<{ serial: string }>().serial;
  await signNow();
  await hub.app.listen({ host: '127.0.0.1', port: 0 });
  const hubUrl = (await hub.app.getUrl()).replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');

  const config = loadPortalConfig({ PORTAL_PORT: String(portalPort), PORTAL_HUB_URL: hubUrl, PORTAL_ORIGIN: portalUrl, PORTAL_DATA_DIR: join(dir, 'portal'), PORTAL_WEB_ROOT: join(dir, 'web'), PORTAL_LOG_LEVEL: 'warn' });
  portal = await createPortalApp(config, { logStream: quiet });
  await portal.listen({ host: '127.0.0.1', port: portalPort! });

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'ja-JP', timezoneId: 'Asia/Tokyo' });
  page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await portal?.close();
  await provider?.stop();
  await hub?.dispose();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Clicks 検証する on the record's card and returns the result's state and code once shown. */
async function verifyOnPage(): Promise<{ state: string | null; code: string | null; text: string }> {
  const card = page.locator('li.record', { hasText: serial });
  const result = card.locator('[data-verification]');
  await card.getByRole('button', { name: '検証する' }).click();
  await result.waitFor({ timeout: 15_000 });
  return { state: await result.getAttribute('data-verification'), code: await result.getAttribute('data-code'), text: (await result.textContent()) ?? '' };
}

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(name: string): Promise<void> {
  if (!(await page.evaluate("typeof window.axe === 'object'"))) await page.evaluate(axe.source);
  const violations = (await page.evaluate(
    "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) })))",
  )) as { id: string; impact: string; nodes: string[] }[];
  expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'), name).toEqual([]);
}

describe('the browser verification across a checkpoint key rotation', () => {
  it('verifies the record with the first key, then, after the rotation, with the key the chain from it gives; a tampered key set fails (KEY_CHAIN_INVALID); another first key than the one pinned fails (VERIFIER_KEY_CHANGED)', async () => {
    // Enrol with the one-time secret; the records page lists the record.
    await page.goto(`${portalUrl}/#/enrol`);
    await page.getByLabel('ワンタイムシークレット').fill(citizenSecret);
    await page.getByLabel('パスキーの名前').fill('青山さんのスマートフォン');
    await page.getByRole('button', { name: 'パスキーを登録する' }).click();
    await page.getByRole('heading', { level: 1, name: '情報提供等記録' }).waitFor({ timeout: 15_000 });
    await page.locator('li.record', { hasText: serial }).waitFor({ timeout: 15_000 });

    const first = (await hub.get('/v1/audit/verifier-key')).body.trim();
    const firstId = first.split('+')[1]!;
    const before = await verifyOnPage();
    expect(before.state, before.text).toBe('ok');

    // The rotation: announced, handed over, then a checkpoint signed by the new key alone.
    const rotated = await hub.post('/v1/audit/checkpoint-key-rotations', {}, hub.operator);
    expect(rotated.statusCode, rotated.body).toBe(201);
    const rotation = rotated.json<{ keyId: string; handoverSize: number }>();
    expect((await hub.post('/v1/corporate-numbers', { name: '株式会社鍵引継', location: '北海道室蘭市幸町1番2号', kind: 'stock-company' }, hub.operator)).statusCode).toBe(201);
    await signNow();
    const latest = (await hub.get('/v1/audit/checkpoint?format=json')).json<{ size: number; note: string }>();
    expect(latest.size).toBeGreaterThan(rotation.handoverSize);
    const signers = latest.note.split('\n').filter((l) => l.startsWith('\u2014 '));
    expect(signers).toHaveLength(1);
    // The pinned first key does not sign it: a check with that key alone would fail.
    const served = (await hub.get('/v1/audit/verifier-keys')).json<{ origin: string; keys: ServedKey[] }>();
    expect(served.keys.map((k) => k.keyId)).toEqual([firstId, rotation.keyId]);
    expect(Buffer.from(signers[0]!.split(' ').at(-1)!, 'base64').subarray(0, 4).toString('hex')).toBe(rotation.keyId);

    // The page's check passes: the checkpoint verified with the new key, reached from the pinned one.
    const after = await verifyOnPage();
    expect(after.state, after.text).toBe('ok');
    expect(after.text).toContain(`+${rotation.keyId}`);
    const card = page.locator('li.record', { hasText: serial });
    expect(await card.locator('[data-key-chain]').getAttribute('data-key-chain')).toBe(`${firstId} ${rotation.keyId}`);
    expect(await page.evaluate("localStorage.getItem('linkage-ledger.portal.verifier-key')")).toBe(first);
    await card.locator('details').first().evaluate((d) => ((d as unknown as { open: boolean }).open = true));
    await card.screenshot({ path: join(SHOTS, 'key-chain-01-verified-after-rotation.png') });
    await accessible('verified after the rotation');

    // A served key set whose hand-over note lacks the first key's signature: refused, saying why.
    await page.route('**/api/audit/verifier-keys', async (route) => {
      const response = await route.fetch();
      const json = (await response.json()) as { keys: ServedKey[] };
      const note = json.keys[1]!.handoverNote!;
      json.keys[1]!.handoverNote = note
        .split('\n')
        .filter((l) => !(l.startsWith('\u2014 ') && Buffer.from(l.split(' ').at(-1)!, 'base64').subarray(0, 4).toString('hex') === firstId))
        .join('\n');
      await route.fulfill({ response, json });
    });
    const unsigned = await verifyOnPage();
    expect(unsigned).toMatchObject({ state: 'failed', code: 'KEY_CHAIN_INVALID' });
    expect(unsigned.text).toContain('検証に失敗しました');
    expect(unsigned.text).toContain('このブラウザーが最初に確かめた検証鍵からの正しい引き継ぎになっていません');
    expect(unsigned.text).toContain(`not signed by the key that announced it, ${firstId}`);
    await page.unroute('**/api/audit/verifier-keys');

    // A key set that swaps in a key of its own as the newest (announced by the first key, its own hand-over note).
    await page.route('**/api/audit/verifier-keys', async (route) => {
      const response = await route.fetch();
      const json = (await response.json()) as { keys: ServedKey[] };
      json.keys[1]!.announcedBy = '00000000';
      await route.fulfill({ response, json });
    });
    const misnamed = await verifyOnPage();
    expect(misnamed).toMatchObject({ state: 'failed', code: 'KEY_CHAIN_INVALID' });
    expect(misnamed.text).toContain(`key ${rotation.keyId} names 00000000 as the previous key; the chain's newest key is ${firstId}`);
    await card.locator('[data-verification] details').evaluate((d) => ((d as unknown as { open: boolean }).open = true));
    await card.screenshot({ path: join(SHOTS, 'key-chain-02-tampered-key-set.png') });
    await accessible('a tampered key set');
    await page.unroute('**/api/audit/verifier-keys');

    // A key set that starts at another key than the one this browser pinned (the newest served as the first).
    await page.route('**/api/audit/verifier-keys', async (route) => {
      const response = await route.fetch();
      const json = (await response.json()) as { keys: ServedKey[] };
      json.keys = [json.keys[1]!];
      await route.fulfill({ response, json });
    });
    const elsewhere = await verifyOnPage();
    expect(elsewhere).toMatchObject({ state: 'failed', code: 'KEY_CHAIN_INVALID' });
    expect(elsewhere.text).toContain(`does not start at the pinned key ${first}`);
    await page.unroute('**/api/audit/verifier-keys');

    // Another first key served than the one pinned at first use: VERIFIER_KEY_CHANGED, nothing verified.
    const other = (await hub.get('/v1/audit/verifier-keys')).json<{ keys: ServedKey[] }>().keys[1]!.verifierKey;
    await page.route('**/api/audit/verifier-key', async (route) => {
      const response = await route.fetch();
      const json = (await response.json()) as { verifierKey: string };
      json.verifierKey = other;
      await route.fulfill({ response, json });
    });
    const changed = await verifyOnPage();
    expect(changed).toMatchObject({ state: 'failed', code: 'VERIFIER_KEY_CHANGED' });
    expect(changed.text).toContain('検証鍵が、このブラウザーで前回使ったものから変わっています');
    expect(await page.evaluate("localStorage.getItem('linkage-ledger.portal.verifier-key')")).toBe(first);
    await page.unroute('**/api/audit/verifier-key');

    // Untampered again: passes.
    expect((await verifyOnPage()).state).toBe('ok');
    expect(consoleErrors.filter((e) => !/status of 40[13]/.test(e))).toEqual([]);
  });
});
