/**
 * The relay of the bare two-hop relay baseline: a Fastify server that takes POST /v1/queries (JSON, parsed
 * by Fastify), sends a body of the same size to the provider's POST /v1/provisions over keep-alive
 * connections (node:http, up to 256 sockets, as the hub's provider client), and answers the provider's
 * body as it came. No store, no crypto, no authentication: the floor under the hub's relay.
 * With BASELINE_SIGNING_SEED (the crypto relay), it also does the hub's share of a linkage's cryptography per
 * request and nothing else (crypto-budget.ts, HubCryptoWork): seals a linkage's four events, signs the body it
 * forwards (hub-signature, hub-signature-key) and digests the answer.
 *   BASELINE_PORT (0: any free port) BASELINE_PROVIDER_URL (http://127.0.0.1:<port>)
 *   BASELINE_SIGNING_SEED (base64url Ed25519 seed) BASELINE_PEOPLE (people whose keys seal, default 500)
 * Logs "listening on http://127.0.0.1:<port>"; GET /health/ready answers 200.
 */
import Fastify from 'fastify';
import { Agent, request } from 'node:http';
import { HubCryptoWork } from '../crypto-budget.js';
import { positiveEnv } from './sizes.js';

const port = positiveEnv('BASELINE_PORT', 0);
const providerUrl = process.env['BASELINE_PROVIDER_URL'];
if (providerUrl === undefined || !/^http:\/\/127\.0\.0\.1:\d+$/.test(providerUrl)) throw new Error('BASELINE_PROVIDER_URL must be http://127.0.0.1:<port>');
const target = new URL('/v1/provisions', providerUrl);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const seed = process.env['BASELINE_SIGNING_SEED'];
const work = seed === undefined ? undefined : await HubCryptoWork.create({ people: positiveEnv('BASELINE_PEOPLE', 500), seed: Buffer.from(seed, 'base64url') });
let linkages = 0;

/** One POST to the provider; its status and body as text. */
function forward(body: string | Buffer, signed: Record<string, string>): Promise<{ status: number; text: string; received?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(target, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...signed } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      const received = res.headers['x-received-bytes'];
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        work?.digest(bytes);
        resolve({ status: res.statusCode ?? 502, text: bytes.toString('utf8'), ...(typeof received === 'string' ? { received } : {}) });
      });
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('the provider did not answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.get('/health/ready', async () => ({ status: 'ready' }));
app.post('/v1/queries', async (request, reply) => {
  // The hub writes a new body for the provider from the parsed query; so does the relay (the same size).
  const text = JSON.stringify(request.body);
  let body: string | Buffer = text;
  let signed: Record<string, string> = {};
  if (work !== undefined) {
    work.seal(linkages++);
    body = Buffer.from(text);
    const { signature, keyId } = work.sign(body);
    signed = { 'hub-signature': signature, 'hub-signature-key': keyId };
  }
  const answer = await forward(body, signed).catch((error: unknown) => ({ status: 502, text: JSON.stringify({ code: 'PROVIDER_UNREACHABLE', message: error instanceof Error ? error.message : String(error) }) }));
  if ('received' in answer && answer.received !== undefined) void reply.header('x-received-bytes', answer.received);
  return reply.code(answer.status).header('content-type', 'application/json; charset=utf-8').send(answer.text);
});

const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`listening on ${address.replace('localhost', '127.0.0.1')} (baseline relay to ${providerUrl}${work === undefined ? '' : ', with the hub\'s cryptography'})\n`);
const close = (): void => void app.close().then(() => process.exit(0));
process.once('SIGTERM', close);
process.once('SIGINT', close);
