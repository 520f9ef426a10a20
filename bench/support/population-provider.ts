/**
 * Muroran City's intermediate server for `npm run bench:population`, as its own process: it answers
 * every provision request (POST /v1/provisions and /v1/provisions/batch, schemas/provision/README.md)
 * with one local-tax record, sealed to the requester's answer key when the hub passes one, as the
 * agency node does. It holds no copies: a population-sized node would need every person's record, and
 * what the bench measures is the hub's side of the query. It does not check the hub's signature (the
 * agency node's own cost, measured by the load test). Prints `listening on http://127.0.0.1:<port>`.
 *   node --conditions=source --import tsx bench/support/population-provider.ts [port]
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { sealAnswer } from '#sealed-answer';

const LOCAL_TAX = { 'local-tax': { fiscalYear: 2026, taxableIncome: 2_400_000, municipalTaxAmount: 144_000, prefecturalTaxAmount: 96_000, dependents: 1 } };
const PLAIN = Buffer.from(JSON.stringify({ items: LOCAL_TAX }), 'utf8');
let answered = 0;

async function answer(request: Record<string, unknown>): Promise<Record<string, unknown>> {
  answered++;
  const key = request['answerPublicKey'];
  if (typeof key === 'string') {
    const sealed = await sealAnswer(PLAIN, key, String(request['serial']));
    return { status: 'answered', answer: Buffer.from(sealed).toString('base64url'), encrypted: true };
  }
  return { status: 'answered', answer: PLAIN.toString('base64url'), encrypted: false };
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const send = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    if (req.method === 'POST' && req.url === '/v1/provisions/batch') {
      const responses = [];
      for (const r of body['requests'] as Record<string, unknown>[]) responses.push(await answer(r));
      return send(200, { responses });
    }
    if (req.method === 'POST' && req.url === '/v1/provisions') return send(200, await answer(body));
    return send(404, { error: 'not found' });
  } catch (error) {
    return send(400, { error: error instanceof Error ? error.message : String(error) });
  }
}

const server = createServer((req, res) => void handle(req, res));
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => {
  process.stderr.write(`answered ${answered} provision requests\n`);
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
