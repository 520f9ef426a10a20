import { join } from 'node:path';
import { REPO_ROOT, spawnBuilt, stop, waitReady, type Spawned } from './processes.js';

/** The bare two-hop relay baseline (load-tests/runner/baseline/): client → relay → provider and back, each its own process. */
export interface RelayBaseline {
  readonly relay: Spawned;
  readonly provider: Spawned;
  /** Where the load generator sends POST /v1/queries (the relay). */
  readonly url: string;
  readonly answerBytes: number;
  close(): Promise<void>;
}

const BASELINE_DIR = join(REPO_ROOT, 'load-tests', 'runner', 'baseline');

function spawnTs(name: string, file: string, env: Record<string, string>, nodeFlags: readonly string[]): Spawned {
  // Run from the repository so that `--import tsx` resolves; tsx only transpiles at load, the request path is plain JS.
  return spawnBuilt(name, join(BASELINE_DIR, file), [], env, REPO_ROOT, ['--import', 'tsx', ...nodeFlags]);
}

/** Starts the provider (answers of `answerBytes` bytes), then the relay in front of it; both on free ports. */
export async function startRelayBaseline(options: { answerBytes: number; log: (line: string) => void; nodeFlags?: readonly string[] }): Promise<RelayBaseline> {
  let provider: Spawned | undefined;
  let relay: Spawned | undefined;
  const close = async (): Promise<void> => {
    await stop(relay);
    await stop(provider);
  };
  try {
    provider = spawnTs('baseline provider', 'provider.ts', { BASELINE_PORT: '0', BASELINE_ANSWER_BYTES: String(options.answerBytes) }, options.nodeFlags ?? []);
    const providerUrl = await waitReady(provider, 30_000);
    relay = spawnTs('baseline relay', 'relay.ts', { BASELINE_PORT: '0', BASELINE_PROVIDER_URL: providerUrl }, options.nodeFlags ?? []);
    const url = await waitReady(relay, 30_000);
    options.log(`relay baseline ready: relay ${url} → provider ${providerUrl} (answers of ${options.answerBytes} bytes)`);
    return { relay, provider, url, answerBytes: options.answerBytes, close };
  } catch (error) {
    await close();
    throw error;
  }
}
