/**
 * The provider of the bare two-hop relay baseline (client → relay → provider and back): a Fastify server
 * that answers every POST /v1/provisions with the same JSON body of BASELINE_ANSWER_BYTES bytes, holding
 * `"outcome":"answered"` as the hub's answers do. No store, no crypto, no validation beyond Fastify's JSON
 * parser: what any HTTP hop costs, to set the linkage against (README, Benchmarks).
 *   BASELINE_PORT (0: any free port) BASELINE_ANSWER_BYTES (the linkage's answer size, measured by the runner)
 * Logs "listening on http://127.0.0.1:<port>"; GET /health/ready answers 200.
 */
import Fastify from 'fastify';
import { answerOfSize, positiveEnv } from './sizes.js';

const port = positiveEnv('BASELINE_PORT', 0);
const answer = answerOfSize(positiveEnv('BASELINE_ANSWER_BYTES', 600));

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.get('/health/ready', async () => ({ status: 'ready' }));
// x-received-bytes: the size of the body it was sent (the runner's test checks the relay forwards the query's size).
app.post('/v1/provisions', async (request, reply) =>
  reply.header('content-type', 'application/json; charset=utf-8').header('x-received-bytes', String(request.headers['content-length'] ?? '')).send(answer),
);

const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`listening on ${address.replace('localhost', '127.0.0.1')} (baseline provider, answers of ${Buffer.byteLength(answer)} bytes)\n`);
const close = (): void => void app.close().then(() => process.exit(0));
process.once('SIGTERM', close);
process.once('SIGINT', close);
