import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from './free-ports.js';

const run = promisify(execFile);

/** A Redis Cluster of masters on loopback ports, started by a test (real redis-server processes). */
export interface RedisClusterUnderTest {
  /** The masters' client ports, in the order `redis-cli --cluster create` was given them. */
  readonly ports: readonly number[];
  /** `127.0.0.1:port` of every master (what HUB_REDIS_CLUSTER takes). */
  readonly nodes: readonly string[];
  /** Kills one master (SIGKILL) and waits until it is gone. */
  kill(port: number): Promise<void>;
  /**
   * Starts a killed master again on its ports with its cluster config file (its node id and slots; its data
   * is gone: no persistence) and waits until every node says `cluster_state:ok` again.
   */
  restart(port: number): Promise<void>;
  /**
   * Moves `slots` hash slots from one master to another (`redis-cli --cluster reshard`: keys migrated slot by
   * slot, clients redirected with MOVED / ASK meanwhile) and waits until every node says `cluster_state:ok`.
   */
  reshard(fromPort: number, toPort: number, slots: number): Promise<void>;
  /** Kills every process it started and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  readonly masters?: number;
  /** The masters' client ports (default: free ones); one per master. */
  readonly ports?: readonly number[];
  /** How long the whole start may take (a slow machine). Default 90 s. */
  readonly timeoutMs?: number;
}

interface Node {
  readonly port: number;
  readonly busPort: number;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  output: string;
}

const started = new Set<ChildProcess>();
let exitHook = false;

/**
 * Starts `masters` (default 3) redis-server processes with `--cluster-enabled yes` (no persistence, config
 * files in a temporary directory), joins them with `redis-cli --cluster create … --cluster-yes` (every
 * slot assigned, no replicas) and waits until every node's `cluster info` says `cluster_state:ok`. A node
 * that cannot bind its port (another process took it meanwhile) is started again on other ports. Whatever
 * fails on the way, what was started is stopped before the error is thrown.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterUnderTest> {
  const masters = options.ports?.length ?? options.masters ?? 3;
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'));
  const nodes: Node[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((n) => killNode(n)));
    await rm(dir, { recursive: true, force: true });
  };
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const child of started) child.kill('SIGKILL');
    });
  }
  try {
    for (let i = 0; i < masters; i++) {
      const port = options.ports?.[i];
      nodes.push(await startNode(dir, deadline, port === undefined ? undefined : { port, busPort: (await freePorts(1))[0]! }));
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: Math.max(5_000, deadline - Date.now()) });
    await clusterOk(nodes, deadline);
    return {
      ports: nodes.map((n) => n.port),
      nodes: addresses,
      kill: async (port) => {
        const node = nodes.find((n) => n.port === port);
        if (node === undefined) throw new Error(`no node of this cluster on port ${port}`);
        await killNode(node);
      },
      restart: async (port) => {
        const at = nodes.findIndex((n) => n.port === port);
        if (at < 0) throw new Error(`no node of this cluster on port ${port}`);
        const old = nodes[at]!;
        await killNode(old);
        const restartDeadline = Date.now() + (options.timeoutMs ?? 90_000);
        const node = await startNode(dir, restartDeadline, { port: old.port, busPort: old.busPort });
        nodes[at] = node;
        await clusterOk(nodes, restartDeadline);
      },
      reshard: async (fromPort, toPort, slots) => {
        const reshardDeadline = Date.now() + (options.timeoutMs ?? 90_000);
        const [from, to] = [(await cli(fromPort, 'cluster', 'myid')).trim(), (await cli(toPort, 'cluster', 'myid')).trim()];
        await run('redis-cli', ['--cluster', 'reshard', `127.0.0.1:${fromPort}`, '--cluster-from', from, '--cluster-to', to, '--cluster-slots', String(slots), '--cluster-yes'], {
          timeout: Math.max(5_000, reshardDeadline - Date.now()),
          maxBuffer: 64 * 1024 * 1024,
        });
        await clusterOk(nodes, reshardDeadline);
      },
      stop,
    };
  } catch (error) {
    const logs = nodes.map((n) => `--- 127.0.0.1:${n.port}\n${n.output.slice(-2000)}`).join('\n');
    await stop();
    throw new Error(`Redis Cluster did not start: ${error instanceof Error ? error.message : String(error)}\n${logs}`, { cause: error });
  }
}

/** Waits until every node says the cluster is whole: state ok, every slot assigned, every node known. */
async function clusterOk(nodes: readonly Node[], deadline: number): Promise<void> {
  for (const node of nodes) {
    await until(deadline, `cluster_state:ok on 127.0.0.1:${node.port}`, async () => {
      const info = await cli(node.port, 'cluster', 'info');
      return /cluster_state:ok/.test(info) && /cluster_slots_assigned:16384/.test(info) && new RegExp(`cluster_known_nodes:${nodes.length}\\b`).test(info);
    });
  }
}

async function startNode(dir: string, deadline: number, fixed?: { readonly port: number; readonly busPort: number }): Promise<Node> {
  for (let attempt = 1; ; attempt++) {
    const [port, busPort] = fixed === undefined ? await freePorts(2) : [fixed.port, fixed.busPort];
    const child = spawn(
      'redis-server',
      [
        '--port', String(port!), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(busPort!),
        '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '3000',
        '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    started.add(child);
    const node: Node = {
      port: port!,
      busPort: busPort!,
      process: child,
      output: '',
      exited: new Promise<void>((resolve) => {
        const done = (): void => {
          started.delete(child);
          resolve();
        };
        child.once('exit', done);
        child.once('error', done); // not spawned at all (no redis-server): no 'exit' follows
      }),
    };
    const keep = (chunk: Buffer): void => {
      node.output = (node.output + chunk.toString('utf8')).slice(-8000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('error', (error) => keep(Buffer.from(`spawn failed: ${error.message}\n`)));
    let gone = false;
    void node.exited.then(() => (gone = true));
    try {
      await until(deadline, `redis-server on port ${port}`, async () => {
        if (gone) return true;
        return (await cli(port!, 'ping').catch(() => '')).trim() === 'PONG';
      });
    } catch (error) {
      await killNode(node);
      throw error;
    }
    if (!gone) return node;
    if (fixed !== undefined || attempt >= 5 || Date.now() > deadline) throw new Error(`redis-server exited at start (${attempt} attempts):\n${node.output.slice(-2000)}`);
  }
}

async function killNode(node: Node): Promise<void> {
  if (node.process.exitCode === null && node.process.signalCode === null) node.process.kill('SIGKILL');
  await node.exited;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5_000 });
  return stdout;
}

async function until(deadline: number, what: string, check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
