import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPhase } from '../../load-tests/runner/drive.js';
import { refusesPlainHttp } from '../../load-tests/runner/network.js';
import { startRelayBaseline, type RelayBaseline } from '../../load-tests/runner/relay-baseline.js';
import { stop } from '../../load-tests/runner/processes.js';

/** One second of the load test's max phase against a relay, with `connections` connections. */
function drive(url: string, body: string, connections: number) {
  return runPhase({ hubUrl: url, requesterToken: 'none', providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], codes: [] }, [body], { name: 'max', connections, durationSeconds: 1, timeoutSeconds: 5 });
}

// The bare two-hop relay baseline of `npm run load:linkage`: client → relay → provider, two processes.
describe('the relay baseline', () => {
  let baseline: RelayBaseline;
  const body = JSON.stringify({ providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], code: 'c'.repeat(43) });

  beforeAll(async () => {
    baseline = await startRelayBaseline({ answerBytes: 733, log: () => {} });
  });
  afterAll(async () => {
    await baseline?.close();
  });

  it('runs the relay and the provider as two processes, the relay in front', () => {
    expect(baseline.relay.child.pid).toBeGreaterThan(0);
    expect(baseline.provider.child.pid).toBeGreaterThan(0);
    expect(baseline.relay.child.pid).not.toBe(baseline.provider.child.pid);
    expect(baseline.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("relays a query's body to the provider at its size and answers the provider's body of the linkage's size", async () => {
    const res = await fetch(`${baseline.url}/v1/queries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(Buffer.byteLength(text)).toBe(733);
    expect(text).toContain('"outcome":"answered"');
    expect(res.headers.get('x-received-bytes')).toBe(String(Buffer.byteLength(body)));
  });

  it('is driven by the same phase as the linkage, every request answered', async () => {
    const result = await drive(baseline.url, body, 4);
    expect(result.requests).toBeGreaterThan(10);
    expect(result.errors).toBe(0);
  });

  it('answers plain HTTP (what the TLS check tells apart)', async () => {
    expect(await refusesPlainHttp(baseline.url)).toBe(false);
  });

  it('answers 502 once the provider is gone, which the load counts as errors', async () => {
    await stop(baseline.provider);
    const res = await fetch(`${baseline.url}/v1/queries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(502);
    const result = await drive(baseline.url, body, 2);
    expect(result.errors).toBe(result.requests);
    expect(result.statuses['502']).toBeGreaterThan(0);
  });
});

// The crypto relay: the same two processes doing a linkage's cryptography (the hub's share in the relay, the
// intermediate server's in the provider) and nothing else: the yardstick of what the guarantees cost by themselves.
describe('the crypto relay', () => {
  let crypto: RelayBaseline;
  const body = JSON.stringify({ providerAgencyId: 'muroran-city', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], code: 'c'.repeat(43) });

  beforeAll(async () => {
    crypto = await startRelayBaseline({ answerBytes: 733, log: () => {}, crypto: { people: 20 } });
  });
  afterAll(async () => {
    await crypto?.close();
  });

  it('relays signed bodies that its provider checks, and answers at the linkage\'s size', async () => {
    const res = await fetch(`${crypto.url}/v1/queries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(Buffer.byteLength(text)).toBe(733);
    const result = await drive(crypto.url, body, 4);
    expect(result.requests).toBeGreaterThan(10);
    expect(result.errors).toBe(0);
  });

  it('has its provider refuse a body the relay did not sign (the check is real)', async () => {
    const provider = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(crypto.provider.output())?.[1];
    expect(provider).toBeDefined();
    const unsigned = await fetch(`${provider!}/v1/provisions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({ code: 'HUB_SIGNATURE_INVALID' });
    const forged = await fetch(`${provider!}/v1/provisions`, { method: 'POST', headers: { 'content-type': 'application/json', 'hub-signature': `ed25519=${'A'.repeat(86)}`, 'hub-signature-key': '0123456789abcdef' }, body });
    expect(forged.status).toBe(401);
  });
});
