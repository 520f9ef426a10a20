import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const binary = join(root, '.build', 'mock-broker');

/**
 * librdkafka's mock cluster (deploy/kafka-mock) as a child process, built on demand. Throws when it
 * cannot be built or started: tests that need a broker fail, they never skip.
 */
export interface MockBroker {
  readonly brokers: readonly string[];
  /** Disconnects broker `id` and refuses new connections (its data stays). */
  down(id?: number): Promise<void>;
  up(id?: number): Promise<void>;
  stop(): Promise<void>;
}

export function buildMockBroker(): string {
  if (existsSync(binary)) return binary;
  const built = spawnSync('npm', ['run', '--silent', 'build:kafka-mock'], { cwd: root, encoding: 'utf8' });
  if (built.status !== 0 || !existsSync(binary)) {
    throw new Error(
      `could not build the Kafka mock broker (npm run build:kafka-mock; it needs gcc and librdkafka-dev): ${built.stderr || built.stdout || built.error?.message}`,
    );
  }
  return binary;
}

/** Starts a mock cluster with these topics (`name` or `name:partitions`). */
export async function startMockBroker(topics: readonly string[], options: { readonly brokers?: number } = {}): Promise<MockBroker> {
  const child: ChildProcessWithoutNullStreams = spawn(buildMockBroker(), ['--brokers', String(options.brokers ?? 1), ...topics]);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines: Interface = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = (what: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mock broker: no answer to ${what} within 10 s; stderr: ${stderr}`)), 10_000);
      const onExit = (code: number | null): void => reject(new Error(`mock broker exited (${code}) before ${what}; stderr: ${stderr}`));
      child.once('exit', onExit);
      waiting.push((line) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(line);
      });
    });
  const bootstrap = await nextLine('printing its bootstrap servers');
  const command = async (line: string): Promise<void> => {
    const answer = nextLine(line);
    child.stdin.write(`${line}\n`);
    const got = await answer;
    if (got !== `ok ${line}`) throw new Error(`mock broker: ${line} answered ${got}`);
  };
  return {
    brokers: bootstrap.split(','),
    down: (id = 1) => command(`down ${id}`),
    up: (id = 1) => command(`up ${id}`),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Every message on the topic as stored (copies included), read by a fresh consumer group. */
export interface RawMessage {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | undefined;
  readonly value: string;
  readonly headers: Record<string, string>;
}

export async function topicSize(brokers: readonly string[], topic: string): Promise<number> {
  const admin = new kafkajs.Kafka({ brokers: [...brokers], logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

export async function readTopic(brokers: readonly string[], topic: string, groupId: string): Promise<RawMessage[]> {
  const total = await topicSize(brokers, topic);
  const consumer = new kafkajs.Kafka({ brokers: [...brokers], logLevel: kafkajs.logLevel.NOTHING }).consumer({ groupId });
  const messages: RawMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${messages.length} of ${total} messages of ${topic} in 20 s`)), 20_000);
      if (total === 0) {
        clearTimeout(timer);
        return resolve();
      }
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(message.headers ?? {})) if (value !== undefined) headers[name] = value.toString();
          messages.push({ partition, offset: message.offset, key: message.key?.toString(), value: message.value!.toString(), headers });
          if (messages.length === total) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

/** Polls until `check` holds; throws with `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
