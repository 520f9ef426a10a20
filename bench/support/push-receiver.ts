/**
 * A subscriber's push receiver in a process of its own (the SIGKILL test and bench:push): `POST /v1/pushes`
 * verifies `hub-signature` (Ed25519 over the raw body) with the hub's provision key, de-duplicates by pushId
 * and answers `{ pushId, duplicate }`; `GET /stats` tells what it received. Started by `startPushReceiver`,
 * which spawns this file and reads the port from its first line.
 *
 * Env: PUSH_RECEIVER_HUB_KEY (base64url Ed25519 public key), PUSH_RECEIVER_DELAY_MS (wait before answering).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface PushReceiverStats {
  /** Requests answered 2xx (deliveries, repeated ones included). */
  readonly received: number;
  /** Distinct pushIds received. */
  readonly distinct: number;
  /** Deliveries of a pushId received before. */
  readonly duplicates: number;
  /** Requests whose hub-signature did not verify (answered 401, not counted as received). */
  readonly badSignatures: number;
  /** The pushIds seen more than once. */
  readonly repeated: readonly string[];
  /** Time (ms since the epoch) of the first and the last delivery of a new pushId. */
  readonly firstAt: number | null;
  readonly lastAt: number | null;
}

export interface PushReceiverProcess {
  readonly endpoint: string;
  readonly child: ChildProcess;
  stats(): Promise<PushReceiverStats & { readonly pushIds?: readonly string[] }>;
  /** Every distinct pushId received. */
  pushIds(): Promise<readonly string[]>;
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Spawns the receiver (node --import tsx this file) and waits for its port. */
export async function startPushReceiver(options: { hubKey: string; delayMs?: number }): Promise<PushReceiverProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF], {
    env: { PATH: process.env['PATH'] ?? '', PUSH_RECEIVER_MAIN: '1', PUSH_RECEIVER_HUB_KEY: options.hubKey, PUSH_RECEIVER_DELAY_MS: String(options.delayMs ?? 0) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const port = await new Promise<number>((resolve, reject) => {
    let line = '';
    const timer = setTimeout(() => reject(new Error(`the push receiver did not start: ${output}`)), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      line += c.toString('utf8');
      const match = /listening (\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the push receiver exited (${code}): ${output}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    child,
    stats: async () => (await (await fetch(`${endpoint}/stats`)).json()) as PushReceiverStats,
    pushIds: async () => (await (await fetch(`${endpoint}/push-ids`)).json()) as string[],
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function main(): void {
  const hubKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: process.env['PUSH_RECEIVER_HUB_KEY'] ?? '' }, format: 'jwk' });
  const delayMs = Number(process.env['PUSH_RECEIVER_DELAY_MS'] ?? '0');
  const seen = new Map<string, number>();
  let received = 0;
  let badSignatures = 0;
  let firstAt: number | null = null;
  let lastAt: number | null = null;
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/stats') {
      const repeated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received, distinct: seen.size, duplicates: received - seen.size, badSignatures, repeated, firstAt, lastAt }));
      return;
    }
    if (req.method === 'GET' && req.url === '/push-ids') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([...seen.keys()]));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const signature = String(req.headers['hub-signature'] ?? '').replace(/^ed25519=/, '');
      if (req.url !== '/v1/pushes' || !verify(null, raw, hubKey, Buffer.from(signature, 'base64url'))) {
        badSignatures += 1;
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"code":"BAD_SIGNATURE"}');
        return;
      }
      const pushId = String((JSON.parse(raw.toString('utf8')) as { pushId?: unknown }).pushId);
      const answer = (): void => {
        const count = seen.get(pushId) ?? 0;
        seen.set(pushId, count + 1);
        received += 1;
        if (count === 0) {
          lastAt = Date.now();
          firstAt ??= lastAt;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pushId, duplicate: count > 0 }));
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

if (process.env['PUSH_RECEIVER_MAIN'] === '1') main();
