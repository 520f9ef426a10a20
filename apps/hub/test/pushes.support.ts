import { createPublicKey, verify } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { expect } from 'vitest';
import { bearer, type Agency } from './support/linkage-fixture.js';
import type { TestHub } from './support/test-hub.js';

export { writePushTable } from '../../../bench/support/push-fanout.js';

export async function subscribe(hub: TestHub, agency: Agency, code: string, providerAgencyId: string, procedureCode: string, itemCodes: string[]): Promise<string> {
  const res = await hub.post('/v1/subscriptions', { code, providerAgencyId, procedureCode, itemCodes }, bearer(agency.token));
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ subscriptionId: string }>().subscriptionId;
}

export interface ReceivedPush {
  readonly body: Record<string, unknown>;
  readonly signatureValid: boolean;
  readonly duplicate: boolean;
}

/**
 * A subscriber's intermediate server in-process: verifies `hub-signature` over the exact bytes with the
 * hub's provision key, de-duplicates by pushId, and answers per `failures` (HTTP statuses to answer, in
 * order, before it accepts a push) or `always` (a status answered forever).
 */
export class PushReceiver {
  readonly received: ReceivedPush[] = [];
  readonly seen = new Set<string>();
  failures: number[] = [];
  always: number | undefined;
  /** Every request, accepted or not. */
  hits = 0;
  #server: Server | undefined;
  #hubKey: string | undefined;
  port = 0;

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(hub: TestHub): Promise<void> {
    this.#hubKey = (await hub.get('/v1/hub/keys')).json<{ provisionSigningKey: string }>().provisionSigningKey;
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        this.hits += 1;
        const status = this.always ?? this.failures.shift();
        if (status !== undefined) {
          res.writeHead(status, { 'content-type': 'application/json' }).end('{"error":"test"}');
          return;
        }
        const signature = String(req.headers['hub-signature'] ?? '').replace(/^ed25519=/, '');
        const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: this.#hubKey! }, format: 'jwk' });
        const signatureValid = req.url === '/v1/pushes' && verify(null, raw, key, Buffer.from(signature, 'base64url'));
        const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
        const pushId = String(body['pushId']);
        const duplicate = this.seen.has(pushId);
        this.seen.add(pushId);
        this.received.push({ body, signatureValid, duplicate });
        res.writeHead(signatureValid ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify({ pushId, duplicate }));
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
