/**
 * The provider of the bare two-hop relay baseline (client → relay → provider and back): a Fastify server
 * that answers every POST /v1/provisions with the same JSON body of BASELINE_ANSWER_BYTES bytes, holding
 * `"outcome":"answered"` as the hub's answers do. No store, no crypto, no validation beyond Fastify's JSON
 * parser: what any HTTP hop costs, to set the linkage against (README, Benchmarks).
 * With BASELINE_VERIFY_KEY (the crypto relay's provider), it also does the intermediate server's share of a
 * linkage's cryptography and nothing else (crypto-budget.ts, NodeCryptoWork): checks the hub-signature over the
 * exact body bytes (refusing with 401 otherwise) and seals an answer to an X25519 key (HPKE).
 *   BASELINE_PORT (0: any free port) BASELINE_ANSWER_BYTES (the linkage's answer size, measured by the runner)
 *   BASELINE_VERIFY_KEY (the relay's raw Ed25519 public key, base64url)
 * Logs "listening on http://127.0.0.1:<port>"; GET /health/ready answers 200.
 */
import Fastify from 'fastify';
import { generateAnswerKeyPair } from '#sealed-answer';
import { NodeCryptoWork } from '../crypto-budget.js';
import { answerOfSize, positiveEnv } from './sizes.js';

const port = positiveEnv('BASELINE_PORT', 0);
const answer = answerOfSize(positiveEnv('BASELINE_ANSWER_BYTES', 600));

const verifyKey = process.env['BASELINE_VERIFY_KEY'];
const work = verifyKey === undefined ? undefined : new NodeCryptoWork(verifyKey);
const answerKey = (await generateAnswerKeyPair()).publicKey;
let answers = 0;

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
if (work !== undefined) {
  // The signature covers the exact bytes: keep them, check them, then parse (as the intermediate server does).
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
}
app.get('/health/ready', async () => ({ status: 'ready' }));
// x-received-bytes: the size of the body it was sent (the runner's test checks the relay forwards the query's size).
app.post('/v1/provisions', async (request, reply) => {
  if (work !== undefined) {
    const raw = request.body as Buffer;
    const signature = request.headers['hub-signature'];
    const keyId = request.headers['hub-signature-key'];
    try {
      await work.verify(typeof signature === 'string' ? signature : '', raw, typeof keyId === 'string' ? keyId : '');
    } catch (error) {
      return reply.code(401).send({ code: 'HUB_SIGNATURE_INVALID', message: error instanceof Error ? error.message : String(error) });
    }
    JSON.parse(raw.toString('utf8'));
    await work.sealAnswer(answerKey, String(20261206000000000000n + BigInt(answers++)));
  }
  return reply.header('content-type', 'application/json; charset=utf-8').header('x-received-bytes', String(request.headers['content-length'] ?? '')).send(answer);
});

const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`listening on ${address.replace('localhost', '127.0.0.1')} (baseline provider, answers of ${Buffer.byteLength(answer)} bytes${work === undefined ? '' : ', with the intermediate server\'s cryptography'})\n`);
const close = (): void => void app.close().then(() => process.exit(0));
process.once('SIGTERM', close);
process.once('SIGINT', close);
