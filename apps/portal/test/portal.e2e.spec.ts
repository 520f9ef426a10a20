import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axe from 'axe-core';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startNetwork, type Network } from '../../demo/src/network.js';
import { freePorts, startPortal, type PortalProcess } from './support/portal-process.js';

// The citizen portal in a real browser (Debian's Chromium, headless) over a real network of processes:
// the hub, the two intermediate servers of seeds/001 and the portal. Aoyama-san enrols a passkey with her
// one-time secret (a CDP virtual authenticator plays her phone), signs in, sees and verifies the record
// the demo linkage made, sees a tampered proof fail, reads a notice, asks Muroran City what it holds about
// her, manages her passkeys and signs out. Every page is screenshotted (desktop and 375 px) into
// test-results/portal/ and checked with axe-core.

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-results', 'portal');
const QUERY = { localId: 'P-4410-0000123', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], encrypt: true };

let dataDir: string;
let network: Network;
let portal: PortalProcess;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let cdp: CDPSession;
let serial: string;
let portalHost: string;
const foreignRequests: string[] = [];
const consoleErrors: string[] = [];

async function addAuthenticator(): Promise<string> {
  const { authenticatorId } = (await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  })) as { authenticatorId: string };
  return authenticatorId;
}

/** Screenshots at 1280 px and 375 px, and axe-core on the page (no serious or critical violation). */
async function check(name: string): Promise<void> {
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 375, height: 812 });
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(SHOTS, `${name}-375.png`), fullPage: true });
  const overflow = (await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
  expect(overflow, `${name}: the page is wider than a 375 px screen`).toBeLessThanOrEqual(0);
  await page.setViewportSize({ width: 1280, height: 900 });
  // The CSP forbids inline scripts; CDP's evaluate is not a page script, so axe goes in this way.
  if (!(await page.evaluate("typeof window.axe === 'object'"))) await page.evaluate(axe.source);
  const violations = (await page.evaluate(
    "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))",
  )) as { id: string; impact: string; help: string; nodes: { target: string[] }[] }[];
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`), `${name}: accessibility`).toEqual([]);
}

async function heading(text: string): Promise<void> {
  await page.getByRole('heading', { level: 1, name: text }).waitFor({ timeout: 15_000 });
}

async function apiFromPage(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return page.evaluate(async (p) => {
    const res = await fetch(p, { credentials: 'same-origin' });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }, path);
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'portal-e2e-'));
  const [hubPort, pension, muroran, portalPort] = await freePorts(4);
  portalHost = `localhost:${portalPort}`;
  network = await startNetwork({
    dataDir,
    hubPort: hubPort!,
    nodePorts: { 'jpn-pension-service': pension!, 'muroran-city': muroran! },
    log: () => {},
    hubEnv: { HUB_REDIS_URL: 'off', HUB_PORTAL_ORIGINS: `http://localhost:${portalPort}`, HUB_WEBAUTHN_RP_ID: 'localhost', HUB_CHECKPOINT_EVERY_MS: '300' },
  });
  // The demo's linkage (seeds/001) and Muroran City's notice, through the intermediate servers.
  const q = await fetch(`${network.nodeUrl('jpn-pension-service')}/v1/queries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(QUERY) });
  const answered = (await q.json()) as { serial: string; outcome: string };
  expect(q.status, JSON.stringify(answered)).toBe(200);
  serial = answered.serial;
  const n = await fetch(`${network.nodeUrl('muroran-city')}/v1/notices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ localId: 'M-000123', title: '住民税 課税証明書のご案内', body: '年金の請求に必要な地方税関係情報は、情報連携で日本年金機構へ提供されました。\n課税証明書の提出は不要です。' }),
  });
  expect(n.status, await n.clone().text()).toBe(201);
  // The public service mesh: the pension service subscribes to Muroran City's local tax for her, Muroran City
  // updates its copy (a corrected assessment: taxable income 2,980,000 yen, which her self-information
  // request below then reads) and reports it, and the hub pushes (a row of her provision records once delivered).
  const sub = await fetch(`${network.nodeUrl('jpn-pension-service')}/v1/subscriptions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ localId: QUERY.localId, providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'] }) });
  expect(sub.status, await sub.clone().text()).toBe(201);
  const updatedAt = new Date().toISOString();
  const upd = await fetch(`${network.nodeUrl('muroran-city')}/v1/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ updatedAt, changes: [{ localId: 'M-000123', items: { 'local-tax': { fiscalYear: 2026, taxableIncome: 2980000, municipalTaxAmount: 178800, prefecturalTaxAmount: 119200, dependents: 1 } } }] }) });
  expect(upd.status, await upd.clone().text()).toBe(200);
  // (expect.poll is for tests only: a plain wait for the delivery.)
  for (let waited = 0; ; waited += 200) {
    const r = await fetch(`${network.hubUrl}/v1/citizens/me/push-records`, { headers: { authorization: `Bearer ${network.aoyama.citizenSecret}` } });
    const statuses = ((await r.json()) as { pushes?: { status: string }[] }).pushes?.map((p) => p.status);
    if (JSON.stringify(statuses) === '["delivered"]') break;
    if (waited > 20_000) throw new Error(`the push was not delivered within 20 s: ${JSON.stringify(statuses)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  portal = await startPortal({ port: portalPort!, hubUrl: network.hubUrl, dataDir: join(dataDir, 'portal') });

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--lang=ja-JP'],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'ja-JP', timezoneId: 'Asia/Tokyo', acceptDownloads: true });
  page = await context.newPage();
  page.on('request', (r) => {
    const u = new URL(r.url());
    if ((u.protocol === 'http:' || u.protocol === 'https:') && u.host !== portalHost) foreignRequests.push(r.url());
  });
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await portal?.stop();
  await network?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the citizen portal in Chromium, over a running hub and intermediate servers', () => {
  let phone: string;
  let sessionCookie: { name: string; value: string; domain: string; path: string } | undefined;

  it('serves the strict security headers and refuses state changes without the Origin and the CSRF token', async () => {
    const res = await fetch(`${portal.url.replace('localhost', '127.0.0.1')}/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toMatch(/https?:\/\//);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('permissions-policy')).toContain('camera=()');
    const session = await fetch(`${portal.url.replace('localhost', '127.0.0.1')}/api/session`);
    const pre = session.headers.get('set-cookie') ?? '';
    expect(pre).toMatch(/portal-pre=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3600/);
    const { csrfToken } = (await session.json()) as { csrfToken: string };
    const cookie = pre.split(';')[0]!;
    const post = (headers: Record<string, string>) => fetch(`${portal.url.replace('localhost', '127.0.0.1')}/api/sessions/options`, { method: 'POST', headers: { 'content-type': 'application/json', cookie, ...headers }, body: '{}' });
    expect((await (await post({ origin: portal.url })).json()) as object).toMatchObject({ code: 'CSRF_TOKEN_INVALID' });
    expect((await (await post({ origin: 'https://evil.example', 'x-csrf-token': csrfToken })).json()) as object).toMatchObject({ code: 'ORIGIN_REFUSED' });
    expect((await post({ origin: portal.url, 'x-csrf-token': csrfToken })).status).toBe(200);
  });

  it('enrols a passkey with the one-time secret and signs in with it', async () => {
    phone = await addAuthenticator();
    await page.goto(`${portal.url}/`);
    await heading('サインイン');
    await check('01-signin');
    await page.getByRole('navigation', { name: 'メインメニュー' }).getByRole('link', { name: 'はじめての登録' }).click();
    await heading('はじめての登録');
    await page.getByLabel('ワンタイムシークレット').fill('wrong-secret-0000000000000000');
    await page.getByRole('button', { name: 'パスキーを登録する' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('ワンタイムシークレットが正しくありません');
    await check('02-enrol-error');
    await page.getByLabel('ワンタイムシークレット').fill(network.aoyama.citizenSecret);
    await page.getByLabel('パスキーの名前').fill('青山さんのスマートフォン');
    await page.getByRole('button', { name: 'パスキーを登録する' }).click();
    await heading('情報提供等記録');
    await expect.poll(() => page.locator('.flash').textContent()).toContain('パスキーを登録し、サインインしました');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'portal-session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(await page.evaluate('document.cookie')).toBe('');

    // The secret is spent: enrolling with it again is refused, with a sentence saying what to do.
    const retired = await fetch(`${network.hubUrl}/v1/citizens/me/provision-records`, { headers: { authorization: `Bearer ${network.aoyama.citizenSecret}` } });
    expect(((await retired.json()) as { code: string }).code).toBe('CREDENTIAL_RETIRED');

    // Out, and in again with the passkey alone.
    await page.getByRole('button', { name: 'サインアウト' }).click();
    await heading('サインイン');
    await page.getByRole('button', { name: 'パスキーでサインイン' }).click();
    await heading('情報提供等記録');
    sessionCookie = (await context.cookies()).find((c) => c.name === 'portal-session');
    expect(sessionCookie?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('shows the record the demo linkage created, with the chart, filters and CSV', async () => {
    const card = page.locator('li.record', { hasText: serial });
    await card.waitFor();
    await expect.poll(() => card.textContent()).toContain('日本年金機構');
    expect(await card.textContent()).toContain('室蘭市');
    expect(await card.textContent()).toContain('地方税関係情報');
    await page.locator('canvas').first().waitFor();
    // The push is a row of her records, labelled as one: who was told, whose copy changed, delivered.
    const pushCard = page.locator('li.record', { hasText: '更新のお知らせ（プッシュ）' });
    await pushCard.waitFor();
    expect(await pushCard.count()).toBe(1);
    const pushText = (await pushCard.textContent()) ?? '';
    expect(pushText).toMatch(/お知らせを受けた機関\s*日本年金機構/);
    expect(pushText).toMatch(/情報が更新された機関\s*室蘭市/);
    expect(pushText).toContain('地方税関係情報');
    expect(pushText).toContain('お知らせ済み');
    expect(pushText).toContain('情報そのものは含まれません');
    await pushCard.screenshot({ path: join(SHOTS, '03-records-push-card.png') });
    await check('03-records');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSVでダウンロード' }).click()]);
    const csv = await (await download.createReadStream()).toArray();
    const text = Buffer.concat(csv as Buffer[]).toString('utf8');
    expect(text.charCodeAt(0)).toBe(0xfeff);
    expect(text).toContain(serial);
    expect(text).toMatch(/,更新のお知らせ（プッシュ）,日本年金機構,室蘭市[^\r\n]*,お知らせ済み\r\n/);
    // Filter by agency: Muroran City is the provider of the record; and by period: today (Japan time) has it, last year not.
    const today = new Date(Date.now() + 9 * 3_600_000).toISOString().slice(0, 10);
    await page.getByLabel('機関').selectOption('muroran-city');
    await page.getByLabel('期間（開始日）').fill(today);
    await page.getByLabel('期間（終了日）').fill(today);
    await page.getByRole('button', { name: 'この条件で表示' }).click();
    await page.locator('li.record', { hasText: serial }).waitFor();
    await page.getByLabel('期間（開始日）').fill('2025-01-01');
    await page.getByLabel('期間（終了日）').fill('2025-01-31');
    await page.getByRole('button', { name: 'この条件で表示' }).click();
    await page.getByText('条件に合う記録はありません。').waitFor();
    await page.getByLabel('期間（開始日）').fill('');
    await page.getByLabel('期間（終了日）').fill('');
    await page.getByLabel('機関').selectOption('');
    await page.getByRole('button', { name: 'この条件で表示' }).click();
    await page.locator('li.record', { hasText: serial }).waitFor();
  });

  it('verifies the record in the browser, and shows a tampered proof as failed', async () => {
    const card = page.locator('li.record', { hasText: serial });
    const result = card.locator('[data-verification]');
    // The record is in the signed log once the next checkpoint covers it (the hub signs every 300 ms here).
    await expect
      .poll(
        async () => {
          await card.getByRole('button', { name: '検証する' }).click();
          await Promise.race([result.waitFor({ timeout: 5000 }).catch(() => undefined), card.getByRole('alert').waitFor({ timeout: 5000 }).catch(() => undefined)]);
          return result.getAttribute('data-verification').catch(() => null);
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe('ok');
    const ok = (await result.textContent()) ?? '';
    expect(ok).toContain('検証に成功しました');
    expect(ok).toMatch(/署名済みチェックポイント（[\d,]+ 件、\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} 署名）/);
    await check('04-records-verified');

    // A changed byte in the stored envelope the proof carries: the browser must refuse it.
    await page.route('**/api/audit/proofs/inclusion**', async (route) => {
      const response = await route.fetch();
      const json = (await response.json()) as { proofs: { envelope: string }[] };
      const e = json.proofs[0]!.envelope;
      const at = e.indexOf('pension-award-claim');
      json.proofs[0]!.envelope = `${e.slice(0, at)}Pension${e.slice(at + 7)}`;
      await route.fulfill({ response, json });
    });
    await card.getByRole('button', { name: '検証する' }).click();
    await expect.poll(() => result.getAttribute('data-verification')).toBe('failed');
    expect(await result.getAttribute('data-code')).toBe('LEAF_MISMATCH');
    expect(await result.textContent()).toContain('検証に失敗しました');
    await check('05-records-tampered');
    await page.unroute('**/api/audit/proofs/inclusion**');

    // A changed byte in an opening fails too, naming the field.
    await page.route('**/api/audit/proofs/inclusion**', async (route) => {
      const response = await route.fetch();
      const json = (await response.json()) as { proofs: { openings: { value: string }[] }[] };
      const o = json.proofs.find((p) => p.openings.length > 0)!.openings[0]!;
      o.value = `${o.value.slice(0, -1)}${o.value.endsWith('0') ? '1' : '0'}`;
      await route.fulfill({ response, json });
    });
    await card.getByRole('button', { name: '検証する' }).click();
    await expect.poll(() => result.getAttribute('data-code')).toBe('OPENING_MISMATCH');
    await page.unroute('**/api/audit/proofs/inclusion**');
  });

  it('reads a notice: unread, then read', async () => {
    await page.getByRole('link', { name: /お知らせ/ }).click();
    await heading('お知らせ');
    const notice = page.locator('li.notice', { hasText: '住民税 課税証明書のご案内' });
    await notice.waitFor();
    expect(await notice.locator('[data-state]').getAttribute('data-state')).toBe('unread');
    await check('06-notices');
    await notice.getByRole('button').click();
    await expect.poll(() => notice.locator('[data-state]').getAttribute('data-state')).toBe('read');
    expect(await notice.textContent()).toContain('課税証明書の提出は不要です');
    const { body } = await apiFromPage('/api/notices');
    const stored = (body['notices'] as { title: string; readAt: string | null }[]).find((n) => n.title === '住民税 課税証明書のご案内');
    expect(stored?.readAt).toMatch(/^\d{4}-/);
    expect(body['unread']).toBe(0);
    await check('07-notices-read');
  });

  it('asks Muroran City for her own local tax information and opens the sealed answer in the browser', async () => {
    await page.getByRole('link', { name: '自己情報表示' }).click();
    await heading('自己情報表示');
    await page.getByLabel('機関').waitFor();
    await check('08-self-information');
    await page.getByLabel('機関').selectOption('muroran-city');
    await page.getByLabel('情報の項目').selectOption('local-tax');
    await page.getByRole('button', { name: '表示を請求する' }).click();
    const answer = page.locator('[data-answer="opened"]');
    await answer.waitFor({ timeout: 20_000 });
    const text = (await answer.textContent()) ?? '';
    expect(text).toContain('課税所得');
    // The figure as Muroran City updated it (the copy of before said 3,120,000).
    expect(text).toContain('2,980,000');
    await check('09-self-information-answer');
    // It is in her provision record like any exchange.
    await page.getByRole('link', { name: '情報提供等記録' }).click();
    await heading('情報提供等記録');
    await expect.poll(() => page.locator('li.record').first().textContent()).toContain('ご本人（自己情報表示）');
  });

  it('lists passkeys, adds one from another device, signs in with it and removes the first', async () => {
    await page.getByRole('link', { name: 'パスキーの管理' }).click();
    await heading('パスキーの管理');
    const phoneKey = page.locator('li.passkey', { hasText: '青山さんのスマートフォン' });
    await phoneKey.waitFor();
    expect(await phoneKey.textContent()).toContain('このサインインで使用中');
    await check('10-passkeys');
    // The same device again is refused by the authenticator (the hub excludes her passkeys).
    await page.getByRole('button', { name: 'この端末のパスキーを追加する' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('すでに登録されています');
    // Another device: a second authenticator replaces the phone.
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: phone });
    await addAuthenticator();
    await page.getByRole('button', { name: 'この端末のパスキーを追加する' }).click();
    await expect.poll(() => page.locator('li.passkey').count()).toBe(2);
    // Signed in with the new device, she removes the phone's passkey: it signs in no more.
    await page.getByRole('button', { name: 'サインアウト' }).click();
    await heading('サインイン');
    await page.getByRole('button', { name: 'パスキーでサインイン' }).click();
    await heading('情報提供等記録');
    await page.getByRole('link', { name: 'パスキーの管理' }).click();
    await heading('パスキーの管理');
    await phoneKey.waitFor();
    await page.getByRole('button', { name: 'パスキー「青山さんのスマートフォン」を削除' }).click();
    await check('11-passkeys-confirm');
    await page.getByRole('button', { name: '削除する' }).click();
    await expect.poll(() => page.locator('li.passkey').count()).toBe(1);
    expect(await page.locator('li.passkey').textContent()).toContain('このサインインで使用中');
    await expect.poll(() => page.getByRole('status').first().textContent()).toContain('削除しました');
    await check('12-passkeys-removed');
  });

  it('signs out, and is refused afterwards: by the portal, and by the hub for the old session token', async () => {
    const before = (await context.cookies()).find((c) => c.name === 'portal-session')!;
    await page.getByRole('button', { name: 'サインアウト' }).click();
    await heading('サインイン');
    expect(await page.locator('.flash').textContent()).toContain('サインアウトしました');
    expect((await context.cookies()).find((c) => c.name === 'portal-session')).toBeUndefined();
    const refused = await apiFromPage('/api/records');
    expect(refused).toMatchObject({ status: 401, body: { code: 'NOT_SIGNED_IN' } });
    // The old token, put back by hand, admits nothing: the hub ended the session.
    await context.addCookies([{ name: before.name, value: before.value, domain: before.domain, path: '/', httpOnly: true, sameSite: 'Strict' }]);
    const replay = await apiFromPage('/api/records');
    expect(replay).toMatchObject({ status: 401, body: { code: 'SESSION_EXPIRED' } });
    await page.goto(`${portal.url}/#/records`);
    await heading('サインイン');
    await check('13-signed-out');
    expect(sessionCookie).toBeDefined();
  });

  it('sent no request to any host but the portal, and logged no script error', () => {
    expect(foreignRequests).toEqual([]);
    expect(consoleErrors.filter((e) => !/status of 40[13]/.test(e))).toEqual([]);
  });
});
