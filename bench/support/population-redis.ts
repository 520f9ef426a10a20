/**
 * The Redis of `npm run bench:population`: a redis-server of its own on a free loopback port
 * (`--save '' --appendonly no`: nothing written unless asked), and the hub's code mapper opened on it
 * exactly as the hub opens it (apps/hub/src/linkage/hub-code-mapper.ts: its prefix, its code locator, the
 * layout it sizes itself), so that the hub started on the same prefix finds its projection current and
 * follows the log from the mapper's checkpoint. With `rdb` the data set is written to that file when the
 * server stops (SAVE) and read back by the next server started with it, for `--keep`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { RedisCodeMapper, createMapperRedisClient, type CodeLocator } from '#mapper';
import { freePort } from '../../load-tests/runner/processes.js';
import { tracked } from './population-hub.js';

type Client = ReturnType<typeof createMapperRedisClient>;

export class BenchRedis {
  private constructor(
    readonly url: string,
    readonly client: Client,
    private readonly child: ChildProcess,
    private readonly rdb: string | undefined,
    private output: () => string,
  ) {}

  /** Starts redis-server on a free loopback port; with `rdb`, loads that file if it exists. */
  static async start(rdb?: string): Promise<BenchRedis> {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (rdb !== undefined) args.push('--dir', dirname(rdb), '--dbfilename', basename(rdb));
    const child = tracked(spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let text = '';
    child.stdout!.on('data', (c: Buffer) => (text = (text + c.toString()).slice(-8000)));
    child.stderr!.on('data', (c: Buffer) => (text = (text + c.toString()).slice(-8000)));
    child.once('error', (e) => (text += `\n${e.message}`));
    const url = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + 300_000; // loading a large rdb takes a while
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${text}`);
      const client = createMapperRedisClient({ url });
      client.on('error', () => {});
      try {
        await client.connect();
        // LOADING while an rdb is read: PING answers only after it.
        await client.sendCommand(['PING']);
        return new BenchRedis(url, client, child, rdb, () => text);
      } catch (error) {
        try {
          client.destroy();
        } catch {
          // never connected
        }
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`redis-server on port ${port} did not answer: ${error instanceof Error ? error.message : String(error)}\n${text}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  get loadedFromFile(): boolean {
    return this.rdb !== undefined && existsSync(this.rdb);
  }

  async usedMemory(): Promise<number> {
    return Number(/used_memory:(\d+)/.exec(String(await this.client.sendCommand(['INFO', 'memory'])))![1]);
  }

  /** The hub's mapper on this server, opened as HubCodeMapper opens it. */
  openMapper(prefix: string, locator: CodeLocator): Promise<RedisCodeMapper> {
    return RedisCodeMapper.open(this.client, { prefix, locator, onLayoutMismatch: 'reset', operationTimeoutMs: 120_000 });
  }

  /** Writes the data set to the rdb file now (SAVE), if the server has one. */
  async save(): Promise<void> {
    if (this.rdb !== undefined) await this.client.sendCommand(['SAVE']);
  }

  /** Stops the server; with an rdb file, after writing the data set to it. */
  async stop(save: boolean): Promise<void> {
    if (this.child.exitCode !== null) return;
    try {
      if (save && this.rdb !== undefined) await this.client.sendCommand(['SAVE']);
      await this.client.close();
    } catch (error) {
      process.stderr.write(`redis: ${error instanceof Error ? error.message : String(error)}\n${this.output()}\n`);
    }
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
